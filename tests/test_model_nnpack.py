"""NNPACK through its C API: kept kernel transforms compute torch's convolution, at any image size, and
modules keep a transform exactly as long as their weight is unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from livematte.model import conv, nnpack

pytestmark = pytest.mark.skipif(not (conv.nnpack_ready() and nnpack.available()),
                                reason="this torch build does not export NNPACK's C API")


def reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    return F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), padding=padding)


def assert_convolution(out: torch.Tensor, expected: torch.Tensor) -> None:
    # Winograd and FFT tiles round a little more than direct summation: 1e-5 of the outputs' scale
    torch.testing.assert_close(out.double(), expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


@pytest.mark.parametrize("with_bias", [True, False])
def test_one_transform_serves_every_image_size(with_bias):
    """Sizes from below one tile to several tiles, small first so the scratch space has to grow."""
    torch.manual_seed(0)
    weight = torch.randn(12, 20, 3, 3) / 180 ** 0.5
    bias = torch.randn(12) if with_bias else None
    transformed = nnpack.transform(weight)
    for height, width in ((5, 7), (40, 33), (3, 3), (64, 96)):
        x = torch.randn(1, 20, height, width)
        kept = nnpack.convolve(x, weight, bias, 1, transformed)
        assert_convolution(kept, reference(x, weight, bias, 1))
        torch.testing.assert_close(kept, nnpack.convolve(x, weight, bias, 1), rtol=0, atol=0)  # same algorithm


@pytest.mark.parametrize("kernel, padding", [(3, 0), (5, 2), (5, 0)])
def test_convolve_without_a_transform(kernel, padding):
    torch.manual_seed(1)
    x, weight, bias = torch.randn(1, 6, 30, 41), torch.randn(4, 6, kernel, kernel), torch.randn(4)
    assert_convolution(nnpack.convolve(x, weight, bias, padding), reference(x, weight, bias, padding))


def test_conv2d_module_keeps_its_transform_until_its_weight_changes(monkeypatch):
    transforms = []
    make = nnpack.transform
    monkeypatch.setattr(nnpack, "transform", lambda weight: transforms.append(1) or make(weight))
    torch.manual_seed(2)
    layer, x = conv.Conv2d(8, 4, 3, padding=1), torch.randn(2, 8, 9, 13)  # small: served only with a kept transform
    for _ in range(2):
        with torch.inference_mode():
            out = [layer(x) for _ in range(2)]
        with torch.no_grad():
            expected = reference(x, layer.weight, layer.bias, 1)
            layer.weight.mul_(-0.5)  # in place, as loading weights does
        assert_convolution(out[0], expected)
        assert_convolution(out[1], expected)
    assert len(transforms) == 2  # once per weight


def test_without_the_c_api_torch_op_serves_and_nothing_is_kept(monkeypatch):
    monkeypatch.setattr(nnpack, "available", lambda: False)
    torch.manual_seed(3)
    layer, x = conv.Conv2d(8, 4, 3, padding=1), torch.randn(1, 8, 40, 40)
    with torch.inference_mode():
        out = layer(x)
        assert conv.kept_transform(layer.kept, layer.weight, "transform", x) is None
    with torch.no_grad():
        assert_convolution(out, reference(x, layer.weight, layer.bias, 1))


def test_kept_tensors_are_not_made_where_a_gradient_or_inference_tensor_forbids():
    """Kept tensors must not hide a gradient's path, nor outlive an inference tensor's unversioned data."""
    kept, made = conv.KeptWeights(), []
    weight = torch.randn(4, 4, 3, 3, requires_grad=True)
    for _ in range(2):
        kept.get(weight, "w", lambda: made.append(1) or weight * 2)
    assert len(made) == 2
    with torch.inference_mode():
        frozen = torch.randn(4, 4, 3, 3)
        for _ in range(2):
            kept.get(frozen, "w", lambda: made.append(1) or frozen * 2)
    assert len(made) == 4
    with torch.no_grad():
        for _ in range(2):
            kept.get(weight, "w", lambda: made.append(1) or weight * 2)
    assert len(made) == 5
