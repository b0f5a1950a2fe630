"""Convolutions: NNPACK's fast path on the CPU, per-image weights, and convolutions of upsampled maps.

oneDNN computes 3x3 and 5x5 convolutions directly. NNPACK, built into torch's CPU wheels, computes
them through Winograd F(6x6, 3x3) and FFT tiles: 2-3x faster on the large convolutions of the
refiner and the alpha head, with errors at the level of fp32 rounding (whole network against float64:
the same 1e-5 as oneDNN). It serves only what it does well: fp32 CPU inference on NCHW tensors,
stride 1, one group, one image at a time (its batched path is several times slower than a loop).
Training, autocast, export and CUDA keep torch's usual convolution. Modules keep their 3x3 kernels'
Winograd transforms between calls (nnpack.py); per-image kernels are transformed in each call.

`upsampled_conv` convolves up2(x) without building it: bilinear x2 upsampling is linear, so each of
the four output phases (row and column parity) is a convolution of x itself. The phases run at x's
resolution as one convolution with four times the outputs, which are added into the output where
they belong (a pixel shuffle folded into the addition). Same multiply-adds, but neither the upsampled
map nor a concatenation with it is ever written, which on a CPU short of memory bandwidth is where
the time of the full-resolution layers goes.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livematte.model import nnpack
from livematte.model.kept import KeptWeights, eager_cpu_inference

FAST_KERNELS = (3, 5)
# below about 32 x 32, transforming the kernel costs more than NNPACK saves (2-3x slower at 11 x 20 here);
# with the transform kept, NNPACK is faster at every size (1.6-1.9x at 11 x 20 and 16 x 16)
MIN_PIXELS = 1024


@functools.cache
def nnpack_ready() -> bool:
    """Whether NNPACK exists in this torch build; the check also initialises it, which it needs."""
    return torch._nnpack_available()


def nnpack_serves(x: Tensor, kernel: tuple[int, ...], stride: int = 1, groups: int = 1) -> bool:
    """Whether NNPACK can take this convolution: fp32 CPU inference, square 3x3 or 5x5, stride 1, one group."""
    return (kernel[0] == kernel[1] and kernel[0] in FAST_KERNELS and stride == 1 and groups == 1
            and eager_cpu_inference(x) and nnpack_ready())


def nnpack_applies(x: Tensor, kernel: tuple[int, ...], stride: int = 1, groups: int = 1) -> bool:
    """Whether NNPACK is faster when it transforms the kernel in the call."""
    return nnpack_serves(x, kernel, stride, groups) and x.shape[-2] * x.shape[-1] >= MIN_PIXELS


def _nnpack_conv(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int,
                 transformed: Tensor | None = None) -> Tensor:
    """NNPACK's convolution, image by image; the caller checked nnpack_serves (and the size, without a transform).

    transformed: nnpack.transform(weight), kept by the caller. Builds whose libtorch does not export
    NNPACK's C API take torch's op, which transforms the kernel in every call."""
    if nnpack.available():
        images = [nnpack.convolve(image, weight, bias, padding, transformed) for image in x.split(1)]
    else:
        weight = weight.contiguous()
        images = [torch._nnpack_spatial_convolution(image.contiguous(), weight, bias, [padding, padding])
                  for image in x.split(1)]
    return images[0] if len(images) == 1 else torch.cat(images)


def kept_transform(kept: KeptWeights, weight: Tensor, name: str, x: Tensor,
                   kernel: Tensor | None = None) -> Tensor | None:
    """NNPACK's transform of the 3x3 `kernel` (default: the weight itself, else derived from it) for
    convolving x, kept in `kept`; None where NNPACK does not serve x or the transform would not be kept."""
    kernel = weight if kernel is None else kernel
    if not (kernel.shape[-1] == 3 and nnpack_serves(x, kernel.shape[-2:]) and nnpack.available()
            and kept.keeps(weight)):
        return None
    return kept.get(weight, name, lambda: nnpack.transform(kernel))


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int, stride: int = 1,
           transformed: Tensor | None = None) -> Tensor:
    """F.conv2d with square kernels and zero padding, through NNPACK where it applies.

    transformed: the weight's kept NNPACK transform (kept_transform), if any."""
    if transformed is not None or nnpack_applies(x, weight.shape[-2:], stride):
        return _nnpack_conv(x, weight, bias, padding, transformed)
    return F.conv2d(x, weight, bias, stride, padding)


