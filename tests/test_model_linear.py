"""Linear layers with oneDNN-packed weights compute nn.Linear's function and follow their weight."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from livematte.model import linear

pytestmark = pytest.mark.skipif(not linear.packed_ready(), reason="this torch build has no oneDNN linear ops")


@pytest.mark.parametrize("bias", [True, False])
def test_packed_product_equals_linear_for_any_leading_shape(monkeypatch, bias):
    packs = []
    pack = torch.ops.mkldnn._reorder_linear_weight
    monkeypatch.setattr(linear.torch.ops.mkldnn, "_reorder_linear_weight",
                        lambda weight, rows: packs.append(rows) or pack(weight, rows), raising=False)
    torch.manual_seed(0)
    layer = linear.Linear(24, 10, bias=bias)
    for shape in ((5, 24), (2, 3, 7, 24), (5, 24)):
        x = torch.randn(shape)
        with torch.inference_mode():
            out = layer(x)
        assert out.shape == (*shape[:-1], 10)
        with torch.no_grad():
            torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert packs == [5, 42]  # one packing per row count, kept


def test_packed_weight_follows_changes_and_gradients_take_torchs_path():
    torch.manual_seed(1)
    layer, x = linear.Linear(8, 4), torch.randn(3, 8)
    with torch.inference_mode():
        before = layer(x)
    with torch.no_grad():
        layer.weight.mul_(-2)  # in place, as loading weights does
    with torch.inference_mode():
        after = layer(x)
    torch.testing.assert_close(after, F.linear(x, layer.weight, layer.bias).detach(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)
    trained = layer(x)
    assert trained.requires_grad
    trained.sum().backward()
    assert layer.weight.grad is not None


@pytest.mark.parametrize("packed", [True, False])
def test_gelu_layer_applies_exact_gelu_on_both_paths(monkeypatch, packed):
    monkeypatch.setattr(linear, "packed_ready", lambda: packed)
    torch.manual_seed(2)
    layer, x = linear.Linear(16, 32, gelu=True), 3 * torch.randn(2, 9, 16)
    with torch.inference_mode():
        out = layer(x)
    with torch.no_grad():
        expected = F.gelu(F.linear(x, layer.weight, layer.bias))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert (out < 0).any()  # the negative lobe: GELU, not a ReLU
