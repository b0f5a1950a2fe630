"""Building blocks of E2E-HIM: conv + GroupNorm units, residual blocks, MLPs, dynamic convolution,
position attention. Group counts and activations are explicit at each use, as the official weights
depend on them."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livematte.model.conv import Conv2d


def relu() -> nn.Module:
    return nn.ReLU(inplace=True)


def leaky() -> nn.Module:
    return nn.LeakyReLU(0.01, inplace=True)


def upsample(x: Tensor, factor: int) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def residual_groups(channels: int) -> int:
    """GroupNorm group count inside residual blocks: 32 channels a group, else 16."""
    return channels // 32 if channels % 32 == 0 else channels // 16


class ConvNormAct(nn.Sequential):
    """Conv (padding k//2, bias) -> GroupNorm(groups) -> activation (omitted when act is None).

    conv: makes the convolution (conv.Conv2d, or a conv.UpsampledInputConv, which a caller runs itself)."""

    def __init__(self, cin: int, cout: int, kernel: int, groups: int, act: nn.Module | None,
                 stride: int = 1, conv: Callable[..., Conv2d] = Conv2d) -> None:
        super().__init__()
        self.conv = conv(cin, cout, kernel, stride, kernel // 2)
        self.norm = nn.GroupNorm(groups, cout)
        if act is not None:
            self.act = act


class ResBlock(nn.Module):
    """Bottleneck residual: 1x1 C->P, 3x3 P->P, 1x1 P->C, each GroupNorm'd; LeakyReLU after the sum."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.reduce = ConvNormAct(channels, bottleneck, 1, residual_groups(bottleneck), relu())
        self.conv = ConvNormAct(bottleneck, bottleneck, 3, residual_groups(bottleneck), leaky())
        self.expand = ConvNormAct(bottleneck, channels, 1, residual_groups(channels), None)

    def forward(self, x: Tensor) -> Tensor:
        y = self.expand(self.conv(self.reduce(x)))
        y += x
        return F.leaky_relu(y, 0.01, inplace=True)


class ConvResStage(nn.Sequential):
    """ConvNormAct entry followed by `blocks` residual blocks at the entry's width."""

    def __init__(self, cin: int, cout: int, kernel: int, groups: int, act: nn.Module, bottleneck: int,
                 blocks: int, conv: Callable[..., Conv2d] = Conv2d) -> None:
        super().__init__()
        self.entry = ConvNormAct(cin, cout, kernel, groups, act, conv=conv)
        self.blocks = nn.Sequential(*(ResBlock(cout, bottleneck) for _ in range(blocks)))


class Mlp(nn.Module):
    """`layers` Linear layers in -> hidden -> ... -> out with ReLU between them, none after the last."""

    def __init__(self, cin: int, hidden: int, cout: int, layers: int) -> None:
        super().__init__()
        dims = [cin] + [hidden] * (layers - 1) + [cout]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def dynamic_conv(features: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Per-query 1x1 convolution with generated weights, all queries in one batched matmul.

    features (B, C, H, W), weight (B, Q, C), bias (B, Q) -> (B, Q, H, W).
    """
    b, _, h, w = features.shape
    out = torch.matmul(weight, features.flatten(2)) + bias.unsqueeze(-1)
    return out.reshape(b, -1, h, w)


class PositionAttention(nn.Module):
    """DANet position attention: softmax(Q^T K) over positions (no scaling), gamma * out + x."""

    def __init__(self, channels: int, key_channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, key_channels, 1)
        self.key = nn.Conv2d(channels, key_channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, N, Ck)
        k = self.key(x).flatten(2)  # (B, Ck, N)
        v = self.value(x).flatten(2)  # (B, C, N)
        attention = torch.softmax(torch.matmul(q, k), dim=-1)  # (B, N, N): rows are queries i
        out = torch.matmul(v, attention.transpose(1, 2))  # out[:, :, i] = sum_j A[i, j] v[:, :, j]
        return self.gamma * out.reshape(x.shape) + x
