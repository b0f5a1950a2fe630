"""Composite, feather and isolated-layer twins against direct per-pixel formulas, plus edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kernels import (
    Background,
    Effect,
    PersonLayers,
    Scene,
    composite,
    feather,
    isolated_layer,
    masked_blur,
    person_boxes,
)
from kernels._extent import grown, nonzero_extents
from kernels.composite import BOX_COLUMNS, REGION_BLOCK, Column, _region_keys, _region_spans


def reference(frame, alphas, layers, scene, image=None, own=None, boxes=None):
    """The kernels/composite.py docstring, one pixel at a time in float64, before rounding."""
    h, w, _ = frame.shape
    n = len(alphas)
    hidden = np.isin(layers.effect, [Effect.BLUR, Effect.PIXELATE])
    privacy = masked_blur(frame, alphas[hidden], scene.privacy_radius, of_people=True).astype(np.float64)
    if scene.background is Background.BLUR:
        image = masked_blur(frame, alphas, scene.blur_radius)
    spot = Effect.SPOTLIGHT in set(layers.effect.tolist())
    others = scene.spotlight_dim if spot else 1.0
    regions = (layers.background >= 0).any()
    if regions and boxes is None:
        boxes = person_boxes(alphas)
    b = scene.pixel_block
    out = np.zeros((h, w, 4))
    for y in range(h):
        for x in range(w):
            orig = frame[y, x].astype(np.float64)
            if scene.background in (Background.IMAGE, Background.BLUR):
                base = (image[y, x].astype(np.float64), 1.0)
            elif scene.background is Background.COLOR:
                base = (np.array(scene.color, np.float64), 1.0)
            elif scene.background is Background.TRANSPARENT:
                base = (np.zeros(3), 0.0)
            else:
                base = (orig, 1.0)
            bg = base
            if regions:
                valid = [i for i in range(n) if boxes[i, 2] >= boxes[i, 0]]
                dist = {i: np.hypot(max(boxes[i, 0] - x, x - boxes[i, 2], 0), max(boxes[i, 1] - y, y - boxes[i, 3], 0))
                        for i in valid}
                order = sorted(valid, key=lambda i: (dist[i], i))
                of = [(own[layers.background[i]].astype(np.float64)[y, x], 1.0) if layers.background[i] >= 0 else base
                      for i in order[:2]]
                if len(order) == 1:
                    bg = of[0]
                elif len(order) >= 2:
                    t = np.clip(0.5 + (dist[order[1]] - dist[order[0]]) / (2 * scene.region_feather), 0, 1)
                    bg = (t * of[0][0] + (1 - t) * of[1][0], t * of[0][1] + (1 - t) * of[1][1])
            remaining, colour, cover = 1.0, np.zeros(3), 0.0
            for i in reversed(range(n)):
                a = min(max(float(alphas[i, y, x]), 0.0), remaining)
                remaining -= a
                e = layers.effect[i]
                layer, layer_a = orig, 1.0
                if e == Effect.HIDE:
                    layer, layer_a = bg
                elif e == Effect.TINT:
                    layer = (1 - layers.strength[i]) * orig + layers.strength[i] * layers.tint[i]
                elif e == Effect.BLUR:
                    layer = privacy[y, x]
                elif e == Effect.PIXELATE:
                    layer = privacy[min(h - 1, y // b * b + b // 2), min(w - 1, x // b * b + b // 2)]
                colour += a * (1.0 if e == Effect.SPOTLIGHT else others) * layer
                cover += a * layer_a
            colour += remaining * others * bg[0]
            cover += remaining * bg[1]
            out[y, x, :3] = colour
            out[y, x, 3] = cover
    if scene.background is Background.TRANSPARENT:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[..., :3] = np.where(out[..., 3:] > 0, out[..., :3] / out[..., 3:], 0.0)
        out[..., 3] *= 255.0
        return np.clip(out, 0, 255)
    return np.clip(out[..., :3], 0, 255)


def assert_rounds(result, expected):
    assert result.dtype == np.uint8 and result.shape == expected.shape
    assert np.abs(result.astype(np.float64) - expected).max() <= 0.5 + 1e-4


def random_case(rng, h, w, n, effects=None, own_count=0):
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alphas = rng.random((n, h, w), dtype=np.float32)
    alphas[rng.random((n, h, w)) < 0.4] = 0.0
    layers = PersonLayers(
        np.asarray(rng.integers(0, len(Effect), n) if effects is None else effects, np.int32),
        rng.uniform(0, 255, (n, 3)).astype(np.float32), rng.random(n).astype(np.float32),
        (rng.integers(-1, own_count, n) if own_count else np.full(n, -1)).astype(np.int32))
    return frame, alphas, layers


@pytest.mark.parametrize("background", list(Background))
def test_matches_reference_for_every_background(background):
    rng = np.random.default_rng(int(background))
    effects = [Effect.KEEP, Effect.HIDE, Effect.TINT, Effect.BLUR, Effect.PIXELATE]
    frame, alphas, layers = random_case(rng, 23, 29, 5, effects=effects)
    scene = Scene(background=background, color=(10.0, 200.0, 30.0), blur_radius=3, privacy_radius=2, pixel_block=4)
    image = rng.integers(0, 256, (23, 29, 3), dtype=np.uint8)
    expected = reference(frame, alphas, layers, scene, image=image)
    assert_rounds(composite(frame, alphas, layers, scene, image=image), expected)


def test_spotlight_dims_everyone_else():
    rng = np.random.default_rng(7)
    effects = [Effect.KEEP, Effect.SPOTLIGHT, Effect.TINT, Effect.HIDE]
    frame, alphas, layers = random_case(rng, 17, 21, 4, effects=effects)
    scene = Scene(background=Background.COLOR, color=(200.0, 200.0, 200.0), spotlight_dim=0.25)
    assert_rounds(composite(frame, alphas, layers, scene), reference(frame, alphas, layers, scene))
    only_bg = composite(frame, np.zeros_like(alphas), layers, scene)
    assert np.all(only_bg == 50)


@pytest.mark.parametrize("background", [Background.ORIGINAL, Background.TRANSPARENT])
def test_own_background_regions(background):
    rng = np.random.default_rng(3)
    frame, alphas, layers = random_case(rng, 31, 37, 4, own_count=3)
    layers.background[:2] = [0, 2]
    own = rng.integers(0, 256, (3, 31, 37, 3), dtype=np.uint8)
    boxes = np.array([[2, 2, 8, 20], [20, 5, 30, 30], [30, 0, 36, 4], [1, 1, 0, 0]], np.float32)
    scene = Scene(background=background, region_feather=6.0)
    expected = reference(frame, alphas, layers, scene, own=own, boxes=boxes)
    assert_rounds(composite(frame, alphas, layers, scene, own_images=own, boxes=boxes), expected)


def test_own_background_uses_person_boxes_by_default():
    frame = np.zeros((10, 40, 3), np.uint8)
    alphas = np.zeros((2, 10, 40), np.float32)
    alphas[0, 3:7, 2:6] = 1.0
    alphas[1, 3:7, 33:37] = 1.0
    layers = PersonLayers(np.full(2, Effect.HIDE, np.int32), np.zeros((2, 3), np.float32), np.zeros(2, np.float32),
                          np.array([0, 1], np.int32))
    own = np.stack([np.full((10, 40, 3), 10, np.uint8), np.full((10, 40, 3), 250, np.uint8)])
    out = composite(frame, alphas, layers, Scene(region_feather=4.0), own_images=own)
    assert np.all(out[:, :15] == 10) and np.all(out[:, 25:] == 250)
    assert 10 < out[5, 19, 0] < 250


@pytest.mark.parametrize("n", [0, 1, 20])
def test_people_counts_and_odd_size(n):
    rng = np.random.default_rng(n)
    frame, alphas, layers = random_case(rng, 13, 11, n)
    scene = Scene(background=Background.COLOR, color=(1.0, 2.0, 3.0), privacy_radius=1, pixel_block=3)
    assert_rounds(composite(frame, alphas, layers, scene), reference(frame, alphas, layers, scene))


def test_one_pixel_frame():
    rng = np.random.default_rng(11)
    frame, alphas, layers = random_case(rng, 1, 1, 3, effects=[Effect.TINT, Effect.PIXELATE, Effect.KEEP])
    scene = Scene(background=Background.TRANSPARENT)
    assert_rounds(composite(frame, alphas, layers, scene), reference(frame, alphas, layers, scene))


def test_alpha_all_zero_and_all_one():
    rng = np.random.default_rng(12)
    frame = rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)
    layers = PersonLayers.uniform(3, Effect.KEEP)
    scene = Scene(background=Background.COLOR, color=(7.0, 8.0, 9.0))
    assert np.all(composite(frame, np.zeros((3, 9, 14), np.float32), layers, scene) == [7, 8, 9])
    np.testing.assert_array_equal(composite(frame, np.ones((3, 9, 14), np.float32), layers, scene), frame)
    transparent = composite(frame, np.zeros((3, 9, 14), np.float32), layers, Scene(background=Background.TRANSPARENT))
    assert transparent.shape == (9, 14, 4) and np.all(transparent == 0)


def test_overlaps_are_normalised_front_person_wins():
    frame = np.zeros((1, 1, 3), np.uint8)
    alphas = np.array([0.8, 0.7], np.float32).reshape(2, 1, 1)
    layers = PersonLayers(np.array([Effect.TINT, Effect.TINT], np.int32),
                          np.array([[100, 100, 100], [200, 200, 200]], np.float32), np.ones(2, np.float32),
                          np.full(2, -1, np.int32))
    out = composite(frame, alphas, layers, Scene(background=Background.TRANSPARENT))
    np.testing.assert_array_equal(out[0, 0], [170, 170, 170, 255])


def test_torch_in_torch_out():
    rng = np.random.default_rng(13)
    frame, alphas, layers = random_case(rng, 8, 9, 2)
    scene = Scene()
    result = composite(torch.from_numpy(frame), torch.from_numpy(alphas), layers, scene)
    assert isinstance(result, torch.Tensor)
    np.testing.assert_array_equal(result.numpy(), composite(frame, alphas, layers, scene))


def test_errors_name_the_fix():
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="one entry per person"):
        composite(frame, np.zeros((2, 8, 8), np.float32), PersonLayers.uniform(1), Scene())
    with pytest.raises(ValueError, match="image"):
        composite(frame, np.zeros((1, 8, 8), np.float32), PersonLayers.uniform(1), Scene(background=Background.IMAGE))
    with pytest.raises(ValueError, match="unknown codes"):
        PersonLayers(np.array([9], np.int32), np.zeros((1, 3)), np.zeros(1), np.full(1, -1))


def feather_reference(alphas, r):
    n, h, w = alphas.shape
    f = 1.0 - np.abs(np.arange(-r, r + 1)) / (r + 1)
    out = np.zeros_like(alphas, dtype=np.float64)
    for i, y, x in np.ndindex(alphas.shape):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    out[i, y, x] = max(out[i, y, x], alphas[i, y + dy, x + dx] * f[dy + r] * f[dx + r])
    return out


@pytest.mark.parametrize("shape, r", [((2, 13, 17), 3), ((1, 1, 1), 2), ((3, 5, 4), 0), ((20, 3, 3), 1)])
def test_feather_matches_reference_and_never_erodes(shape, r):
    alphas = np.random.default_rng(r).random(shape, dtype=np.float32)
    alphas[alphas < 0.7] = 0.0
    result = feather(alphas, r)
    np.testing.assert_allclose(result, feather_reference(alphas, r), atol=1e-6)
    assert np.all(result >= alphas)


def test_feather_of_small_people_in_a_large_frame_matches_reference():
    """The CPU twin works inside each person's window; edges of the window and empty planes must not show."""
    alphas = np.zeros((3, 40, 50), np.float32)
    alphas[0, 1:6, 0:4] = 0.9  # touches the frame's edge
    alphas[1, 20:31, 30:44] = np.random.default_rng(3).random((11, 14), dtype=np.float32)
    result = feather(alphas, 2)
    np.testing.assert_allclose(result, feather_reference(alphas, 2), atol=1e-6)
    assert not result[2].any()


