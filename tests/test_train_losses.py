"""The paper's losses on hand-built outputs with known values, and the taps they read from the network."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from livematte.model.e2ehim import E2EHIM, E2EHIMOutput
from livematte.train.config import LossConfig
from livematte.train.datasets import Targets
from livematte.train.losses import criterion, region_l1, trimap_focal
from livematte.train.matcher import Match
from livematte.train.taps import TapRecorder, Taps
from livematte.train.targets import BACKGROUND, FOREGROUND, UNKNOWN

Q, S = 4, 16


def person() -> Targets:
    """One 8x8 opaque square with a one-pixel soft rim (alpha 0.5, trimap unknown)."""
    alpha = torch.zeros(1, S, S)
    alpha[0, 3:13, 3:13] = 0.5
    alpha[0, 4:12, 4:12] = 1.0
    trimap = torch.full((1, S, S), BACKGROUND)
    trimap[alpha > 0] = UNKNOWN
    trimap[alpha == 1] = FOREGROUND
    seg = alpha.reshape(1, 2, 8, 2, 8).mean(dim=(2, 4))
    return Targets(alpha, trimap, seg)


def perfect(targets: Targets, class_logit: float = 0.0) -> tuple[E2EHIMOutput, Taps]:
    """Query 0 predicts the person exactly (confident seg and trimap); the other queries predict nothing."""
    seg = torch.full((1, Q, 2, 2), -30.0)
    seg[0, 0] = torch.where(targets.seg[0] > 0.5, 30.0, -30.0)
    trimap = torch.full((1, Q, 3, S // 8, S // 8), 0.0)
    raw = torch.zeros(1, Q, S, S)
    raw[0, 0] = targets.alphas[0]
    class_logits = torch.full((1, Q, 2), class_logit)
    return E2EHIMOutput(class_logits, raw.clamp(0, 1), trimap), Taps(seg, raw)


def test_classification_is_log2_for_undecided_queries_whatever_the_background_weight():
    targets = person()
    output, taps = perfect(targets)
    match = [Match(torch.tensor([0]), torch.tensor([0]))]
    for background in (0.1, 1.0):
        terms = criterion(output, taps, [targets], match, LossConfig(background=background))
        assert terms.classification.item() == pytest.approx(math.log(2))


def test_background_weight_scales_unmatched_queries():
    targets = person()
    output, taps = perfect(targets)
    output = output._replace(class_logits=torch.tensor([[[0.0, 5.0], [0.0, 5.0], [0.0, 5.0], [0.0, 5.0]]]))
    match = [Match(torch.tensor([0]), torch.tensor([0]))]
    right, wrong = -F.log_softmax(torch.tensor([0.0, 5.0]), 0)[1], -F.log_softmax(torch.tensor([0.0, 5.0]), 0)[0]
    expected = (right + 3 * 0.1 * wrong) / (1 + 3 * 0.1)  # weighted mean over 1 matched and 3 background queries
    terms = criterion(output, taps, [targets], match, LossConfig())
    assert terms.classification.item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_perfect_alpha_has_no_alpha_loss_and_each_term_carries_its_weight():
    targets = person()
    output, taps = perfect(targets)
    match = [Match(torch.tensor([0]), torch.tensor([0]))]
    weights = {"classification": 2.0, "seg_focal": 3.0, "seg_dice": 0.5, "trimap": 0.25, "alpha": 4.0}
    unit = criterion(output, taps, [targets], match, LossConfig()).as_floats()
    weighted = criterion(output, taps, [targets], match, LossConfig(**weights)).as_floats()
    assert unit["alpha"] == pytest.approx(0.0, abs=1e-7) and unit["seg_focal"] > 0 and unit["trimap"] > 0
    for name, w in weights.items():
        assert weighted[name] == pytest.approx(w * unit[name], rel=1e-6)
    assert weighted["total"] == pytest.approx(sum(weighted[name] for name in weights), rel=1e-6)


def test_trimap_focal_with_gamma_zero_is_cross_entropy():
    logits, classes = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    expected = F.cross_entropy(logits, classes, reduction="none").mean(dim=(1, 2))
    torch.testing.assert_close(trimap_focal(logits, classes, gamma=0.0), expected)
    assert (trimap_focal(logits, classes, gamma=2.0) < expected).all()


def test_region_l1_averages_over_each_region_only():
    alpha, truth = torch.zeros(2, 2, 2), torch.ones(2, 2, 2)
    alpha[0, 0, 0] = 0.5
    region = torch.zeros(2, 2, 2, dtype=torch.bool)
    region[0, 0] = True  # two pixels: errors 0.5 and 1
    torch.testing.assert_close(region_l1(alpha, truth, region), torch.tensor([0.75, 0.0]))


def test_alpha_loss_still_pulls_a_query_whose_alpha_fell_below_zero():
    targets = person()
    output, taps = perfect(targets)
    raw = torch.full((1, Q, S, S), -0.5, requires_grad=True)
    terms = criterion(output, Taps(taps.seg_logits, raw), [targets], [Match(torch.tensor([0]), torch.tensor([0]))],
                      LossConfig())
    terms.total.backward()
    assert raw.grad[0, 0][targets.trimaps[0] == UNKNOWN].lt(0).all()  # descent raises the alpha there


def test_no_people_leaves_only_the_classification_term():
    targets = Targets(torch.zeros(0, S, S), torch.zeros(0, S, S, dtype=torch.long), torch.zeros(0, 2, 2))
    output, taps = perfect(person())
    empty = torch.zeros(0, dtype=torch.long)
    terms = criterion(output, taps, [targets], [Match(empty, empty)], LossConfig())
    assert terms.total.item() == pytest.approx(terms.classification.item())


def test_taps_are_the_networks_own_seg_logits_and_unclamped_alpha():
    torch.manual_seed(0)
    model = E2EHIM(fused_alpha=False).eval()
    with pytest.raises(ValueError, match="unfused"):
        TapRecorder(E2EHIM(fused_alpha=True))
    taps_of = TapRecorder(model)
    fusion_input = {}
    model.fusion.register_forward_hook(lambda m, inputs, out: fusion_input.update(guided=inputs[0]))
    with torch.no_grad():
        output = model(torch.randn(1, 3, 64, 64))
    taps = taps_of()
    assert taps.seg_logits.shape == (1, 20, 8, 8) and taps.raw_alpha.shape == (1, 20, 64, 64)
    torch.testing.assert_close(taps.raw_alpha.clamp(0, 1), output.alpha, atol=0, rtol=0)
    torch.testing.assert_close(torch.sigmoid(taps.seg_logits), fusion_input["guided"][:, -20:])  # the seg maps it fused
    with pytest.raises(RuntimeError, match="no forward pass"):
        taps_of()
