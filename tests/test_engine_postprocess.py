"""Post-processing rules on hand-built network outputs: gating, trimap fusion, area, un-letterbox."""

from __future__ import annotations

import math

import pytest
import torch

from kernels.letterbox import Letterbox
from livematte.engine.postprocess import PostprocessConfig, fuse_trimap, postprocess
from livematte.model.e2ehim import E2EHIMOutput

Q = 20
BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2


def outputs(batch: int, size: tuple[int, int], humans: dict[tuple[int, int], tuple[float, int]],
            alpha: float = 0.5) -> E2EHIMOutput:
    """Queries not in `humans` score logit diff -3; a human (frame, query) gets (logit diff, trimap class)
    with that class's logit winning everywhere."""
    h, w = size
    class_logits = torch.zeros(batch, Q, 2)
    class_logits[..., 1] = -3.0
    trimap = torch.zeros(batch, Q, 3, h // 8, w // 8)
    for (b, q), (diff, cls) in humans.items():
        class_logits[b, q, 1] = diff
        trimap[b, q, cls] = 5.0
    return E2EHIMOutput(class_logits, torch.full((batch, Q, h, w), alpha), trimap)


def test_fuse_trimap():
    alpha = torch.tensor([[[0.3, 0.6, 0.9, 0.4, 0.7, 0.8]]])
    logits = torch.zeros(1, 3, 1, 6)
    logits[0, BACKGROUND, 0, 0] = logits[0, UNKNOWN, 0, 1] = logits[0, FOREGROUND, 0, 2] = 1.0
    logits[0, UNKNOWN:, 0, 4] = 1.0  # unknown ties foreground: argmax takes the lower class
    logits[0, BACKGROUND::2, 0, 5] = 1.0  # background ties foreground
    assert torch.equal(fuse_trimap(alpha, logits), torch.tensor([[[0.0, 0.6, 1.0, 0.0, 0.7, 0.0]]]))


def test_fuse_trimap_matches_argmax_rule():
    alpha, logits = torch.rand(4, 16, 16), torch.randn(4, 3, 16, 16).round()  # rounding makes ties common
    trimap = logits.argmax(dim=1)
    expected = torch.where(trimap == FOREGROUND, 1.0, torch.where(trimap == UNKNOWN, alpha, 0.0))
    assert torch.equal(fuse_trimap(alpha, logits), expected)


def test_gating_follows_the_official_rule_by_default():
    out = outputs(2, (32, 32), {(0, 3): (0.01, FOREGROUND), (0, 9): (2.0, UNKNOWN), (1, 4): (-0.01, FOREGROUND)})
    box = Letterbox.fit(32, 32, 32, 32)
    frames = postprocess(out, box, PostprocessConfig(min_area=0))
    assert [len(f) for f in frames] == [2, 0]
    torch.testing.assert_close(frames[0].probs, torch.tensor([1 / (1 + math.exp(-0.01)), 1 / (1 + math.exp(-2.0))]))
    assert torch.equal(frames[0].mattes[0], torch.ones(32, 32))  # foreground everywhere
    assert torch.equal(frames[0].mattes[1], torch.full((32, 32), 0.5))  # unknown: alpha


def test_threshold_raises_the_bar():
    out = outputs(1, (32, 32), {(0, 3): (0.5, FOREGROUND), (0, 9): (2.0, FOREGROUND)})
    frames = postprocess(out, Letterbox.fit(32, 32, 32, 32), PostprocessConfig(threshold=0.8, min_area=0))
    assert len(frames[0]) == 1 and frames[0].probs[0] > 0.8


def test_minimum_area_is_measured_at_frame_size():
    # frame 64x64 from a 32x32 network input: a full foreground matte covers 4096 px, an unknown one
    # (alpha 0.2) 819.2 px, a background one 0
    out = outputs(1, (32, 32), {(0, 1): (1.0, FOREGROUND), (0, 2): (1.0, UNKNOWN), (0, 3): (1.0, BACKGROUND)},
                  alpha=0.2)
    box = Letterbox.fit(64, 64, 32, 32)
    frames = postprocess(out, box, PostprocessConfig(min_area=800))
    assert frames[0].mattes.shape == (2, 64, 64)
    assert frames[0].mattes.sum(dim=(1, 2)).tolist() == pytest.approx([4096, 819.2], rel=1e-5)
    assert len(postprocess(out, box)[0]) == 1  # default min_area 1000


def test_unletterbox_crops_the_content_and_resizes_to_the_frame():
    box = Letterbox.fit(48, 64, 32, 32)  # content 24x32 at rows 4..28
    assert (box.top, box.content_h, box.content_w) == (4, 24, 32)
    out = outputs(1, (32, 32), {(0, 0): (1.0, UNKNOWN)})
    out.alpha[0, 0].zero_()
    out.alpha[0, 0, 4:28] = 1.0  # alpha 1 exactly over the content, 0 over the padding
    out.alpha[0, 0, 4:28, :16] = 0.25  # left half of the content
    matte = postprocess(out, box, PostprocessConfig(min_area=0))[0].mattes[0]
    assert matte.shape == (48, 64)
    assert torch.allclose(matte[:, :31], torch.full((48, 31), 0.25))
    assert torch.allclose(matte[:, 33:], torch.ones(48, 31))


def test_no_people():
    frames = postprocess(outputs(2, (32, 32), {}), Letterbox.fit(40, 30, 32, 32))
    assert [f.mattes.shape for f in frames] == [(0, 40, 30), (0, 40, 30)]
    assert [len(f) for f in frames] == [0, 0]


def test_invalid_config():
    with pytest.raises(ValueError, match="threshold"):
        PostprocessConfig(threshold=1.0)
    with pytest.raises(ValueError, match="min_area"):
        PostprocessConfig(min_area=-1)