def test_feather_inside_given_extents_equals_finding_them():
    """The fusion hands over extents that may be larger than the non-zero values; the result is the same."""
    alphas = np.zeros((2, 40, 50), np.float32)
    alphas[0, 10:20, 5:15] = np.random.default_rng(4).random((10, 10), dtype=np.float32)
    loose = np.array([[8, 25, 0, 16], [0, 0, 0, 0]], np.int64)  # person 0 with a margin, person 1 empty
    np.testing.assert_array_equal(feather(alphas, 3, extents=loose), feather(alphas, 3))
    with pytest.raises(ValueError, match=r"extents must have shape \(2, 4\)"):
        feather(alphas, 3, extents=loose[:1])


def test_a_feather_reaches_exactly_the_grown_extents():
    """The compositor hands the feathered mattes on with their extents grown by the radius instead of
    finding them again: they must be the feathered mattes' own (clipped at the frame, empty kept)."""
    alphas = np.zeros((3, 60, 80), np.float32)
    alphas[0, 10:20, 30:40] = np.random.default_rng(5).random((10, 10), dtype=np.float32) + 0.01
    alphas[1, 0:5, 77:80] = 1.0
    for radius in (1, 2, 4):
        expected = nonzero_extents(feather(alphas, radius))
        np.testing.assert_array_equal(grown(nonzero_extents(alphas), radius, 60, 80), expected)


