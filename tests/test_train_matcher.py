"""Hungarian matching on hand-built costs, and the costs themselves on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livematte.train.config import MatcherConfig
from livematte.train.mask_costs import dice_cost, focal_cost
from livematte.train.matcher import assign, match_batch, matching_cost


def test_assign_finds_the_cheapest_assignment_where_greedy_does_not():
    cost = np.array([[1.0, 2.0], [2.0, 100.0]])  # greedy: (0, 0) then (1, 1) = 101; best: (0, 1) + (1, 0) = 4
    queries, targets = assign(cost)
    assert dict(zip(targets.tolist(), queries.tolist())) == {0: 1, 1: 0}
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    queries, targets = assign(cost)
    assert targets.tolist() == [0, 1, 2] and queries.tolist() == [1, 0, 2]  # 2 + 1 + 2 = 5, the minimum
    assert cost[queries, targets].sum() == 5.0


def test_more_queries_than_people_leaves_the_costly_queries_unmatched():
    cost = np.array([[5.0, 5.0], [0.5, 3.0], [5.0, 5.0], [3.0, 0.1]])
    queries, targets = assign(cost)
    assert targets.tolist() == [0, 1] and queries.tolist() == [1, 3]


def test_focal_and_dice_costs_on_known_values():
    logits = torch.zeros(1, 4)  # p = 0.5 everywhere
    ones, zeros = torch.ones(1, 4), torch.zeros(1, 4)
    assert focal_cost(logits, ones).item() == pytest.approx(0.25 * 0.25 * math.log(2))
    assert focal_cost(logits, zeros).item() == pytest.approx(0.75 * 0.25 * math.log(2))
    assert dice_cost(logits, ones).item() == pytest.approx(1 - (2 * 2 + 1) / (2 + 4 + 1))
    sure = torch.tensor([[30.0, 30.0, -30.0, -30.0]])
    assert dice_cost(sure, torch.tensor([[1.0, 1.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)
    both = focal_cost(torch.zeros(3, 4), torch.stack([ones[0], zeros[0]]))
    assert both.shape == (3, 2)


def masks() -> torch.Tensor:
    t = torch.zeros(2, 4, 4)
    t[0, :2] = 1.0
    t[1, 2:] = 1.0
    return t


def test_queries_are_matched_to_the_people_their_masks_cover():
    targets = masks()
    seg = torch.full((3, 4, 4), -8.0)
    seg[0][targets[1] > 0] = 8.0  # query 0 draws person 1
    seg[2][targets[0] > 0] = 8.0  # query 2 draws person 0; query 1 draws nobody
    (match,) = match_batch(torch.zeros(1, 3, 2), seg[None], [targets], MatcherConfig())
    assert match.targets.tolist() == [0, 1] and match.queries.tolist() == [2, 0]


def test_the_class_cost_breaks_a_tie_between_equal_masks():
    targets = masks()[:1]
    seg = torch.full((2, 4, 4), -8.0)
    seg[:, :2] = 8.0
    class_logits = torch.tensor([[0.0, 0.0], [0.0, 3.0]])  # query 1 is surer of a human
    cost = matching_cost(class_logits, seg, targets, MatcherConfig())
    assert cost[1, 0] < cost[0, 0]
    (match,) = match_batch(class_logits[None], seg[None], [targets], MatcherConfig())
    assert match.queries.tolist() == [1]


def test_an_image_without_people_matches_nothing():
    (match,) = match_batch(torch.zeros(1, 3, 2), torch.zeros(1, 3, 4, 4), [torch.zeros(0, 4, 4)], MatcherConfig())
    assert len(match.queries) == len(match.targets) == 0
