"""The E2E-HIM network: sizes, batching, determinism, the batched per-query operations against their
literal per-query definitions, the fused alpha head against the two convolutions, exportability."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from livematte.model import conv, linear
from livematte.model.e2ehim import E2EHIM, AlphaHead, FusionUNet, GuidanceHead, Refiner, upsample_trimap
from livematte.model.layers import dynamic_conv
from tests.e2ehim_helpers import random_model


@pytest.fixture(scope="module")
def model() -> E2EHIM:
    return random_model(seed=0)


def run(model: E2EHIM, image: torch.Tensor):
    with torch.inference_mode():
        return model(image)


@pytest.mark.parametrize("height, width", [(640, 640), (640, 352), (320, 320)])
def test_output_shapes(model, height, width):
    out = run(model, torch.randn(1, 3, height, width))
    assert out.class_logits.shape == (1, 20, 2)
    assert out.alpha.shape == (1, 20, height, width)
    assert out.trimap_logits.shape == (1, 20, 3, height // 8, width // 8)
    assert out.full_trimap_logits().shape == (1, 20, 3, height, width)
    assert out.alpha.min() >= 0 and out.alpha.max() <= 1
    assert all(torch.isfinite(t).all() for t in out)


def test_batch_of_two_equals_two_batches_of_one(model):
    """Within fp32 rounding: the whole network's own error against float64 is up to 2e-5 (trimap logits)."""
    images = torch.randn(2, 3, 64, 96)
    both = run(model, images)
    for i in range(2):
        single = run(model, images[i:i + 1])
        for a, b in zip(both, single):
            torch.testing.assert_close(a[i:i + 1], b, atol=2e-5, rtol=1e-5)


def test_deterministic(model):
    image = torch.randn(1, 3, 96, 64)
    for a, b in zip(run(model, image), run(model, image)):
        assert torch.equal(a, b)


def test_fused_alpha_equals_the_two_convolutions(model):
    """Whole network: the fused head and the literal conv1 -> conv2 -> per-query 1x1 agree."""
    image = torch.randn(2, 3, 64, 64)
    fused = run(model, image)
    model.alpha.fused = False
    try:
        literal = run(model, image)
    finally:
        model.alpha.fused = True
    torch.testing.assert_close(fused.alpha, literal.alpha, atol=1e-5, rtol=0)
    assert torch.equal(fused.trimap_logits, literal.trimap_logits)