def test_nonzero_extents_are_numpys_bounds_of_the_positive_values():
    """Rows are searched a block at a time from each end; widths around and across the block size,
    negative values (not counted), empty planes and rows."""
    rng = np.random.default_rng(6)
    for _ in range(300):
        n, h, w = (int(v) for v in (rng.integers(0, 4), rng.integers(1, 50), rng.integers(1, 130)))
        planes = np.zeros((n, h, w), np.float32)
        for plane in planes:
            if rng.random() < 0.8:
                y0, x0 = rng.integers(0, h), rng.integers(0, w)
                plane[y0:y0 + rng.integers(1, 20), x0:x0 + rng.integers(1, 70)] = rng.random() + 0.01
            plane[rng.random((h, w)) < 0.1] -= 0.5
        expected = np.zeros((n, 4), np.int64)
        for i, plane in enumerate(planes):
            ys, xs = np.nonzero(plane > 0)
            if len(ys):
                expected[i] = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        np.testing.assert_array_equal(nonzero_extents(planes), expected)


def test_feather_falls_off_outward():
    alpha = np.zeros((1, 1, 11), np.float32)
    alpha[0, 0, :3] = 1.0
    np.testing.assert_allclose(feather(alpha, 3)[0, 0], [1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0, 0])


def test_isolated_layer_and_person_boxes():
    rng = np.random.default_rng(14)
    frame = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    alpha = np.zeros((2, 6, 7), np.float32)
    alpha[0, 1:3, 2:6] = 0.6
    layer = isolated_layer(frame, alpha[0])
    np.testing.assert_array_equal(layer[..., :3], frame)
    np.testing.assert_array_equal(layer[..., 3], np.where(alpha[0] > 0, 153, 0))
    boxes = person_boxes(alpha)
    np.testing.assert_array_equal(boxes[0], [2, 1, 5, 2])
    assert boxes[1, 2] < boxes[1, 0]