class Conv2d(nn.Conv2d):
    """nn.Conv2d (square kernel, zero padding, no dilation) that uses NNPACK where it applies."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kept = KeptWeights()

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.stride[0] != 1 or self.groups != 1:
            return super()._conv_forward(input, weight, bias)
        transformed = kept_transform(self.kept, weight, "transform", input)
        return conv2d(input, weight, bias, self.padding[0], transformed=transformed)


def grouped_conv(x: Tensor, weight: Tensor, padding: int, bias: Tensor | None = None) -> Tensor:
    """Per-image convolution: x (B, C, H, W) with weight (B, O, C, k, k), bias (B, O) -> (B, O, H, W).

    The weight takes the input's memory format; a mismatch makes oneDNN convert the whole input.
    Where NNPACK applies each image gets its own NNPACK convolution instead.
    """
    if nnpack_applies(x, weight.shape[-2:]):
        biases = [None] * len(x) if bias is None else bias
        return torch.cat([_nnpack_conv(image, w, b, padding) for image, w, b in zip(x.split(1), weight, biases)])
    b, o = weight.shape[:2]
    flat = x.reshape(1, -1, *x.shape[2:])
    layout = torch.channels_last if flat.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    weight = weight.reshape(b * o, *weight.shape[2:]).contiguous(memory_format=layout)
    flat_bias = None if bias is None else bias.reshape(-1)
    out = F.conv2d(flat, weight, flat_bias, padding=padding, groups=b)
    return out.reshape(b, o, *out.shape[2:])


def upsample_taps(kernel: int) -> Tensor:
    """(2, k, k) M[a, d, s]: weight of row i + s - r of x in row 2i + a + d - r of up2(x), r = k // 2.

    up2 (bilinear, align_corners=False) makes row 2m from rows m - 1, m (1/4, 3/4) and row 2m + 1
    from rows m, m + 1 (3/4, 1/4), the rows outside x replaced by its edge rows. Modules keep it as a
    buffer, so it follows them to their device and an export sees a constant.
    """
    r = kernel // 2
    taps = torch.zeros(2, kernel, kernel)
    for a in range(2):
        for d in range(-r, r + 1):
            half, parity = divmod(a + d, 2)
            for t, weight in ((-1, 0.25), (0, 0.75)) if parity == 0 else ((0, 0.75), (1, 0.25)):
                taps[a, d + r, half + t + r] += weight
    return taps


def phase_kernels(weight: Tensor, taps: Tensor) -> Tensor:
    """Kernels on up2(x) (..., O, C, k, k) -> kernels on x (..., 4 O, C, k, k), in pixel-shuffle order.

    taps: upsample_taps(k)."""
    m = taps.to(weight.dtype)
    phased = torch.einsum("ads,...ocde,fet->...oafcst", m, weight, m)
    return phased.reshape(*weight.shape[:-4], 4 * weight.shape[-4], *weight.shape[-3:])


EDGES = ((-2, False), (-2, True), (-1, False), (-1, True))  # top, bottom, left, right: (axis, at its end)


def edge_kernels(weight: Tensor) -> Tensor:
    """The matrices edge_echoes multiplies by: (..., 4, r O, C k) for kernels (..., O, C, k, k), r = k // 2.

    For each edge (EDGES) and each of the r output rows (columns) next to it, the sum of the kernel rows
    (columns) that reach past the edge."""
    k = weight.shape[-1]
    r = k // 2
    matrices = []
    for dim, last in EDGES:
        parts = [(k - 1 - i, i + 1) if last else (0, r - i) for i in range(r)]  # (first kernel row, count)
        reaching = torch.cat([weight.narrow(dim, start, count).sum(dim) for start, count in parts], dim=-3)
        matrices.append(reaching.flatten(-2))
    return torch.stack(matrices, dim=-3)


def upsampled_conv(x: Tensor, phases: Tensor, edges: Tensor, out: Tensor, transformed: Tensor | None = None) -> None:
    """Adds conv(up2(x), weight) (zero padding k // 2, no bias) to out, up2 never materialised.

    For weight (O, C, k, k), or (B, O, C, k, k) for one weight per image: phases: phase_kernels(weight),
    edges: edge_kernels(weight); transformed: the phases' kept NNPACK transform, if any; out (B, O, 2H, 2W).
    x is padded with its edge rows and columns, which reproduces up2's own edge rule inside the map;
    outside it the phases see the map's edge rows and columns repeated where the convolution sees
    zeros. What those repeats add to the outer k // 2 rows and columns (`edge_echoes`) is subtracted.
    """
    r, per_image = phases.shape[-1] // 2, phases.dim() == 5
    padded = F.pad(x, (r, r, r, r), mode="replicate")
    phased = (grouped_conv(padded, phases, 0) if per_image
              else conv2d(padded, phases, None, 0, transformed=transformed))
    b, o, h, w = out.shape  # phase (a, c) of output channel o lands on rows 2i + a, columns 2j + c
    out.view(b, o, h // 2, 2, w // 2, 2).add_(phased.view(b, o, 2, 2, h // 2, w // 2).permute(0, 1, 4, 2, 5, 3))
    top, bottom, left, right = edge_echoes(x, edges)
    out[..., :r, :] -= top
    out[..., -r:, :] -= bottom
    out[..., :r] -= left
    out[..., -r:] -= right


def edge_echoes(x: Tensor, edges: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """What the repeats outside up2(x) add to the outer r = k // 2 output rows and columns.

    Above the map each of the r repeated rows is up2(x)'s first row (itself extended sideways by
    repeats), so output row i gets that row convolved with the sum of the kernel rows that reach above
    the map (the first r - i; edges: edge_kernels). Below likewise; left and right the same with
    columns, over the map's own rows only (the corners belong to the rows). Each edge is one matrix
    product over its line's k shifts: a convolution library spends more on setting up such a thin
    convolution than on computing it. -> top, bottom (B, O, r, 2W); left, right (B, O, 2H, r).
    """
    k = edges.shape[-1] // x.shape[1]
    r = k // 2
    echoes = []
    for index, (dim, last) in enumerate(EDGES):
        line = x.narrow(dim, x.shape[dim] - 1 if last else 0, 1).squeeze(dim)  # (B, C, L)
        line = F.interpolate(line, scale_factor=2, mode="linear", align_corners=False)
        line = F.pad(line, (r, r), mode="replicate" if dim == -2 else "constant")
        length = line.shape[-1] - 2 * r
        shifts = torch.stack([line.narrow(-1, t, length) for t in range(k)], dim=-2)  # (B, C, k, 2L)
        echo = (edges.select(-3, index) @ shifts.flatten(1, 2)).unflatten(1, (r, -1))  # (B, r, O, 2L)
        echoes.append(echo.movedim(1, 2) if dim == -2 else echo.permute(0, 2, 3, 1))
    return tuple(echoes)


class UpsampledInputConv(Conv2d):
    """A convolution of cat[before, up2(low), after], called as conv(low, rest) with rest = cat[before, after].

    low_at: where up2(low)'s channels start (before's channel count). Neither the upsampled map nor the
    whole concatenation is built: a 1x1 convolution commutes with the upsampling (one mixes channels,
    the other pixels, both linear), so it runs on low at low's size, a quarter of the multiply-adds,
    and its output is upsampled; larger kernels run through upsampled_conv. The weight's split (low's
    part or its phase kernels, and a contiguous rest) and their NNPACK transforms are kept (KeptWeights).
    """

    def __init__(self, *args, low_at: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.low_at = low_at
        if self.kernel_size[0] > 1:
            self.register_buffer("taps", upsample_taps(self.kernel_size[0]), persistent=False)

    def forward(self, low: Tensor, rest: Tensor) -> Tensor:
        weight, start, end = self.weight, self.low_at, self.low_at + low.shape[1]
        rest_weight = self.kept.get(weight, f"rest {start}:{end}",
                                    lambda: torch.cat([weight[:, :start], weight[:, end:]], dim=1))
        out = conv2d(rest, rest_weight, self.bias, self.padding[0],
                     transformed=kept_transform(self.kept, weight, f"rest transform {start}:{end}", rest, rest_weight))
        low_weight = self.kept.get(weight, f"low {start}:{end}", lambda: weight[:, start:end].contiguous())
        if self.kernel_size[0] == 1:
            out += F.interpolate(F.conv2d(low, low_weight), scale_factor=2, mode="bilinear", align_corners=False)
            return out
        phases = self.kept.get(weight, f"phases {start}:{end}", lambda: phase_kernels(low_weight, self.taps))
        edges = self.kept.get(weight, f"edges {start}:{end}", lambda: edge_kernels(low_weight))
        transformed = kept_transform(self.kept, weight, f"phases transform {start}:{end}", low, phases)
        upsampled_conv(low, phases, edges, out, transformed)
        return out
