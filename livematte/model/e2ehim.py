"""E2E-HIM (end-to-end human instance matting) with the Swin-Tiny backbone.

Computes the official network's function for any batch and any
H, W that are multiples of 32. The 20 queries' generated 1x1 convolutions run as one batched matmul
each; the full-resolution alpha head folds its two linear convolutions and the queries' kernels into
one convolution (AlphaHead). official_names.py maps the official checkpoint's names
(official_manifest.tsv: every tensor's name, shape and type) to ours.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livematte.model.conv import (
    Conv2d,
    UpsampledInputConv,
    edge_kernels,
    grouped_conv,
    phase_kernels,
    upsample_taps,
    upsampled_conv,
)
from livematte.model.layers import (
    ConvNormAct,
    ConvResStage,
    Mlp,
    PositionAttention,
    dynamic_conv,
    leaky,
    relu,
    upsample,
)
from livematte.model.swin import SwinTiny

NUM_QUERIES = 20
HIDDEN = 256
VALUE_DIM = 128
TRIMAP_CLASSES = 3  # background, unknown, foreground
ALPHA_FEATURES = 64


class E2EHIMOutput(NamedTuple):
    """Raw network outputs; queries are independent person candidates.

    class_logits (B, Q, 2): index 1 = human. alpha (B, Q, H, W) in [0, 1].
    trimap_logits (B, Q, 3, H/8, W/8): the trimap before its x8 bilinear upsampling, kept at /8 so
    callers upsample only the queries they keep; `full_trimap_logits()` gives the official
    (B, Q * 3, H, W) tensor reshaped to (B, Q, 3, H, W).
    """

    class_logits: Tensor
    alpha: Tensor
    trimap_logits: Tensor

    def full_trimap_logits(self) -> Tensor:
        return upsample_trimap(self.trimap_logits)


def upsample_trimap(logits: Tensor) -> Tensor:
    """(..., 3, h, w) trimap logits at /8 -> (..., 3, 8h, 8w), bilinear as the official network."""
    lead, (h, w) = logits.shape[:-2], logits.shape[-2:]
    full = upsample(logits.reshape(-1, TRIMAP_CLASSES, h, w), 8)
    return full.reshape(*lead, 8 * h, 8 * w)


@dataclass(frozen=True)
class QueryKernels:
    """What the perception network generates per query (B batch, Q queries)."""

    class_logits: Tensor  # (B, Q, 2)
    affinity: Tensor  # (B, 2, Q, 256): one kernel per guidance head
    affinity_bias: Tensor  # (B, 2, Q)
    values: Tensor  # (B, 2, Q, 128)
    seg: Tensor  # (B, Q, 256)
    seg_bias: Tensor  # (B, Q)
    trimap: Tensor  # (B, Q * 3, 256), row 3q + c
    trimap_bias: Tensor  # (B, Q * 3)
    alpha: Tensor  # (B, Q, 64)
    alpha_bias: Tensor  # (B, Q)


class Stem(nn.Module):
    """Convolutional stem: full-detail features at /2 and /4 for the refiner and the backbone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(3, 32, 3, 16, relu(), stride=2)
        self.conv2 = ConvNormAct(32, 32, 3, 16, relu())
        self.conv3 = ConvNormAct(32, 64, 3, 32, relu())
        self.down = ConvNormAct(64, 128, 3, 32, relu(), stride=2)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        x2 = self.conv3(self.conv2(self.conv1(image)))
        return x2, self.down(x2)


class DecoderLayer(nn.Module):
    """Post-norm DETR decoder layer; positional codes on the queries only."""

    def __init__(self, dim: int = HIDDEN, heads: int = 8, ffn: int = 2048) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, t: Tensor, memory: Tensor, query_pos: Tensor) -> Tensor:
        q = t + query_pos
        t = self.norm1(t + self.self_attn(q, q, t, need_weights=False)[0])
        t = self.norm2(t + self.cross_attn(t + query_pos, memory, memory, need_weights=False)[0])
        return self.norm3(t + self.linear2(F.relu(self.linear1(t))))


