"""Swin-Tiny backbone: window geometry, shift masks, relative positions, output pyramid."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from livematte.model.swin import (
    SwinStage,
    SwinTiny,
    relative_position_index,
    shift_mask,
    window_gathers,
    window_partition,
)


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
    """Partition into windows, and the gathers a block uses back out of them (shifted or not, padded)."""
    x = torch.randn(2, 14, 21, 5)
    windows = window_partition(x)
    assert windows.shape == (12, 49, 5)
    assert torch.equal(windows[1], x[0, :7, 7:14].reshape(49, 5))
    for height, width, shifted in ((14, 21, False), (9, 17, False), (9, 17, True)):
        x = torch.randn(2, height, width, 5)
        order, _, back = window_gathers(height, width, shifted, x.device)
        tokens = x.reshape(2, -1, 5)
        assert torch.equal(tokens.index_select(1, order).index_select(1, back), tokens)


def test_pyramid_shapes_and_buffers():
    torch.manual_seed(0)
    backbone = SwinTiny().eval()
    assert not any("relative_position_index" in k for k in backbone.state_dict())
    with torch.inference_mode():
        outputs = backbone(torch.randn(2, 128, 16, 24))
    assert [tuple(o.shape) for o in outputs] == [(2, 96, 16, 24), (2, 192, 8, 12), (2, 384, 4, 6), (2, 768, 2, 3)]
    assert all(torch.isfinite(o).all() for o in outputs)


def official_block(block, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The official Swin block, step by step: pad after norm1, roll, partition, attention with q scaled
    first and the bias and mask added, projection of every window token, merge, roll back, crop."""
    b, h, w, c = x.shape
    y = block.norm1(x)
    y = F.pad(y, (0, 0, 0, (7 - w % 7) % 7, 0, (7 - h % 7) % 7))
    hp, wp = y.shape[1:3]
    if mask is not None:
        y = torch.roll(y, shifts=(-3, -3), dims=(1, 2))
    windows = y.view(b, hp // 7, 7, wp // 7, 7, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, 49, c)
    attn_module, heads = block.attn, block.attn.heads
    qkv = attn_module.qkv(windows).reshape(-1, 49, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (c // heads) ** -0.5, qkv[1], qkv[2]
    attn = q @ k.transpose(-2, -1)
    table = attn_module.relative_position_bias_table[relative_position_index(7).view(-1)]
    attn = attn + table.view(49, 49, -1).permute(2, 0, 1).unsqueeze(0)
    if mask is not None:
        n = mask.shape[0]
        attn = (attn.view(-1, n, heads, 49, 49) + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, 49, 49)
    out = attn_module.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(-1, 49, c))
    y = out.view(b, hp // 7, wp // 7, 7, 7, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
    if mask is not None:
        y = torch.roll(y, shifts=(3, 3), dims=(1, 2))
    x = x + y[:, :h, :w]
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("height, width", [(9, 17), (14, 21), (7, 8)])
def test_stage_equals_the_official_blocks(height, width):
    """Plain and shifted blocks, maps that need padding and maps that do not, a batch of two (float64)."""
    torch.manual_seed(3)
    stage = SwinStage(24, 2, 3).double().eval()
    for parameter in stage.parameters():
        parameter.data.normal_(0, 0.5)
    x = torch.randn(2, height, width, 24, dtype=torch.float64)
    mask = official_shift_mask(-(-height // 7) * 7, -(-width // 7) * 7).double()
    with torch.inference_mode():
        out = stage(x)
        expected = official_block(stage.blocks[1], official_block(stage.blocks[0], x, None), mask)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


def test_window_gathers_made_in_inference_mode_serve_training():
    stage = SwinStage(24, 2, 3)
    x = torch.randn(1, 9, 17, 24)
    with torch.inference_mode():
        stage(x)  # the gathers for this shape are made and kept here
    stage(x).sum().backward()
    assert stage.blocks[0].attn.qkv.weight.grad is not None
