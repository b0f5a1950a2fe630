"""Sigmoid focal and dice costs between every predicted map and every target map.

The matcher uses the whole (Q, N) matrix; the losses use its diagonal over matched pairs, so the
cost that picks a pairing and the loss that trains it are one formula. Targets may be soft
(coverage in [0, 1]); for binary targets the focal cost is the usual sigmoid focal loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def focal_cost(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """logits (Q, P), targets (N, P) -> (Q, N): the focal loss of each pair, averaged over the P pixels."""
    p = torch.sigmoid(logits)
    positive = alpha * (1 - p) ** gamma * F.softplus(-logits)  # -log p
    negative = (1 - alpha) * p ** gamma * F.softplus(logits)  # -log(1 - p)
    return (positive @ targets.T + negative @ (1 - targets).T) / logits.shape[1]


def dice_cost(logits: Tensor, targets: Tensor) -> Tensor:
    """logits (Q, P), targets (N, P) -> (Q, N): 1 - the soft dice coefficient of each pair (+1 smoothing)."""
    p = torch.sigmoid(logits)
    overlap = 2 * p @ targets.T
    return 1 - (overlap + 1) / (p.sum(1, keepdim=True) + targets.sum(1)[None] + 1)