class Perception(nn.Module):
    """Queries attend to the /32 features; each query's code generates its class and its kernels."""

    def __init__(self, layers: int = 6) -> None:
        super().__init__()
        self.memory_proj = ConvNormAct(768, HIDDEN, 1, 32, relu())
        self.query_pos = nn.Parameter(torch.randn(NUM_QUERIES, HIDDEN))
        self.layers = nn.ModuleList(DecoderLayer() for _ in range(layers))
        self.norm = nn.LayerNorm(HIDDEN)
        self.class_head = Mlp(HIDDEN, 128, 2, 2)
        code = HIDDEN + 2
        self.guidance_head = Mlp(code, 512, 2 * HIDDEN + 2 + HIDDEN + 1, 3)
        self.value_head = Mlp(code, 2 * VALUE_DIM, 2 * VALUE_DIM, 1)
        self.matting_head = Mlp(code, 512, TRIMAP_CLASSES * (HIDDEN + 1) + ALPHA_FEATURES + 1, 3)

    def forward(self, x32: Tensor) -> QueryKernels:
        memory = self.memory_proj(x32).flatten(2).transpose(1, 2)
        query_pos = self.query_pos.unsqueeze(0).expand(memory.shape[0], -1, -1)
        t = torch.zeros_like(query_pos)
        for layer in self.layers:
            t = layer(t, memory, query_pos)
        codes = self.norm(t)
        class_logits = self.class_head(codes)
        codes = torch.cat([codes, class_logits.softmax(-1)], dim=-1)
        g = self.guidance_head(codes)
        v = self.value_head(codes)
        m = self.matting_head(codes)
        b, q = codes.shape[:2]
        tri = TRIMAP_CLASSES * HIDDEN
        return QueryKernels(
            class_logits=class_logits,
            affinity=g[..., : 2 * HIDDEN].reshape(b, q, 2, HIDDEN).transpose(1, 2),
            affinity_bias=g[..., 2 * HIDDEN: 2 * HIDDEN + 2].transpose(1, 2),
            values=v.reshape(b, q, 2, VALUE_DIM).transpose(1, 2),
            seg=g[..., 2 * HIDDEN + 2: 3 * HIDDEN + 2],
            seg_bias=g[..., 3 * HIDDEN + 2],
            trimap=m[..., :tri].reshape(b, q * TRIMAP_CLASSES, HIDDEN),
            trimap_bias=m[..., tri: tri + TRIMAP_CLASSES].reshape(b, q * TRIMAP_CLASSES),
            alpha=m[..., tri + TRIMAP_CLASSES: tri + TRIMAP_CLASSES + ALPHA_FEATURES],
            alpha_bias=m[..., -1],
        )


class ContextDecoder(nn.Module):
    """Detailed context features F_dc (256 ch, /8) from the /8, /16 and /32 backbone maps."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce32 = ConvNormAct(768, 512, 1, 16, relu())
        self.stage16 = ConvResStage(896, 512, 3, 16, relu(), 128, 2)
        self.stage8 = ConvResStage(704, 256, 3, 16, relu(), 64, 2)
        self.project8 = ConvNormAct(256, HIDDEN, 1, 16, relu())

    def forward(self, x8: Tensor, x16: Tensor, x32: Tensor) -> tuple[Tensor, Tensor]:
        """-> (f16 (512, /16), F_dc (256, /8))."""
        f16 = self.stage16(torch.cat([upsample(self.reduce32(x32), 2), x16], dim=1))
        return f16, self.project8(self.stage8(torch.cat([upsample(f16, 2), x8], dim=1)))


class GuidanceHead(nn.Module):
    """One head of united guidance: softmax over 20 query maps + a background map, mixing values.

    `norm` is shared by the query value vectors and the background value map, as in the official
    network. A query's value is spatially constant, so its GroupNorm is that of the vector itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.background_logit = nn.Conv2d(HIDDEN, 1, 1)
        self.background_value = nn.Conv2d(HIDDEN, VALUE_DIM, 1)
        self.norm = nn.GroupNorm(32, VALUE_DIM)

    def forward(self, context: Tensor, kernel: Tensor, bias: Tensor, values: Tensor) -> Tensor:
        """context (B, 256, h, w), kernel (B, Q, 256), bias (B, Q), values (B, Q, 128) -> (B, 128, h, w)."""
        logits = torch.cat([dynamic_conv(context, kernel, bias), self.background_logit(context)], dim=1)
        weights = logits.softmax(dim=1)
        b, q, h, w = weights.shape
        query_values = self.norm(values.reshape(-1, VALUE_DIM, 1, 1)).reshape(b, q - 1, VALUE_DIM)
        mixed = torch.matmul(query_values.transpose(1, 2), weights[:, :-1].flatten(2)).reshape(b, VALUE_DIM, h, w)
        return mixed + weights[:, -1:] * self.norm(self.background_value(context))


