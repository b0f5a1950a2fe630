"""Training targets derived from each person's alpha: the trimap classes and the /8 segmentation map."""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2  # the network's trimap class order
SEG_STRIDE = 8
_SOLID = 1e-3  # alpha within this of 0 or 1 counts as solid


def trimap_from_alpha(alphas: np.ndarray, width: int) -> np.ndarray:
    """(N, H, W) alphas -> uint8 classes: foreground where alpha is 1 and background where it is 0,
    both eroded by `width` pixels; unknown elsewhere (soft edges plus a band of 2 x width around them)."""
    trimaps = np.full(alphas.shape, UNKNOWN, np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    for trimap, alpha in zip(trimaps, alphas):
        for cls, solid in ((FOREGROUND, alpha >= 1 - _SOLID), (BACKGROUND, alpha <= _SOLID)):
            mask = solid.astype(np.uint8)
            if width:
                mask = cv2.erode(mask, kernel, borderType=cv2.BORDER_REPLICATE)
            trimap[mask.astype(bool)] = cls
    return trimaps


def seg_from_alpha(alphas: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, H/8, W/8): the alpha coverage of each cell, the target of the /8 segmentation."""
    n, h, w = alphas.shape
    return alphas.reshape(n, h // SEG_STRIDE, SEG_STRIDE, w // SEG_STRIDE, SEG_STRIDE).mean(axis=(2, 4))
