"""Swin-Tiny backbone in the dense-prediction form used by E2E-HIM.

Differences from the classification Swin: the patch embedding is a 1x1 convolution on the stem's
stride-4 features (no 4x4 patchify), windows pad the map to multiples of 7 (so any input multiple of
32 works) and every stage returns its output through its own LayerNorm. Shift masks, paddings and
the token gathers that form windows are derived from tensor shapes only, so a trace with a fixed
spatial size and a free batch holds.

Its linear layers multiply through oneDNN with packed weights on the CPU (linear.py).
A block gathers the map's tokens into windows in one indexing (the official code pads, rolls and
partitions: three copies) and back the same way. The attention's per-token projections run on the
map's tokens only, not on the padding (a third of the tokens at /16 and /32 of a 640x352 input):
`qkv` before the tokens are gathered into windows (a padding token, zero, projects to the bias), the
output projection `proj` after they are gathered back.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livematte.model.kept import tracing
from livematte.model.linear import Linear

WINDOW = 7
SHIFT = WINDOW // 2
EMBED_DIM = 96
DEPTHS = (2, 2, 6, 2)
HEADS = (3, 6, 12, 24)
STAGE_CHANNELS = tuple(EMBED_DIM * 2**i for i in range(len(DEPTHS)))  # 96, 192, 384, 768


def relative_position_index(window: int) -> Tensor:
    """(window^2, window^2) index into the relative position bias table (the standard Swin order)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def window_partition(x: Tensor) -> Tensor:
    """(B, Hp, Wp, C) -> (B * nW, WINDOW^2, C), windows in row-major order."""
    _, hp, wp, c = x.shape
    x = x.reshape(-1, hp // WINDOW, WINDOW, wp // WINDOW, WINDOW, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, WINDOW * WINDOW, c)


def shift_mask(hp: int, wp: int, device: torch.device) -> Tensor:
    """(nW, WINDOW^2, WINDOW^2) additive mask for shifted windows of a padded hp x wp map.

    Each axis splits into the regions [0, -7), [-7, -3), [-3, end); token pairs from different
    regions get -100, as in the official Swin.
    """
    rows = torch.arange(hp, device=device)
    cols = torch.arange(wp, device=device)
    row_region = (rows >= hp - WINDOW).long() + (rows >= hp - SHIFT).long()
    col_region = (cols >= wp - WINDOW).long() + (cols >= wp - SHIFT).long()
    labels = (row_region[:, None] * 3 + col_region[None, :]).reshape(1, hp, wp, 1)
    windows = window_partition(labels).squeeze(-1)  # (nW, 49)
    different = windows[:, None, :] != windows[:, :, None]
    return different.float() * -100.0


def padded(size: int) -> int:
    return -(-size // WINDOW) * WINDOW


def window_gathers(h: int, w: int, shifted: bool, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """_window_gathers, kept per shape except in a trace, whose tensors must not outlive it. Kept ones are
    made as normal tensors even in inference mode, so that a later forward with gradients can use them."""
    if tracing():
        return _window_gathers.__wrapped__(h, w, shifted, device)
    with torch.inference_mode(False):
        return _window_gathers(h, w, shifted, device)


@functools.lru_cache(maxsize=32)
def _window_gathers(h: int, w: int, shifted: bool, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Token indices that turn an h x w map into windows and back, as the official pad, roll, partition.

    -> order (hp * wp,): for each window position (windows row-major, tokens row-major inside), the
    map token it holds (any token where it holds padding); padding: the window positions that hold
    padding; back (h * w,): the window position of each map token. Shifted windows see the padded
    map rolled by -SHIFT on both axes.
    """
    hp, wp = padded(h), padded(w)
    shift = SHIFT if shifted else 0
    i, j = torch.meshgrid(torch.arange(hp, device=device), torch.arange(wp, device=device), indexing="ij")
    source_i, source_j = (i + shift) % hp, (j + shift) % wp  # the padded map's token at rolled (i, j)
    inside = (source_i < h) & (source_j < w)
    order = window_partition(torch.where(inside, source_i * w + source_j, 0)[None, ..., None]).reshape(-1)
    # as many as the shapes say (no data-dependent size, which an export cannot follow)
    padding = torch.topk(window_partition(~inside[None, ..., None]).reshape(-1).int(), hp * wp - h * w).indices
    r, c = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    i, j = (r - shift) % hp, (c - shift) % wp  # where map token (r, c) sits in the rolled map
    back = ((i // WINDOW) * (wp // WINDOW) + j // WINDOW) * WINDOW**2 + (i % WINDOW) * WINDOW + j % WINDOW
    return order, padding, back.reshape(-1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside 7x7 windows with a learned relative position bias.

    Both projections are per token, so the block applies them outside: `qkv` to the map's tokens before
    they are gathered into windows, `proj` once they are out of them; forward is what happens inside.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * WINDOW - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(WINDOW), persistent=False)
        self.qkv = Linear(dim, dim * 3)
        self.proj = Linear(dim, dim)

    def forward(self, qkv: Tensor, mask: Tensor | None) -> Tensor:
        """qkv: the windows' tokens projected by `qkv`, (B * nW, N, 3 C); mask: (nW, N, N) or None
        -> (B * nW, N, C), not projected."""
        n, c = qkv.shape[1], qkv.shape[2] // 3
        qkv = qkv.reshape(-1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        bias = bias.reshape(n, n, self.heads).permute(2, 0, 1)
        if mask is not None:
            bias = bias + mask[:, None]  # (nW, heads, N, N): one addition to the scores instead of two
        attn.view(-1, *bias.shape).add_(bias)
        return (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(-1, n, c)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden, gelu=True)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(x))


class SwinBlock(nn.Module):
    """Pre-norm block on a (B, H, W, C) map; `shifted` blocks roll the windows by 3."""

    def __init__(self, dim: int, heads: int, shifted: bool) -> None:
        super().__init__()
        self.shifted = shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, h, w, c = x.shape
        order, padding, back = window_gathers(h, w, self.shifted, x.device)
        windows = self.attn.qkv(self.norm1(x).reshape(b, h * w, c)).index_select(1, order)
        # the official code pads the normalised map with zeros, which the product takes to its bias
        windows.index_copy_(1, padding, self.attn.qkv.bias.to(windows.dtype).expand(b, len(padding), -1))
        y = self.attn(windows.reshape(-1, WINDOW * WINDOW, 3 * c), mask if self.shifted else None)
        x = x + self.attn.proj(y.reshape(b, -1, c).index_select(1, back)).reshape(b, h, w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Halves H and W: 2x2 neighbours concatenated on channels, LayerNorm, linear 4C -> 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """Blocks alternating plain and shifted windows; the shift mask is built once per call."""

    def __init__(self, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(SwinBlock(dim, heads, shifted=i % 2 == 1) for i in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        mask = shift_mask(padded(x.shape[1]), padded(x.shape[2]), x.device).to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return x


class PatchEmbed(nn.Module):
    """1x1 convolution of the stem's stride-4 features to the embedding width, then LayerNorm."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinTiny(nn.Module):
    """(B, 128, H/4, W/4) stem features -> [x4, x8, x16, x32], NCHW with 96/192/384/768 channels."""

    def __init__(self, in_channels: int = 128) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, EMBED_DIM)
        self.stages = nn.ModuleList(SwinStage(c, d, h) for c, d, h in zip(STAGE_CHANNELS, DEPTHS, HEADS))
        self.merges = nn.ModuleList(PatchMerging(c) for c in STAGE_CHANNELS[:-1])
        self.out_norms = nn.ModuleList(nn.LayerNorm(c) for c in STAGE_CHANNELS)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.patch_embed(x)
        outputs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outputs.append(self.out_norms[i](x).permute(0, 3, 1, 2))
            if i < len(self.merges):
                x = self.merges[i](x)
        return outputs