class FusionUNet(nn.Module):
    """Guidance + context -> /8 matting features through /16 and /32 with position attention."""

    def __init__(self) -> None:
        super().__init__()
        self.fuse8 = ConvResStage(2 * VALUE_DIM + HIDDEN + NUM_QUERIES, 512, 1, 32, relu(), 128, 2)
        self.down16 = ConvNormAct(512, 512, 3, 32, relu(), stride=2)
        self.fuse16 = ConvResStage(512 + 512 + 384, 512, 1, 32, leaky(), 128, 2)
        self.down32 = ConvNormAct(512, 768, 3, 32, leaky(), stride=2)
        self.fuse32 = ConvResStage(768 + 768, 1024, 1, 32, leaky(), 256, 1)
        self.attention = PositionAttention(1024, 256)
        self.post32 = ConvResStage(1024, 1024, 1, 32, leaky(), 256, 2)
        self.up16 = ConvResStage(512 + 1024 + 384, 512, 1, 32, leaky(), 128, 2,
                                 conv=functools.partial(UpsampledInputConv, low_at=512))
        self.up8 = ConvResStage(512 + 192 + 512, 512, 1, 32, leaky(), 128, 2, conv=UpsampledInputConv)

    def forward(self, guided: Tensor, f16: Tensor, x8: Tensor, x16: Tensor, x32: Tensor) -> Tensor:
        """The way up reads cat[m16, up2(p32), x16] and cat[up2(u16), x8, m8] (UpsampledInputConv entries)."""
        m8 = self.fuse8(guided)
        m16 = self.fuse16(torch.cat([self.down16(m8), f16, x16], dim=1))
        m32 = self.fuse32(torch.cat([self.down32(m16), x32], dim=1))
        p32 = self.post32(self.attention(m32))
        u16 = self.up16.blocks(entry_of_upsampled(self.up16.entry, p32, torch.cat([m16, x16], dim=1)))
        return self.up8.blocks(entry_of_upsampled(self.up8.entry, u16, torch.cat([x8, m8], dim=1)))


class TrimapHead(nn.Module):
    """/8 features for the per-query trimap kernels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(512, 512, 3, 32, relu())
        self.conv2 = ConvNormAct(512, HIDDEN, 3, 32, relu())

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


class Refiner(nn.Module):
    """/8 matting features -> 128-channel features at /2; the alpha head upsamples them to full size.

    Each stage's entry convolution reads an upsampled map beside finer features; it is an
    UpsampledInputConv, which builds neither the upsampled map nor the concatenation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stage4 = ConvResStage(512 + 96 + 128, 256, 3, 32, leaky(), 64, 3, conv=UpsampledInputConv)
        self.stage2 = nn.Sequential(ConvNormAct(256 + 64, 128, 3, 32, leaky(), conv=UpsampledInputConv),
                                    ConvNormAct(128, 128, 3, 32, leaky()))

    def forward(self, t8: Tensor, x4: Tensor, x4a: Tensor, x2: Tensor) -> Tensor:
        r4 = self.stage4.blocks(entry_of_upsampled(self.stage4.entry, t8, torch.cat([x4, x4a], dim=1)))
        return self.stage2[1](entry_of_upsampled(self.stage2[0], r4, x2))


def entry_of_upsampled(unit: ConvNormAct, low: Tensor, rest: Tensor) -> Tensor:
    """unit(cat[up2(low), rest]) for a unit whose convolution is an UpsampledInputConv."""
    return unit.act(unit.norm(unit.conv(low, rest)))