@pytest.mark.parametrize("effect", [Effect.BLUR, Effect.PIXELATE])
def test_privacy_blur_of_a_small_person_matches_the_full_frame_reference(effect):
    """The privacy blur is computed over the blurred people's boxes only; the output must not change."""
    rng = np.random.default_rng(11)
    frame = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    alphas = np.zeros((2, 70, 90), np.float32)
    alphas[0, 30:45, 50:62] = rng.random((15, 12), dtype=np.float32)
    alphas[1, 5:20, 5:20] = 1.0
    layers = PersonLayers(np.array([int(effect), int(Effect.KEEP)], np.int32), np.zeros((2, 3), np.float32),
                          np.zeros(2, np.float32), np.full(2, -1, np.int32))
    scene = Scene(background=Background.COLOR, privacy_radius=4, pixel_block=6)
    assert_rounds(composite(frame, alphas, layers, scene), reference(frame, alphas, layers, scene))


@pytest.mark.parametrize("effect", list(Effect))
def test_given_extents_bound_the_search_and_change_nothing(effect):
    """Extents holding every alpha > 0 (exact ones, wider ones, an empty one for an absent person) give the
    output the whole-frame search gives, and the reference's."""
    rng = np.random.default_rng(int(effect) + 3)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    alphas = np.zeros((3, 60, 80), np.float32)
    alphas[0, 10:30, 5:25] = rng.random((20, 20), dtype=np.float32)
    alphas[1, 25:58, 40:79] = rng.random((33, 39), dtype=np.float32)
    layers = PersonLayers(np.array([int(effect), int(Effect.TINT), int(Effect.PIXELATE)], np.int32),
                          rng.uniform(0, 255, (3, 3)).astype(np.float32), rng.random(3).astype(np.float32),
                          np.full(3, -1, np.int32))
    scene = Scene(background=Background.COLOR, privacy_radius=3, pixel_block=5)
    expected = composite(frame, alphas, layers, scene)
    exact = np.array([[10, 30, 5, 25], [25, 58, 40, 79], [0, 0, 0, 0]], np.int64)
    wider = np.array([[8, 33, 0, 30], [20, 60, 35, 80], [0, 0, 0, 0]], np.int64)
    for extents in (exact, wider):
        assert np.array_equal(composite(frame, alphas, layers, scene, extents=extents), expected)
    assert_rounds(expected, reference(frame, alphas, layers, scene))