@pytest.mark.parametrize("nnpack", [True, False])
@pytest.mark.parametrize("batch, height, width", [(1, 64, 96), (2, 80, 48)])
def test_fused_alpha_head_in_its_unclamped_range(monkeypatch, nnpack, batch, height, width):
    """Small kernels keep alpha inside (0, 1), so the comparison sees the linear part, border included.

    Both convolution paths, NNPACK (fp32 CPU inference) and torch's own (CUDA, autocast, training),
    against the literal head in float64."""
    if not nnpack:
        monkeypatch.setattr(conv, "nnpack_ready", lambda: False)
    torch.manual_seed(1)
    head = AlphaHead().eval()
    features, image = torch.randn(batch, 128, height // 2, width // 2), torch.randn(batch, 3, height, width)
    kernel, bias = torch.randn(batch, 20, 64) * 0.05, torch.randn(batch, 20) * 0.1 + 0.5
    with torch.inference_mode():
        fused = head(features, image, kernel, bias)
        head.fused = False
        literal = head.double()(features.double(), image.double(), kernel.double(), bias.double())
    assert ((literal > 0) & (literal < 1)).float().mean() > 0.9
    torch.testing.assert_close(fused.double(), literal, atol=5e-6, rtol=0)


def test_refiner_entries_equal_their_literal_definition():
    """Both entry convolutions of the refiner: unit(cat[up2(low), rest]), border included."""
    torch.manual_seed(5)
    refiner = Refiner().eval()
    t8, x4, x4a, x2 = (torch.randn(1, 512, 3, 5), torch.randn(1, 96, 6, 10), torch.randn(1, 128, 6, 10),
                       torch.randn(1, 64, 12, 20))
    with torch.inference_mode():
        out = refiner(t8, x4, x4a, x2).double()
        refiner.double()
        t8, x4, x4a, x2 = t8.double(), x4.double(), x4a.double(), x2.double()

        def literal(unit, low, rest):
            x = torch.cat([F.interpolate(low, scale_factor=2, mode="bilinear"), rest], 1)
            return unit.act(unit.norm(F.conv2d(x, unit.conv.weight, unit.conv.bias, padding=1)))

        r4 = refiner.stage4.blocks(literal(refiner.stage4.entry, t8, torch.cat([x4, x4a], 1)))
        expected = refiner.stage2[1](literal(refiner.stage2[0], r4, x2))
    torch.testing.assert_close(out, expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


def test_fusion_way_up_equals_its_literal_definition():
    """The U-Net's way up convolves cat[m16, up2(p32), x16] and cat[up2(u16), x8, m8] with 1x1 kernels;
    ours upsamples after the convolution, which commutes with it."""
    torch.manual_seed(6)
    fusion = FusionUNet().eval()
    inputs = (torch.randn(1, 532, 8, 12), torch.randn(1, 512, 4, 6), torch.randn(1, 192, 8, 12),
              torch.randn(1, 384, 4, 6), torch.randn(1, 768, 2, 3))
    with torch.inference_mode():
        out = fusion(*inputs).double()
        fusion.double()
        guided, f16, x8, x16, x32 = (x.double() for x in inputs)
        m8 = fusion.fuse8(guided)
        m16 = fusion.fuse16(torch.cat([fusion.down16(m8), f16, x16], dim=1))
        p32 = fusion.post32(fusion.attention(fusion.fuse32(torch.cat([fusion.down32(m16), x32], dim=1))))

        def literal(stage, x):
            return stage.blocks(stage.entry.act(stage.entry.norm(F.conv2d(x, stage.entry.conv.weight,
                                                                          stage.entry.conv.bias))))

        up2 = functools.partial(F.interpolate, scale_factor=2, mode="bilinear")
        u8 = up2(literal(fusion.up16, torch.cat([m16, up2(p32), x16], 1)))
        expected = literal(fusion.up8, torch.cat([u8, x8, m8], 1))
    torch.testing.assert_close(out, expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


def test_dynamic_conv_equals_per_query_convolutions():
    features, weight, bias = torch.randn(2, 16, 5, 7), torch.randn(2, 20, 16), torch.randn(2, 20)
    out = dynamic_conv(features, weight, bias)
    for b in range(2):
        for q in range(20):
            ref = F.conv2d(features[b:b + 1], weight[b, q].view(1, 16, 1, 1), bias[b, q:q + 1])
            torch.testing.assert_close(out[b, q], ref[0, 0], atol=1e-5, rtol=1e-5)


def test_guidance_head_equals_its_literal_definition():
    """softmax over 20 query maps + background; values GroupNorm'd as spatially constant maps."""
    torch.manual_seed(2)
    head = GuidanceHead()
    with torch.no_grad():
        head.norm.weight.normal_(1, 0.3)
        head.norm.bias.normal_(0, 0.3)
    context, values = torch.randn(1, 256, 6, 5), torch.randn(1, 20, 128)
    kernel, bias = torch.randn(1, 20, 256) * 0.1, torch.randn(1, 20)
    logits = [F.conv2d(context, kernel[0, q].view(1, 256, 1, 1), bias[0, q:q + 1]) for q in range(20)]
    weights = torch.cat([*logits, head.background_logit(context)], dim=1).softmax(dim=1)
    maps = [head.norm(values[0, q].view(1, 128, 1, 1).expand(1, 128, 6, 5)) for q in range(20)]
    maps.append(head.norm(head.background_value(context)))
    expected = sum(weights[:, i:i + 1] * maps[i] for i in range(21))
    torch.testing.assert_close(head(context, kernel, bias, values), expected, atol=1e-5, rtol=1e-5)


def test_generated_kernels_are_sliced_as_the_official_network(model):
    captured = {}
    hooks = [getattr(model.perception, name).register_forward_hook(
        lambda module, args, out, name=name: captured.__setitem__(name, out))
        for name in ("guidance_head", "value_head", "matting_head")]
    try:
        with torch.inference_mode():
            k = model.perception(torch.randn(2, 768, 2, 3))
    finally:
        for hook in hooks:
            hook.remove()
    g, v, m = captured["guidance_head"], captured["value_head"], captured["matting_head"]
    assert torch.equal(k.affinity[:, 0], g[..., :256]) and torch.equal(k.affinity[:, 1], g[..., 256:512])
    assert torch.equal(k.affinity_bias[:, 0], g[..., 512]) and torch.equal(k.affinity_bias[:, 1], g[..., 513])
    assert torch.equal(k.seg, g[..., 514:770]) and torch.equal(k.seg_bias, g[..., 770])
    assert torch.equal(k.values[:, 0], v[..., :128]) and torch.equal(k.values[:, 1], v[..., 128:])
    for q in (0, 7, 19):
        for c in range(3):
            assert torch.equal(k.trimap[:, 3 * q + c], m[:, q, 256 * c: 256 * (c + 1)])
            assert torch.equal(k.trimap_bias[:, 3 * q + c], m[:, q, 768 + c])
    assert torch.equal(k.alpha, m[..., 771:835]) and torch.equal(k.alpha_bias, m[..., 835])


def test_upsample_trimap_is_the_official_x8_on_query_major_channels():
    logits = torch.randn(2, 20, 3, 4, 5)
    official = F.interpolate(logits.reshape(2, 60, 4, 5), scale_factor=8, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample_trimap(logits), official.reshape(2, 20, 3, 32, 40), atol=1e-6, rtol=0)


def test_every_parameter_is_used():
    """No module is built and left unused: each parameter takes part in the graph (has a gradient).

    Some gradients are zero by design (the first decoder layer attends over a zero target)."""
    model = random_model(seed=3)
    out = model(torch.randn(1, 3, 64, 64))
    (out.class_logits.sum() + out.alpha.sum() + out.trimap_logits.sum()).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


def test_exports_with_dynamic_batch(monkeypatch):
    """torch.export fails on data-dependent Python control flow; the graph must accept any batch.

    The eager model uses the exported graph's convolutions and matrix products (not NNPACK's nor
    oneDNN's packed ones), so the two agree to rounding."""
    monkeypatch.setattr(conv, "nnpack_ready", lambda: False)
    monkeypatch.setattr(linear, "packed_ready", lambda: False)
    model = random_model(seed=4, fused_alpha=False)
    program = torch.export.export(model, (torch.randn(2, 3, 64, 64),),
                                  dynamic_shapes={"image": {0: torch.export.Dim("batch", max=64)}})
    image = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        for a, b in zip(program.module()(image), model(image)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
