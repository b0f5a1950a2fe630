"""Pre-process twin against a direct NumPy formula of the documented sampling, and torch's antialias."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels import IMAGENET_MEAN, IMAGENET_STD, Letterbox, preprocess


def axis_matrix(src: int, content: int) -> np.ndarray:
    """(content, src) weights: triangle of half-width max(f, 1) around (o + 0.5) f - 0.5, rows normalised."""
    f = src / content
    s = max(f, 1.0)
    centres = (np.arange(content) + 0.5) * f - 0.5
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(src)[None, :] - centres[:, None]) / s)
    return w / w.sum(axis=1, keepdims=True)


def reference(frame: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    box = Letterbox.fit(frame.shape[0], frame.shape[1], out_h, out_w)
    wy = axis_matrix(frame.shape[0], box.content_h)
    wx = axis_matrix(frame.shape[1], box.content_w)
    rgb = frame[..., ::-1].astype(np.float64) / 255.0
    out = np.zeros((3, out_h, out_w))
    for c in range(3):
        content = wy @ rgb[..., c] @ wx.T
        out[c, box.top:box.top + box.content_h, box.left:box.left + box.content_w] = (
            (content - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
    return out


@pytest.mark.parametrize("src, out", [((37, 53), (64, 96)), ((1, 1), (32, 32)), ((48, 64), (32, 32)),
                                      ((120, 50), (32, 64)), ((97, 211), (32, 32))])
def test_matches_reference(src, out):
    frame = np.random.default_rng(1).integers(0, 256, (*src, 3), dtype=np.uint8)
    result, box = preprocess(frame, out)
    assert result.shape == (3, *out) and result.dtype == np.float32
    assert box == Letterbox.fit(*src, *out)
    np.testing.assert_allclose(result, reference(frame, *out), atol=1e-5)


def test_padding_is_zero_and_content_matches_torch_antialias():
    frame = np.random.default_rng(2).integers(0, 256, (90, 200, 3), dtype=np.uint8)
    result, box = preprocess(frame, (64, 64))
    assert box.top > 0 and np.all(result[:, :box.top] == 0) and np.all(result[:, box.top + box.content_h:] == 0)
    rgb = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1)[None].double()
    resized = torch.nn.functional.interpolate(rgb, size=(box.content_h, box.content_w), mode="bilinear",
                                              antialias=True, align_corners=False)[0].numpy() / 255.0
    expected = (resized - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[:, None, None]
    np.testing.assert_allclose(result[:, box.top:box.top + box.content_h], expected, atol=1e-5)


def test_downscale_does_not_alias():
    stripes = np.zeros((64, 256, 3), np.uint8)
    stripes[:, ::2] = 255
    result, _ = preprocess(stripes, (16, 64))
    grey = (0.5 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(result[:, :, 1:-1], np.broadcast_to(grey[:, None, None], (3, 16, 62)), atol=0.05)


def test_batch_and_preallocated_out():
    frames = np.random.default_rng(3).integers(0, 256, (3, 37, 53, 3), dtype=np.uint8)
    out = np.full((3, 3, 32, 64), np.nan, np.float32)
    result, _ = preprocess(frames, (32, 64), out=out)
    assert result is out
    for b in range(3):
        np.testing.assert_allclose(out[b], reference(frames[b], 32, 64), atol=1e-5)


def test_torch_cpu_in_torch_out():
    frame = np.random.default_rng(4).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    result, _ = preprocess(torch.from_numpy(frame), (32, 32))
    assert isinstance(result, torch.Tensor)
    np.testing.assert_allclose(result.numpy(), reference(frame, 32, 32), atol=1e-5)


def test_errors_name_the_fix():
    with pytest.raises(TypeError, match="uint8"):
        preprocess(np.zeros((8, 8, 3), np.float32), (32, 32))
    with pytest.raises(ValueError, match="shape"):
        preprocess(np.zeros((8, 8, 3), np.uint8), (32, 32), out=np.zeros((3, 32, 31), np.float32))
