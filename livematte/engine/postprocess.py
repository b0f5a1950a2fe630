"""Raw E2E-HIM outputs -> per-frame person mattes at frame size, batched on the outputs' device.

The official evaluation's rules: keep a query when p(human) passes the threshold, fuse its alpha
with its trimap (alpha where unknown, 1 where foreground, 0 where background), drop mattes whose
area at frame size is under `min_area`. Only kept queries get their trimap upsampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.letterbox import Letterbox
from livematte.engine.base import Instances
from livematte.model.e2ehim import E2EHIMOutput, upsample_trimap


@dataclass(frozen=True)
class PostprocessConfig:
    """threshold: p(human) must exceed it (0.5 = the official logit[1] > logit[0]).
    min_area: least sum of matte values at frame size, in pixels (official: 1000)."""

    threshold: float = 0.5
    min_area: float = 1000.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.min_area < 0:
            raise ValueError(f"min_area must be >= 0, got {self.min_area}")


def fuse_trimap(alpha: Tensor, trimap_logits: Tensor) -> Tensor:
    """alpha (K, H, W), full-resolution trimap logits (K, 3, H, W) -> matte (K, H, W).

    The trimap class is the argmax (ties to the lower class), written as comparisons: an argmax over
    the strided class axis costs ten times more.
    """
    background, unknown, foreground = trimap_logits.unbind(dim=1)
    is_foreground = (foreground > background) & (foreground > unknown)
    is_unknown = (unknown > background) & (unknown >= foreground)
    return torch.where(is_foreground, 1.0, torch.where(is_unknown, alpha, 0.0))


def crop_content(x: Tensor, box: Letterbox) -> Tensor:
    """(..., out_h, out_w) at network size -> (..., content_h, content_w): the letterbox padding removed."""
    return x[..., box.top: box.top + box.content_h, box.left: box.left + box.content_w]


def resize_to_frame(mattes: Tensor, box: Letterbox) -> Tensor:
    """(K, content_h, content_w) -> (K, src_h, src_w), bilinear (antialiased when shrinking)."""
    size = (box.src_h, box.src_w)
    if mattes.shape[-2:] == size:
        return mattes
    shrink = box.content_h > box.src_h or box.content_w > box.src_w
    return F.interpolate(mattes.unsqueeze(1), size=size, mode="bilinear", align_corners=False,
                         antialias=shrink).squeeze(1)


def postprocess(output: E2EHIMOutput, box: Letterbox, config: PostprocessConfig = PostprocessConfig()
                ) -> list[Instances]:
    """One Instances per image of the batch (torch tensors on the outputs' device, float32)."""
    logits = output.class_logits.float()
    probs = logits.softmax(dim=-1)[..., 1]
    keep = logits[..., 1] - logits[..., 0] > math.log(config.threshold / (1.0 - config.threshold))
    frame, query = keep.nonzero(as_tuple=True)
    trimap = crop_content(upsample_trimap(output.trimap_logits[frame, query].float()), box)
    alpha = crop_content(output.alpha[frame, query].float(), box)
    mattes = resize_to_frame(fuse_trimap(alpha, trimap), box)
    large = mattes.sum(dim=(1, 2)) >= config.min_area
    kept_probs = probs[frame, query]
    return [Instances(mattes=mattes[large & (frame == b)], probs=kept_probs[large & (frame == b)])
            for b in range(logits.shape[0])]