# --- own-background regions: the CPU twin's region step against the literal rule ----------------------

def region_reference(base, people, own, region_feather):
    """The region rule of the kernels/composite.py docstring, pixel by pixel with plain float64 arithmetic:
    every present person's Euclidean distance to its box, the nearest and second nearest (the earlier person
    first on equal distances), t = clamp(0.5 + (d2 - d1) / (2 * feather), 0, 1) and
    t * nearest + (1 - t) * second of their backgrounds (own image, opaque, or the scene background).
    base: (H, 4, W) scene background B, G, R, alpha; people: packed rows (Column). Returns a new array."""
    h, _, w = base.shape
    out = base.copy()
    present = [i for i in range(len(people)) if not people[i, Column.X1] < people[i, Column.X0]]
    for y in range(h):
        for x in range(w):
            ranked = []
            for i in present:
                x0, y0, x1, y1 = (float(v) for v in people[i, BOX_COLUMNS])
                dx, dy = max(x0 - x, x - x1, 0.0), max(y0 - y, y - y1, 0.0)
                ranked.append((math.sqrt(dx * dx + dy * dy), i))
            if not ranked:
                continue
            ranked.sort()

            def shown(i):
                k = int(people[i, Column.BACKGROUND])
                return [float(v) for v in own[k, y, x]] + [1.0] if k >= 0 else [float(v) for v in base[y, :, x]]

            colour = shown(ranked[0][1])
            if len(ranked) > 1:
                t = min(1.0, max(0.0, 0.5 + (ranked[1][0] - ranked[0][0]) / (2.0 * region_feather)))
                colour = [t * g + (1.0 - t) * o for g, o in zip(colour, shown(ranked[1][1]))]
            out[y, :, x] = colour
    return out


