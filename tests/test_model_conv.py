"""NNPACK's convolution path: where it applies, and that it computes torch's convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from livematte.model import conv, nnpack

needs_nnpack = pytest.mark.skipif(not conv.nnpack_ready(), reason="this torch build has no NNPACK")


@needs_nnpack
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_equals_torch_convolution(kernel, with_bias):
    torch.manual_seed(0)
    x, weight = torch.randn(2, 24, 33, 40), torch.randn(16, 24, kernel, kernel) / (24 * kernel * kernel) ** 0.5
    bias = torch.randn(16) if with_bias else None
    with torch.inference_mode():
        assert conv.nnpack_applies(x, (kernel, kernel))
        fast = conv.conv2d(x, weight, bias, kernel // 2)
    expected = F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), padding=kernel // 2)
    # Winograd and FFT tiles round a little more than direct summation: 1e-5 of the outputs' scale
    torch.testing.assert_close(fast.double(), expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


@needs_nnpack
def test_conv2d_module_takes_the_nnpack_path_only_for_inference(monkeypatch):
    calls = []
    nnpack_conv = conv._nnpack_conv
    monkeypatch.setattr(conv, "_nnpack_conv", lambda *args: calls.append(args[-1]) or nnpack_conv(*args))
    layer, x = conv.Conv2d(8, 4, 3, padding=1), torch.randn(2, 8, 32, 40)
    with torch.inference_mode():
        inferred = layer(x)
    assert len(calls) == 1
    assert (calls[0] is not None) == nnpack.available()  # the kernel's transform, kept by the module
    trained = layer(x)  # gradients wanted: torch's convolution
    assert len(calls) == 1 and trained.requires_grad
    torch.testing.assert_close(inferred, trained.detach(), atol=1e-5 * trained.abs().max().item(), rtol=0)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    assert len(calls) == 1


def test_nnpack_is_not_used_where_it_does_not_apply():
    x = torch.randn(1, 4, 32, 32)
    with torch.inference_mode():
        assert not conv.nnpack_applies(x, (1, 1))  # 1x1: a matrix product, oneDNN's
        assert not conv.nnpack_applies(x, (1, 3))
        assert not conv.nnpack_applies(x, (3, 3), stride=2)
        assert not conv.nnpack_applies(x, (3, 3), groups=2)
        assert not conv.nnpack_applies(x.double(), (3, 3))
        assert not conv.nnpack_applies(x[..., :16, :16], (3, 3))  # small maps: oneDNN is faster
    assert not conv.nnpack_applies(x, (3, 3))  # gradients on


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("nnpack", [True, False])
def test_upsampled_conv_equals_convolving_the_upsampled_map(monkeypatch, kernel, per_image, nnpack):
    """Everywhere, the border rows and columns included; odd sizes; weights shared or per image."""
    if not nnpack:
        monkeypatch.setattr(conv, "nnpack_ready", lambda: False)
    torch.manual_seed(1)
    x = torch.randn(2, 6, 33, 31)  # the phases' map is large enough for NNPACK
    weight = torch.randn(*((2,) if per_image else ()), 5, 6, kernel, kernel)
    with torch.inference_mode():
        out = torch.zeros(2, 5, 66, 62)
        phases = conv.phase_kernels(weight, conv.upsample_taps(kernel))
        conv.upsampled_conv(x, phases, conv.edge_kernels(weight), out)
    up = F.interpolate(x.double(), scale_factor=2, mode="bilinear", align_corners=False)
    expected = torch.cat([F.conv2d(up[i:i + 1], (weight[i] if per_image else weight).double(), padding=kernel // 2)
                          for i in range(2)])
    assert out.shape == (2, 5, 66, 62)
    torch.testing.assert_close(out.double(), expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


def test_upsampled_input_conv_follows_changes_of_its_weight():
    """The kept phase kernels are rebuilt when the weight changes in place (e.g. loading weights)."""
    torch.manual_seed(2)
    layer = conv.UpsampledInputConv(6, 4, 3, padding=1)
    low, rest = torch.randn(1, 4, 5, 6), torch.randn(1, 2, 10, 12)

    def literal() -> torch.Tensor:
        x = torch.cat([F.interpolate(low, scale_factor=2, mode="bilinear"), rest], dim=1)
        return F.conv2d(x, layer.weight, layer.bias, padding=1).detach()

    for _ in range(2):
        with torch.inference_mode():
            out = layer(low, rest)
        torch.testing.assert_close(out, literal(), atol=1e-5, rtol=1e-5)
        with torch.no_grad():
            layer.weight[:, :4].mul_(-2)
