"""Swin-Tiny backbone: window geometry, shift masks, relative positions, output pyramid."""

from __future__ import annotations

import pytest
import torch

from livematte.model.swin import SwinTiny, relative_position_index, shift_mask, window_merge, window_partition


def official_shift_mask(hp: int, wp: int) -> torch.Tensor:
    """The official Swin construction: label regions by slices, compare labels inside each window."""
    labels = torch.zeros(1, hp, wp, 1)
    count = 0
    for h in (slice(0, -7), slice(-7, -3), slice(-3, None)):
        for w in (slice(0, -7), slice(-7, -3), slice(-3, None)):
            labels[:, h, w, :] = count
            count += 1
    windows = window_partition(labels).squeeze(-1)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


@pytest.mark.parametrize("hp, wp", [(7, 7), (14, 21), (21, 84), (161, 91)])
def test_shift_mask_matches_official_construction(hp, wp):
    assert torch.equal(shift_mask(hp, wp, torch.device("cpu")), official_shift_mask(hp, wp))


def test_shift_mask_blocks_only_mixed_windows():
    mask = shift_mask(14, 14, torch.device("cpu"))
    assert mask.shape == (4, 49, 49)
    assert mask[0].eq(0).all()  # top-left window: one region
    assert mask[3].eq(-100).any()  # bottom-right window: four regions


def test_relative_position_index():
    index = relative_position_index(7)
    assert index.shape == (49, 49)
    assert index.diagonal().eq(6 * 13 + 6).all()
    assert index.min() == 0 and index.max() == 168
    assert torch.equal(index + index.T, torch.full((49, 49), 168))
    assert index[0, 48] == 0 and index[48, 0] == 168  # (0,0)-(6,6) and back


def test_window_partition_round_trip():
    x = torch.randn(2, 14, 21, 5)
    windows = window_partition(x)
    assert windows.shape == (12, 49, 5)
    assert torch.equal(windows[1], x[0, :7, 7:14].reshape(49, 5))
    assert torch.equal(window_merge(windows, 14, 21), x)


def test_pyramid_shapes_and_buffers():
    torch.manual_seed(0)
    backbone = SwinTiny().eval()
    assert not any("relative_position_index" in k for k in backbone.state_dict())
    with torch.inference_mode():
        outputs = backbone(torch.randn(2, 128, 16, 24))
    assert [tuple(o.shape) for o in outputs] == [(2, 96, 16, 24), (2, 192, 8, 12), (2, 384, 4, 6), (2, 768, 2, 3)]
    assert all(torch.isfinite(o).all() for o in outputs)