def region_kernel(base, people, own, region_feather):
    """The CPU twin's region step over every row of base (a copy), as _composite_cpu runs it."""
    bg = base.copy()
    h, _, w = bg.shape
    present = np.array([i for i in range(len(people)) if not people[i, Column.X1] < people[i, Column.X0]], np.int64)
    own_index = people[:, Column.BACKGROUND].astype(np.int64)
    key, t = np.empty(w, np.int64), np.empty(w)
    for y in range(h if len(present) else 0):
        _region_keys(people, present, y, region_feather, 0, w, key, t)
        _region_spans(bg[y], own_index, own, y, key, t, len(people), 0, w)
    return bg


def packed_people(boxes, own_index):
    people = np.zeros((len(boxes), len(Column)), np.float32)
    people[:, Column.BACKGROUND] = own_index
    people[:, BOX_COLUMNS] = boxes
    return people


ABSENT = [1, 1, 0, 0]
REGION_CASES = {
    # name: (boxes [x0, y0, x1, y1], own background index per person)
    "one person": ([[10, 4, 14, 9]], [0]),
    "one present, others absent": ([ABSENT, [10, 4, 14, 9], ABSENT], [1, 0, -1]),
    "nobody present": ([ABSENT, ABSENT], [0, 1]),
    "apart": ([[2, 2, 6, 20], [30, 5, 36, 9], [18, 20, 22, 22]], [0, -1, 1]),
    "overlapping boxes, pixels inside several": ([[5, 3, 25, 18], [15, 8, 35, 22], [20, 0, 24, 23]], [1, 0, -1]),
    "equal boxes: ties everywhere": ([[12, 6, 18, 12], [12, 6, 18, 12], [12, 6, 18, 12]], [-1, 0, 1]),
    "mirrored boxes: ties on the axes": ([[4, 10, 6, 12], [32, 10, 34, 12], [18, 0, 20, 1], [18, 22, 20, 23]],
                                         [0, 1, -1, 0]),
    "points and boxes outside the frame": ([[-7, -3, -7, -3], [45, 30, 50, 31], [19, 11, 19, 11]], [0, 1, -1]),
    "far beyond the packing limit": ([[-900000, 3, -899990, 9], [700000, 10, 700001, 12], [20, 5, 22, 6]],
                                     [0, 1, -1]),
    "fractional boxes": ([[3.5, 2.25, 9.75, 14.5], [22.125, 6.5, 30.0, 8.75], [14.5, 16.5, 14.5, 16.5]],
                         [0, -1, 1]),
    "fractional boxes with ties": ([[10.5, 6.5, 12.5, 8.5], [10.5, 6.5, 12.5, 8.5], [26.5, 6.5, 28.5, 8.5]],
                                   [1, -1, 0]),
}


@pytest.mark.parametrize("region_feather", [0.25, 1.0, 6.0, 40.0, 1e4, 2.0 ** 120])
@pytest.mark.parametrize("name", list(REGION_CASES))
def test_region_step_matches_the_literal_rule_bit_for_bit(name, region_feather):
    boxes, own_index = REGION_CASES[name]
    rng = np.random.default_rng(len(name))
    h, w = 24, 40
    people = packed_people(boxes, own_index)
    own = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    # uint8-valued and fractional scene backgrounds (blending a fractional one with itself can change its last
    # bit, so a kernel that skipped such blends would fail here), opaque and transparent
    uint8_base = np.concatenate([rng.integers(0, 256, (h, 3, w)).astype(np.float64), np.ones((h, 1, w))], axis=1)
    fractional_base = np.concatenate([rng.uniform(0, 255, (h, 3, w)), np.zeros((h, 1, w))], axis=1)
    for base in (uint8_base, fractional_base):
        expected = region_reference(base, people, own, region_feather)
        np.testing.assert_array_equal(region_kernel(base, people, own, region_feather), expected)


