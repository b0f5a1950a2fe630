"""The training losses of E2E-HIM, on the queries the matcher paired with people.

- classification: cross-entropy over all queries, unmatched ones labelled background with class
  weight `background` (0.1);
- segmentation: focal + dice between the /8 seg logits and each person's /8 coverage;
- trimap: focal loss of the full-resolution trimap logits against the trimap from the alpha;
- alpha: L1 inside the true unknown region plus L1 inside the predicted unknown region (where the
  official post-processing uses the alpha), each averaged over its region, on the alpha before its
  clamp (see taps.py; clamping never increases the error, so this bounds the clamped one).
Per-person terms are summed and divided by the number of people in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from livematte.model.e2ehim import E2EHIMOutput, upsample_trimap
from livematte.train.config import LossConfig
from livematte.train.datasets import Targets
from livematte.train.mask_costs import dice_cost, focal_cost
from livematte.train.matcher import Match
from livematte.train.taps import Taps
from livematte.train.targets import UNKNOWN


@dataclass(frozen=True)
class LossTerms:
    """Weighted terms (scalar tensors) and their sum."""

    classification: Tensor
    seg_focal: Tensor
    seg_dice: Tensor
    trimap: Tensor
    alpha: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


def trimap_focal(logits: Tensor, classes: Tensor, gamma: float) -> Tensor:
    """logits (K, 3, H, W), classes (K, H, W) -> (K,): (1 - p_true)^gamma x cross-entropy, pixel mean."""
    log_p = F.log_softmax(logits, dim=1).gather(1, classes.unsqueeze(1)).squeeze(1)
    return (-(1 - log_p.exp()) ** gamma * log_p).mean(dim=(1, 2))


def region_l1(alpha: Tensor, truth: Tensor, region: Tensor) -> Tensor:
    """(K, H, W) each -> (K,): mean |alpha - truth| over each person's region (0 where it is empty)."""
    region = region.to(alpha.dtype)
    return ((alpha - truth).abs() * region).sum(dim=(1, 2)) / region.sum(dim=(1, 2)).clamp(min=1)


def criterion(output: E2EHIMOutput, taps: Taps, targets: list[Targets], matches: list[Match],
              cfg: LossConfig) -> LossTerms:
    class_logits = output.class_logits.float()
    labels = torch.zeros(class_logits.shape[:2], dtype=torch.long, device=class_logits.device)
    for b, match in enumerate(matches):
        labels[b, match.queries] = 1
    weight = torch.tensor([cfg.background, 1.0], device=class_logits.device)
    classification = F.cross_entropy(class_logits.flatten(0, 1), labels.flatten(), weight=weight)

    images = torch.cat([torch.full_like(m.queries, b) for b, m in enumerate(matches)])
    queries = torch.cat([m.queries for m in matches])
    people = len(queries)
    if people == 0:
        zero = classification.new_zeros(())
        return _weighted(cfg, classification, zero, zero, zero, zero)
    truth = [torch.cat([getattr(t, name)[m.targets] for t, m in zip(targets, matches)])
             for name in ("seg", "trimaps", "alphas")]
    seg_truth, trimap_truth, alpha_truth = truth
    seg = taps.seg_logits[images, queries].flatten(1).float()
    seg_focal = focal_cost(seg, seg_truth.flatten(1), cfg.focal_alpha, cfg.focal_gamma).diagonal().sum() / people
    seg_dice = dice_cost(seg, seg_truth.flatten(1)).diagonal().sum() / people
    trimap_logits = upsample_trimap(output.trimap_logits[images, queries].float())
    trimap = trimap_focal(trimap_logits, trimap_truth, cfg.focal_gamma).sum() / people
    alpha = taps.raw_alpha[images, queries].float()
    predicted_unknown = trimap_logits.detach().argmax(dim=1) == UNKNOWN
    alpha_l1 = (region_l1(alpha, alpha_truth, trimap_truth == UNKNOWN)
                + region_l1(alpha, alpha_truth, predicted_unknown)).sum() / people
    return _weighted(cfg, classification, seg_focal, seg_dice, trimap, alpha_l1)


def _weighted(cfg: LossConfig, classification: Tensor, seg_focal: Tensor, seg_dice: Tensor, trimap: Tensor,
              alpha: Tensor) -> LossTerms:
    terms = (cfg.classification * classification, cfg.seg_focal * seg_focal, cfg.seg_dice * seg_dice,
             cfg.trimap * trimap, cfg.alpha * alpha)
    return LossTerms(*terms, total=sum(terms))
