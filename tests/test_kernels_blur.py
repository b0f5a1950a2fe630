"""Halo-free masked blur twin against the direct formula, and the properties it exists for."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import background_blur, masked_blur
from kernels.blur import DELTA, REDUCED_RADIUS, masked_blur_at


def reference(frame, alphas, r, of_people=False):
    """(box(I v) + DELTA box(I)) / (box(v) + DELTA box(1)) with explicit clipped windows, float64."""
    h, w, _ = frame.shape
    cover = np.minimum(1.0, alphas.astype(np.float64).sum(axis=0))
    v = cover if of_people else 1.0 - cover
    out = np.empty((h, w, 3))
    for y in range(h):
        for x in range(w):
            window = frame[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].astype(np.float64)
            weight = v[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1, None]
            out[y, x] = (((window * weight).sum((0, 1)) + float(DELTA) * window.sum((0, 1)))
                         / (weight.sum() + float(DELTA) * weight.size))
    return out


def assert_rounds(result, expected):
    """result is expected rounded: within half a level (plus float32 sum error)."""
    assert result.dtype == np.uint8
    assert np.abs(result.astype(np.float64) - expected).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("shape, people, radius", [((37, 53), 3, 4), ((1, 1), 1, 3), ((20, 30), 0, 2),
                                                   ((10, 12), 2, 0), ((9, 40), 20, 25)])
def test_matches_reference(shape, people, radius):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alphas = (rng.random((people, *shape)) * (1.5 / max(people, 1))).astype(np.float32)
    assert_rounds(masked_blur(frame, alphas, radius), reference(frame, alphas, radius))
    assert_rounds(masked_blur(frame, alphas, radius, of_people=True), reference(frame, alphas, radius, of_people=True))


def test_blurred_person_carries_no_background_colour():
    frame = np.zeros((30, 30, 3), np.uint8)
    frame[...] = (0, 255, 0)  # green screen
    frame[10:20, 10:20] = (200, 100, 50)
    alpha = np.zeros((1, 30, 30), np.float32)
    alpha[0, 10:20, 10:20] = 1
    inside = masked_blur(frame, alpha, 6, of_people=True)[10:20, 10:20]
    assert (np.abs(inside.astype(int) - (200, 100, 50)) <= 1).all()


def test_no_person_colour_bleeds_into_the_background():
    frame = np.full((40, 40, 3), 60, np.uint8)
    frame[15:25, 15:25] = (255, 0, 255)
    alpha = np.zeros((1, 40, 40), np.float32)
    alpha[0, 15:25, 15:25] = 1.0
    blurred = masked_blur(frame, alpha, 8)
    outside = np.ones((40, 40), bool)
    outside[15:25, 15:25] = False
    assert np.all(blurred[outside] == 60)
    plain = masked_blur(frame, alpha[:0], 8)
    assert plain[12, 20, 0] > 90, "the plain blur does bleed: the mask is what prevents it"


def test_all_ones_alpha_falls_back_to_plain_blur():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (21, 17, 3), dtype=np.uint8)
    ones = np.ones((2, 21, 17), np.float32)
    np.testing.assert_array_equal(masked_blur(frame, ones, 3), masked_blur(frame, ones[:0], 3))


def test_all_zero_alpha_is_plain_blur_and_radius_zero_is_identity():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (13, 19, 3), dtype=np.uint8)
    zeros = np.zeros((4, 13, 19), np.float32)
    np.testing.assert_array_equal(masked_blur(frame, zeros, 5), masked_blur(frame, zeros[:0], 5))
    np.testing.assert_array_equal(masked_blur(frame, zeros, 0), frame)


def test_errors_name_the_fix():
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        masked_blur(frame, np.zeros((1, 8, 9), np.float32), 2)
    with pytest.raises(ValueError, match="radius"):
        masked_blur(frame, np.zeros((0, 8, 8), np.float32), -1)


def scene_with_a_person(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth many-coloured room and a bright person with soft edges in the middle of it."""
    import cv2

    room = cv2.resize(np.random.default_rng(3).integers(20, 200, (3, 5, 3), dtype=np.uint8), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    alphas = np.zeros((1, height, width), np.float32)
    alphas[0, height // 4:3 * height // 4, width // 3:width // 2] = 1.0
    alphas[0] = cv2.GaussianBlur(alphas[0], (7, 7), 2)
    frame = (room * (1 - alphas[0, ..., None]) + 250 * alphas[0, ..., None]).astype(np.uint8)
    return frame, alphas


@pytest.mark.parametrize("shape", [(180, 320), (181, 323)])
def test_a_large_background_blur_runs_reduced_close_to_the_full_one_and_halo_free(shape):
    frame, alphas = scene_with_a_person(*shape)
    radius = 3 * REDUCED_RADIUS
    full, reduced = masked_blur(frame, alphas, radius), background_blur(frame, alphas, radius)
    assert reduced.shape == frame.shape and reduced.dtype == np.uint8
    background = alphas[0] == 0
    diff = np.abs(full.astype(int) - reduced.astype(int)).max(axis=2)[background]
    assert diff.mean() < 2 and np.percentile(diff, 99) < 8  # grey levels; on the dancers' clip 0.5 and 3
    solid = (alphas > 0.5).astype(np.float32)  # a hard-edged person: none of their colour may reach the background
    plain = np.full_like(frame, 50)
    plain[solid[0] > 0] = 250
    beside = background_blur(plain, solid, radius)[shape[0] // 2, shape[1] // 3 - 2]
    assert np.abs(beside.astype(int) - 50).max() <= 2, beside  # no person colour next to the person


def test_a_small_background_blur_is_the_full_one():
    frame, alphas = scene_with_a_person(90, 160)
    radius = 2 * REDUCED_RADIUS - 1
    assert np.array_equal(background_blur(frame, alphas, radius), masked_blur(frame, alphas, radius))


@pytest.mark.parametrize("of_people", [False, True])
def test_the_blur_at_chosen_pixels_is_the_full_blur_there(of_people):
    """masked_blur_at (what a pixelation reads: one pixel a block) gives masked_blur's values at those
    pixels, windows clipped at the edges included; 30 random frames, radii 0-13."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(20, 120, 2))
        frame = rng.integers(0, 256, (h, w, 3), np.uint8)
        alphas = rng.random((int(rng.integers(0, 3)), h, w), dtype=np.float32) * (rng.random((1, h, w)) < 0.5)
        radius = int(rng.integers(0, 14))
        rows, cols = np.unique(rng.integers(0, h, 7)), np.unique(rng.integers(0, w, 9))
        expected = masked_blur(frame, alphas, radius, of_people=of_people)[np.ix_(rows, cols)]
        np.testing.assert_array_equal(masked_blur_at(frame, alphas, radius, rows, cols, of_people=of_people), expected)
