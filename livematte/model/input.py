"""The network's input: its size rule and the letterboxed, normalised batch it reads.

Shared by the engines (livematte/engine/network_engine.py), the ONNX export and training, so that all
of them feed the network the same way.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.letterbox import Letterbox
from kernels.preprocess import IMAGENET_MEAN, IMAGENET_STD

MULTIPLE = 32


def check_input_size(input_size: tuple[int, int] | None) -> None:
    if input_size is not None and (input_size[0] % MULTIPLE or input_size[1] % MULTIPLE or min(input_size) <= 0):
        raise ValueError(f"input_size must be positive multiples of {MULTIPLE}, got {input_size}")


@functools.cache
def normalisation(device: torch.device) -> tuple[Tensor, Tensor]:
    """ImageNet mean and std as (1, 3, 1, 1) tensors on `device`, made once: on a GPU each new one
    would be a host-to-device copy per frame. Normal tensors even when first asked for under inference_mode,
    so callers outside it (export, training) can use them too."""
    with torch.inference_mode(False):
        return tuple(torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))


def preprocess(frames: Tensor, box: Letterbox) -> Tensor:
    """uint8 BGR (B, H, W, 3) -> normalised RGB float (B, 3, out_h, out_w), letterboxed with zeros.

    Bilinear resize (antialiased when shrinking) to the content size, then centred in the canvas;
    the padding is 0 after normalisation.
    """
    x = frames.permute(0, 3, 1, 2).flip(1).float().div_(255.0)
    if (box.content_h, box.content_w) != (box.src_h, box.src_w):
        shrink = box.content_h < box.src_h or box.content_w < box.src_w
        x = F.interpolate(x, size=(box.content_h, box.content_w), mode="bilinear", align_corners=False,
                          antialias=shrink)
    mean, std = normalisation(x.device)
    x = (x - mean) / std
    right = box.out_w - box.content_w - box.left
    bottom = box.out_h - box.content_h - box.top
    return F.pad(x, (box.left, right, box.top, bottom))