@pytest.mark.parametrize("seed", range(4))
def test_region_step_of_many_people_in_a_wide_row_matches_the_literal_rule(seed):
    """Eight people over blocks of REGION_BLOCK columns, where the kernel skips people who cannot be among
    a block's nearest two: the same result as ranking everyone at every pixel."""
    rng = np.random.default_rng(seed)
    h, w = 12, 5 * REGION_BLOCK + 7
    corners = np.stack([rng.uniform(-20, w, 8), rng.uniform(-4, h, 8)], axis=1)
    boxes = np.concatenate([corners, corners + rng.uniform(0, [40, 8], (8, 2))], axis=1)
    boxes[3] = boxes[5]  # two people with one box: ties wherever they are nearest
    people = packed_people(boxes, rng.integers(-1, 3, 8))
    own = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    base = np.concatenate([rng.uniform(0, 255, (h, 3, w)), np.ones((h, 1, w))], axis=1)
    for region_feather in (0.5, 6.0, 40.0):
        expected = region_reference(base, people, own, region_feather)
        np.testing.assert_array_equal(region_kernel(base, people, own, region_feather), expected)


def test_region_step_keeps_blends_of_the_scene_background_with_itself():
    """Between two people who both show the scene background, t * g + (1 - t) * g is not always g: the test
    above would miss a kernel that skips those pixels unless such pixels occur there."""
    people = packed_people([[2, 2, 6, 20], [30, 5, 36, 9], [18, 20, 22, 22]], [0, -1, -1])
    base = np.concatenate([np.random.default_rng(5).uniform(0, 255, (24, 3, 40)), np.ones((24, 1, 40))], axis=1)
    expected = region_reference(base, people, np.zeros((1, 24, 40, 3), np.uint8), 40.0)
    assert (expected[:, :3, 30:] != base[:, :3, 30:]).any()  # own image 0 is far: only -1 people there
    np.testing.assert_array_equal(region_kernel(base, people, np.zeros((1, 24, 40, 3), np.uint8), 40.0), expected)


def test_region_step_of_tied_people_takes_the_earlier_two():
    """Three people with the same box: every pixel ties three ways; the first two in depth order are blended
    half and half, so the third one's own image never shows."""
    people = packed_people([[8, 8, 12, 12]] * 3, [0, 1, 2])
    own = np.stack([np.full((20, 20, 3), v, np.uint8) for v in (10, 30, 250)])
    bg = region_kernel(np.zeros((20, 4, 20)), people, own, 5.0)
    np.testing.assert_array_equal(bg[:, :3], 20.0)
    np.testing.assert_array_equal(bg[:, 3], 1.0)


def test_region_step_of_a_narrow_feather_is_a_hard_split():
    """With a feather far below a pixel, every pixel off the exact middle shows only its nearest person."""
    people = packed_people([[0, 0, 0, 9], [9, 0, 9, 9]], [0, 1])
    own = np.stack([np.full((10, 10, 3), 40, np.uint8), np.full((10, 10, 3), 200, np.uint8)])
    bg = region_kernel(np.zeros((10, 4, 10)), people, own, 1e-3)
    np.testing.assert_array_equal(bg[:, 0, :5], 40.0)
    np.testing.assert_array_equal(bg[:, 0, 5:], 200.0)