class AlphaHead(nn.Module):
    """alpha = clamp(dyn(conv2(conv1(cat[up2(features), image])), alpha kernel), 0, 1), computed cheaply.

    conv1 (3x3, 131 -> 96) and conv2 (3x3, 96 -> 64) have no nonlinearity (the official code's
    LeakyReLU(True) has negative slope 1, an identity), so with each query's 1x1 kernel they form one
    linear map: a 5x5 convolution 131 -> Q per image, built from the weights on every call. Its part
    on the upsampled features runs at their /2 size (conv.upsampled_conv); only the image's 3 channels
    are convolved at full size. Neither the upsampled features nor the two convolutions' maps are
    ever materialised. Only the outer one-pixel ring differs (conv2 zero-pads conv1's output, the
    composite cannot), so that ring is computed the two-step way on thin strips.

    The composite is a per-image (grouped) convolution, whose group count is the batch size; an
    export with a dynamic batch needs `fused=False`: the literal two convolutions and a matmul.
    """

    def __init__(self, fused: bool = True) -> None:
        super().__init__()
        self.fused = fused
        self.conv1 = Conv2d(128 + 3, 96, 3, padding=1)
        self.conv2 = Conv2d(96, ALPHA_FEATURES, 3, padding=1)
        self.register_buffer("taps", upsample_taps(5), persistent=False)

    def forward(self, features: Tensor, image: Tensor, kernel: Tensor, bias: Tensor) -> Tensor:
        """features (B, 128, H/2, W/2), image (B, 3, H, W), kernel (B, Q, 64), bias (B, Q) -> (B, Q, H, W)."""
        if not self.fused:
            alpha_features = self.conv2(self.conv1(torch.cat([upsample(features, 2), image], dim=1)))
            return dynamic_conv(alpha_features, kernel, bias).clamp(0, 1)
        k2 = torch.einsum("bqm,mnij->bqnij", kernel, self.conv2.weight)
        b2 = torch.matmul(kernel, self.conv2.bias) + bias
        composite, composite_bias = self._compose(k2, b2)
        split = features.shape[1]
        on_features = composite[:, :, :split]
        alpha = grouped_conv(image, composite[:, :, split:], 2, composite_bias)
        upsampled_conv(features, phase_kernels(on_features, self.taps), edge_kernels(on_features), alpha)
        top, bottom, left, right = self._ring(features, image, k2, b2)
        alpha[:, :, :, :1] = left
        alpha[:, :, :, -1:] = right
        alpha[:, :, :1] = top
        alpha[:, :, -1:] = bottom
        return alpha.clamp_(0, 1)

    def _compose(self, k2: Tensor, b2: Tensor) -> tuple[Tensor, Tensor]:
        """(conv1 then k2) as one 5x5 kernel (B, Q, 131, 5, 5) and its interior bias (B, Q)."""
        taps = torch.einsum("bqnij,ncuv->bqcijuv", k2, self.conv1.weight)  # conv2 tap (i, j) x conv1 tap (u, v)
        composite = sum(F.pad(taps[:, :, :, i, j], (j, 2 - j, i, 2 - i)) for i in range(3) for j in range(3))
        return composite, b2 + torch.einsum("bqnij,n->bq", k2, self.conv1.bias)

    def _ring(self, features: Tensor, image: Tensor, k2: Tensor, b2: Tensor) -> tuple[Tensor, ...]:
        """Exact border outputs, computed the two-step way: top, bottom rows; left, right columns.

        The first and last three rows (columns) of cat[up2(features), image], up2 taken from two rows
        (columns) of the features at each end, are stacked into one 6-row (6-column) strip: the outputs
        kept (its first and last) never see across the seam.
        """
        def two_step(dim: int) -> Tensor:
            first = upsample(features.narrow(dim, 0, 2), 2).narrow(dim, 0, 3)
            last = upsample(features.narrow(dim, features.shape[dim] - 2, 2), 2).narrow(dim, 1, 3)
            ends = [torch.cat([f, image.narrow(dim, start, 3)], dim=1)
                    for f, start in ((first, 0), (last, image.shape[dim] - 3))]
            return grouped_conv(self.conv1(torch.cat(ends, dim=dim)), k2, 1, b2)

        rows, cols = two_step(2), two_step(3)
        return rows[:, :, :1], rows[:, :, -1:], cols[..., :1], cols[..., -1:]


class E2EHIM(nn.Module):
    """Normalised RGB (B, 3, H, W), H and W multiples of 32 -> E2EHIMOutput.

    fused_alpha: the fast alpha head (see AlphaHead); False for an export with a dynamic batch.
    """

    def __init__(self, fused_alpha: bool = True) -> None:
        super().__init__()
        self.stem = Stem()
        self.backbone = SwinTiny()
        self.perception = Perception()
        self.context = ContextDecoder()
        self.guidance = nn.ModuleList(GuidanceHead() for _ in range(2))
        self.fusion = FusionUNet()
        self.trimap = TrimapHead()
        self.refiner = Refiner()
        self.alpha = AlphaHead(fused_alpha)

    def forward(self, image: Tensor) -> E2EHIMOutput:
        x2, x4a = self.stem(image)
        x4, x8, x16, x32 = self.backbone(x4a)
        k = self.perception(x32)
        f16, context = self.context(x8, x16, x32)
        guides = [head(context, k.affinity[:, i], k.affinity_bias[:, i], k.values[:, i])
                  for i, head in enumerate(self.guidance)]
        seg = torch.sigmoid(dynamic_conv(context, k.seg, k.seg_bias))
        t8 = self.fusion(torch.cat([*guides, context, seg], dim=1), f16, x8, x16, x32)
        trimap = dynamic_conv(self.trimap(t8), k.trimap, k.trimap_bias)
        alpha = self.alpha(self.refiner(t8, x4, x4a, x2), image, k.alpha, k.alpha_bias)
        b, _, h, w = trimap.shape
        return E2EHIMOutput(k.class_logits, alpha, trimap.reshape(b, NUM_QUERIES, TRIMAP_CLASSES, h, w))
