"""Hungarian matching of the network's queries to the people of each image (DETR-style).

Cost of giving person n to query q: - p(human | q) x classification + focal(seg_q, person n) x focal
+ dice(seg_q, person n) x dice, on the /8 segmentation maps; scipy solves the assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from livematte.train.config import MatcherConfig
from livematte.train.mask_costs import dice_cost, focal_cost


@dataclass(frozen=True)
class Match:
    """queries[k] is matched to person targets[k] (int64 tensors of equal length)."""

    queries: Tensor
    targets: Tensor


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, N) cost -> (query indices, target indices) of the cheapest one-to-one assignment, by target."""
    queries, targets = linear_sum_assignment(cost)
    order = np.argsort(targets)
    return queries[order], targets[order]


def matching_cost(class_logits: Tensor, seg_logits: Tensor, seg_targets: Tensor, cfg: MatcherConfig,
                  focal_alpha: float = 0.25, focal_gamma: float = 2.0) -> Tensor:
    """class_logits (Q, 2), seg_logits (Q, h, w), seg_targets (N, h, w) -> cost (Q, N)."""
    logits, targets = seg_logits.flatten(1).float(), seg_targets.flatten(1).float()
    human = class_logits.float().softmax(-1)[:, 1:]
    return (-cfg.classification * human + cfg.focal * focal_cost(logits, targets, focal_alpha, focal_gamma)
            + cfg.dice * dice_cost(logits, targets))


@torch.no_grad()
def match_batch(class_logits: Tensor, seg_logits: Tensor, seg_targets: list[Tensor], cfg: MatcherConfig,
                focal_alpha: float = 0.25, focal_gamma: float = 2.0) -> list[Match]:
    """One Match per image: class_logits (B, Q, 2), seg_logits (B, Q, h, w), seg_targets[b] (N_b, h, w)."""
    matches = []
    for b, targets in enumerate(seg_targets):
        device = class_logits.device
        if len(targets) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            matches.append(Match(empty, empty))
            continue
        cost = matching_cost(class_logits[b], seg_logits[b], targets, cfg, focal_alpha, focal_gamma)
        queries, people = assign(cost.cpu().numpy())
        matches.append(Match(torch.as_tensor(queries, device=device), torch.as_tensor(people, device=device)))
    return matches