def test_own_background_regions_of_person_boxes_match_reference():
    """Soft elliptic mattes, boxes from person_boxes (the pipeline's case), every effect, one person blurred."""
    h, w = 36, 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    alphas = np.stack([np.clip((1.0 - np.hypot((y - 20) / 13, (x - cx) / 9)) * 6, 0, 1) for cx in (8, 22, 40, 52)])
    alphas = alphas.astype(np.float32)
    rng = np.random.default_rng(21)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    own = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    layers = PersonLayers(np.array([Effect.KEEP, Effect.HIDE, Effect.BLUR, Effect.TINT], np.int32),
                          np.full((4, 3), 90, np.float32), np.full(4, 0.5, np.float32),
                          np.array([-1, 0, -1, 1], np.int32))
    for background in (Background.COLOR, Background.TRANSPARENT):
        scene = Scene(background=background, color=(10.25, 99.5, 3.0), region_feather=7.0, privacy_radius=2,
                      pixel_block=4)
        expected = reference(frame, alphas, layers, scene, own=own)
        assert_rounds(composite(frame, alphas, layers, scene, own_images=own), expected)


@pytest.mark.parametrize("whole", [1, 3, 5])
def test_region_step_with_a_feather_a_hair_above_a_distance_difference(whole):
    """Two point boxes on a row of 12: d2 - d1 takes the odd whole values, so with feather = whole + 2**-44
    one pixel has t a hair below 1 and must be blended."""
    people = packed_people([[0, 0, 0, 0], [11, 0, 11, 0]], [0, 1])
    own = np.stack([np.full((1, 12, 3), 40, np.uint8), np.full((1, 12, 3), 200, np.uint8)])
    region_feather = whole + 2.0 ** -44
    base = np.zeros((1, 4, 12))
    expected = region_reference(base, people, own, region_feather)
    x = (11 - whole) // 2  # d1 = x, d2 = 11 - x
    assert 40.0 < expected[0, 0, x] < 40.0 + 1e-9
    np.testing.assert_array_equal(region_kernel(base, people, own, region_feather), expected)


@pytest.mark.parametrize("background", [Background.ORIGINAL, Background.IMAGE, Background.COLOR])
@pytest.mark.parametrize("spotlit", [False, True])
def test_where_nobody_is_own_backgrounds_are_what_the_full_rule_gives(background, spotlit):
    """Where nobody is, the CPU twin writes each region's background directly (skipping blocks where no
    own background can show, copying bytes, blending the rest in one pass); a person of alpha 1e-30
    everywhere sends every pixel through the full rule, adding nothing: the frames must be equal."""
    rng = np.random.default_rng(int(background) * 2 + spotlit)
    h, w = 40, 5 * REGION_BLOCK + 7
    alphas = np.zeros((8, h, w), np.float32)
    corners = np.stack([rng.integers(0, h - 8, 8), rng.integers(0, w - 12, 8)], axis=1)
    for alpha, (y, x) in zip(alphas, corners):
        alpha[y:y + 8, x:x + 12] = rng.choice([0.4, 1.0], (8, 12))
    boxes = np.concatenate([corners[:, ::-1], corners[:, ::-1] + [11, 7]], axis=1).astype(np.float32)
    effects = np.full(8, Effect.SPOTLIGHT if spotlit else Effect.KEEP, np.int32)
    effects[1:] = Effect.KEEP
    layers = PersonLayers(effects, np.zeros((8, 3), np.float32), np.zeros(8, np.float32),
                          np.array([-1, 0, -1, -1, 1, -1, -1, -1], np.int32))
    frame, image = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))
    own = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    scene = Scene(background=background, color=(10.0, 99.0, 3.0), region_feather=9.0, spotlight_dim=0.5)
    direct = composite(frame, alphas, layers, scene, image=image, own_images=own, boxes=boxes)
    everywhere = np.concatenate([np.full((1, h, w), 1e-30, np.float32), alphas])
    full = composite(frame, everywhere, PersonLayers(np.concatenate([[Effect.KEEP], effects]).astype(np.int32),
                                                     np.zeros((9, 3), np.float32), np.zeros(9, np.float32),
                                                     np.concatenate([[-1], layers.background]).astype(np.int32)),
                     scene, image=image, own_images=own, boxes=np.concatenate([[[1, 1, 0, 0]], boxes]))
    np.testing.assert_array_equal(direct, full)
