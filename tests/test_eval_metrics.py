"""Each matting metric on cases whose answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livematte.eval.metrics import (
    beyond_share,
    connectivity_error,
    dtssd,
    flicker,
    flicker_by_distance,
    gradient_error,
    image_metrics,
    mad,
    mask_iou,
    match_people,
    mse,
    sad,
)


def test_sad_mse_mad_on_a_hand_computed_case():
    truth = np.zeros((4, 5), np.float32)
    truth[1, 1], truth[2, 3] = 1.0, 0.5
    pred = np.zeros_like(truth)
    assert sad(pred, truth) == pytest.approx(1.5)
    assert mse(pred, truth) == pytest.approx(1.25 / 20)
    assert mad(pred, truth) == pytest.approx(1.5 / 20)


def test_every_image_metric_is_zero_for_a_perfect_matte():
    rng = np.random.default_rng(0)
    truth = rng.random((30, 40)).astype(np.float32)
    assert image_metrics(truth.copy(), truth) == image_metrics(truth, truth)
    assert all(v == 0 for v in vars(image_metrics(truth.copy(), truth)).values())


def ramp(height: int, width: int, slope: float, axis: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width].astype(np.float64)
    return slope * (x if axis == 1 else y)


def test_gradient_error_ignores_a_constant_offset_but_not_a_slope():
    truth = ramp(32, 32, 0.01, axis=1)
    assert gradient_error(truth + 0.3, truth) == pytest.approx(0.0, abs=1e-12)
    assert mad(truth + 0.3, truth) == pytest.approx(0.3)
    assert gradient_error(ramp(32, 32, 0.02, axis=1), truth) > 0


def test_gradient_error_grows_with_the_square_of_the_slope_and_has_no_preferred_direction():
    zero = np.zeros((32, 32))
    one = gradient_error(ramp(32, 32, 0.01, axis=1), zero)
    assert gradient_error(ramp(32, 32, 0.03, axis=1), zero) == pytest.approx(9 * one)
    assert gradient_error(ramp(32, 32, 0.01, axis=0), zero) == pytest.approx(one)


def test_connectivity_error_counts_a_missed_disconnected_blob():
    truth = np.zeros((20, 30))
    truth[2:12, 2:12] = 1.0  # A, 100 px
    truth[15:18, 20:24] = 1.0  # B, 12 px, apart from A
    pred = truth.copy()
    pred[15:18, 20:24] = 0.0
    assert connectivity_error(pred, truth) == pytest.approx(12.0)
    assert connectivity_error(truth.copy(), truth) == 0.0


def test_connectivity_error_of_nothing_against_everything_is_the_pixel_count():
    assert connectivity_error(np.zeros((6, 7)), np.ones((6, 7))) == pytest.approx(42.0)


def square(h: int, w: int, top: int, left: int, size_y: int, size_x: int) -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    a[top: top + size_y, left: left + size_x] = 1.0
    return a


def test_mask_iou_of_overlapping_rectangles():
    truth = np.stack([square(20, 20, 0, 0, 10, 10)])
    pred = np.stack([square(20, 20, 0, 0, 10, 6), square(20, 20, 0, 5, 10, 10), np.zeros((20, 20), np.float32)])
    np.testing.assert_allclose(mask_iou(truth, pred), [[0.6, 50 / 150, 0.0]])


def test_people_are_paired_by_best_total_iou_not_by_order():
    a, b = square(20, 40, 0, 0, 10, 10), square(20, 40, 5, 25, 10, 10)
    rows, cols, iou = match_people(np.stack([a, b]), np.stack([b, a]))
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 1, 1: 0}
    np.testing.assert_allclose(iou, [1.0, 1.0])
    rows, cols, iou = match_people(np.stack([a]), np.zeros((0, 20, 40), np.float32))
    assert len(rows) == len(cols) == len(iou) == 0


def test_dtssd_ignores_a_steady_error_and_measures_flicker():
    truth = np.zeros((3, 4, 5))
    assert dtssd(truth + 0.2, truth) == 0.0
    flicker = truth.copy()
    flicker[1, 2, 2] = 1.0  # on in the middle frame only: both frame pairs change by 1 at one of 20 pixels
    assert dtssd(flicker, truth) == pytest.approx(math.sqrt(1 / 20))
    with pytest.raises(ValueError, match="two frames"):
        dtssd(truth[:1], truth[:1])


def test_flicker_reads_still_pixels_and_says_how_far_from_a_change():
    """A bright bar moves one column right and its matte (soft one pixel each side) with it: the soft
    columns beside the bar's changed ones flicker 0.5 though their picture held (distance 1); two specks
    toggle where nothing changed, 3 and 7 pixels away."""
    frames = [np.zeros((10, 20, 3), np.uint8) for _ in range(2)]
    mattes = []
    for t, frame in enumerate(frames):
        frame[:, 5 + t:8 + t] = 200
        alpha = np.zeros((10, 20), np.float32)
        alpha[:, 5 + t:8 + t] = 1.0
        alpha[:, 4 + t] = alpha[:, 8 + t] = 0.5
        mattes.append({1: alpha})
    mattes[1][1][5, 11], mattes[1][1][0, 15] = 0.25, 1.0
    assert flicker_by_distance(frames, mattes) == pytest.approx([10 * 2 * 0.5, 0.25, 1.0])
    # still and in either matte: columns 4, 6, 7 and 9, and the two specks
    assert flicker(frames, mattes) == pytest.approx({1: (10.0 + 0.25 + 1.0) / (4 * 10 + 2)})


def test_beyond_share_counts_the_mass_a_filter_shows_away_from_its_input():
    given = np.zeros((12, 12), np.float32)
    given[5, 5] = 1.0
    shown = given.copy()
    shown[5, 7], shown[5, 9] = 1.0, 0.5  # 2 px from the input (within reach 2), 4 px (beyond)
    assert beyond_share([{1: shown}], [{1: given}], reach=2) == pytest.approx(0.5 / 2.5)
    assert beyond_share([{1: shown}], [{1: given}], reach=4) == 0.0
    # a person the input never had is all beyond
    assert beyond_share([{1: given, 2: given}], [{1: given}], reach=2) == pytest.approx(0.5)
