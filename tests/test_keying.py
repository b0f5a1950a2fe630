"""The keying engine against the synthetic scene's exact alphas: chroma (green, blue) and difference keys."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.engine.base import Engine
from livematte.engine.keying import KeyingEngine, KeyingSettings, despill
from livematte.synthetic import SyntheticScene

W, H = 640, 360


def separated(alphas: np.ndarray) -> int:
    """How many groups the visible figures form (figures that touch or overlap make one group)."""
    union = (alphas.sum(0) > 0).view(np.uint8) if len(alphas) else np.zeros((1, 1), np.uint8)
    return cv2.connectedComponents(union, connectivity=8)[0] - 1


def matched_errors(mattes: np.ndarray, alphas: np.ndarray) -> list[tuple[float, float]]:
    """(IoU, mean absolute error inside the figure's box) of the best-overlapping matte for each figure."""
    out = []
    for truth in alphas:
        inside = truth > 0.5
        ious = [(inside & (m > 0.5)).sum() / (inside | (m > 0.5)).sum() for m in mattes]
        best = mattes[int(np.argmax(ious))]
        ys, xs = np.nonzero(truth)
        box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
        out.append((float(max(ious)), float(np.abs(best[box] - truth[box]).mean())))
    return out


def on_background(scene: SyntheticScene, index: int, background: np.ndarray, rng: np.random.Generator):
    """Frame `index` of `scene` with its green screen replaced by `background`, plus camera noise."""
    image, alphas = scene.render(index)
    clear = 1.0 - alphas.sum(0)[..., None]
    people = image.astype(np.float32) - scene.background * clear  # the figures' premultiplied colour
    noisy = people + background.astype(np.float32) * clear + rng.normal(0, 2.0, image.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8), alphas


def textured(seed: int = 4) -> np.ndarray:
    """A smooth multicoloured background with no screen colour dominating."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 220, (9, 16, 3), dtype=np.uint8)
    return cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("seed, people, index", [(0, 4, 0), (5, 1, 0), (7, 3, 20)])
def test_chroma_mattes_match_the_separated_figures(seed, people, index):
    image, alphas = SyntheticScene(W, H, people, seed).render(index)
    assert separated(alphas) == people, "the chosen frame shows every figure apart"
    engine = KeyingEngine()
    [found] = engine.infer([image])
    assert isinstance(engine, Engine)  # after infer: on Python 3.11 isinstance reads input_size
    assert len(found) == people and engine.input_size == (H // 2, W // 2)
    assert found.mattes.shape == (people, H, W) and found.mattes.dtype == np.float32
    assert found.probs.dtype == np.float32 and np.all(found.probs > 0.9) and np.all(found.probs <= 1)
    for iou, error in matched_errors(found.mattes, alphas):
        assert iou > 0.95 and error < 0.02


def test_touching_figures_are_one_instance_covering_them_all():
    image, alphas = SyntheticScene(W, H, 3, seed=2).render(4)
    groups = separated(alphas)
    assert groups < 3, "the chosen frame has figures touching"
    [found] = KeyingEngine().infer([image])
    assert len(found) == groups
    assert np.abs(found.mattes.sum(0) - alphas.sum(0)).mean() < 0.005


def test_empty_screen_has_no_people():
    image, _ = SyntheticScene(W, H, 0, seed=1).render(0)
    [found] = KeyingEngine().infer([image])
    assert len(found) == 0 and found.mattes.shape == (0, H, W)


def test_blue_screen_keys_like_green():
    image, alphas = SyntheticScene(W, H, 4, seed=0).render(0)
    blue = np.ascontiguousarray(image[..., [1, 0, 2]])  # swapping B and G keeps every figure off the key colour
    for settings in (KeyingSettings(), KeyingSettings(key_colour=tuple(int(c) for c in blue[0, 0]))):
        [found] = KeyingEngine(settings).infer([blue])
        assert len(found) == 4
        assert all(iou > 0.95 and error < 0.02 for iou, error in matched_errors(found.mattes, alphas))


def test_odd_frame_size_and_full_scale():
    image, alphas = SyntheticScene(333, 191, 2, seed=5).render(0)
    assert separated(alphas) == 2
    for scale in (0.5, 1.0):
        engine = KeyingEngine(KeyingSettings(scale=scale))
        [found] = engine.infer([image])
        assert found.mattes.shape == (2, 191, 333) and engine.input_size == (round(191 * scale), round(333 * scale))
        assert all(iou > 0.9 and error < 0.03 for iou, error in matched_errors(found.mattes, alphas))


def test_batch_gives_one_result_per_frame_in_order():
    scene = SyntheticScene(W, H, 2, seed=3)
    frames = [scene.render(i)[0] for i in (0, 30, 60)]
    engine = KeyingEngine()
    batch = engine.infer(frames)
    assert len(batch) == 3 and engine.infer([]) == []
    for frame, result in zip(frames, batch):
        [alone] = engine.infer([frame])
        assert np.array_equal(alone.mattes, result.mattes) and np.array_equal(alone.probs, result.probs)


@pytest.mark.parametrize("frame", [np.zeros((40, 60), np.uint8), np.zeros((40, 60, 3), np.float32),
                                   np.zeros((40, 60, 4), np.uint8), [[0, 0, 0]]])
def test_frames_that_are_not_uint8_bgr_are_refused(frame):
    with pytest.raises(ValueError, match="uint8 BGR"):
        KeyingEngine().infer([frame])


def test_mixed_sizes_in_a_batch_are_refused():
    with pytest.raises(ValueError, match="one size"):
        KeyingEngine().infer([np.zeros((40, 60, 3), np.uint8), np.zeros((40, 62, 3), np.uint8)])


def test_no_screen_at_the_border_asks_for_a_key_colour():
    with pytest.raises(ValueError, match="key_colour"):
        KeyingEngine().infer([textured()])
    with pytest.raises(ValueError, match="not a green or blue screen"):
        KeyingSettings(key_colour=(128, 128, 128))


@pytest.mark.parametrize("bad", [dict(mode="luma"), dict(screen_low=0.8, screen_high=0.5), dict(scale=0.0),
                                 dict(plate_frames=0), dict(threshold=1.0), dict(edge=-1), dict(min_area=1.5)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        KeyingSettings(**bad)


def test_small_and_stringy_blobs_score_low_or_vanish():
    image = np.full((H, W, 3), (50, 175, 60), np.uint8)
    cv2.circle(image, (160, 180), 60, (40, 40, 200), -1)  # a solid body
    cv2.circle(image, (450, 180), 100, (40, 40, 200), 2)  # a thin loop: area enough, little of its hull filled
    cv2.circle(image, (600, 50), 3, (40, 40, 200), -1)  # a speck under the minimum area
    [found] = KeyingEngine().infer([image])
    assert len(found) == 2
    solid, loop = sorted(found.probs, reverse=True)
    assert solid == 1.0 and loop < 0.6


def test_despill_removes_the_screen_cast_and_keeps_person_colours():
    image, alphas = SyntheticScene(W, H, 4, seed=0).render(0)
    cover = alphas.sum(0)
    clean = KeyingEngine().despill(image)
    assert np.array_equal(clean, despill(image, (50, 175, 60)))
    b, g, r = (clean[..., c].astype(int) for c in range(3))
    assert np.all(g <= np.maximum(b, r))
    assert np.array_equal(clean[cover > 0.999], image[cover > 0.999]), "the figures have no green excess"
    edge = (cover > 0.05) & (cover < 0.95)
    assert (image[edge, 1].astype(int) - clean[edge, 1]).mean() > 10, "soft edges lose their green"


@pytest.fixture(params=["texture", "photo"])
def background(request) -> np.ndarray:
    if request.param == "texture":
        return textured()
    photo = cv2.imread(str(request.getfixturevalue("shared_media") / "group1.jpg"))
    return cv2.resize(photo, (W, H), interpolation=cv2.INTER_AREA)


def test_difference_key_finds_figures_after_the_plate(background):
    rng = np.random.default_rng(0)
    empty, scene = SyntheticScene(W, H, 0), SyntheticScene(W, H, 4, seed=4)
    engine = KeyingEngine(KeyingSettings(mode="difference", plate_frames=5))
    plate = [on_background(empty, i, background, rng)[0] for i in range(5)]
    assert [len(found) for found in engine.infer(plate)] == [0] * 5 and engine.plate_ready
    for index in (0, 3):
        image, alphas = on_background(scene, index, background, rng)
        [found] = engine.infer([image])
        # how the key cuts people into instances depends on the wall (a figure whose colours match it can
        # split, neighbours can merge), so this asserts what the key finds: the people, and only them
        assert len(found) >= 1
        union, truth = found.mattes.sum(0) > 0.5, alphas.sum(0) > 0.5
        assert (union & truth).sum() / (union | truth).sum() > 0.9
        assert np.abs(np.clip(found.mattes.sum(0), 0, 1) - alphas.sum(0)).mean() < 0.01
    [nobody] = engine.infer([on_background(empty, 9, background, rng)[0]])
    assert len(nobody) == 0


def test_capture_plate_on_demand_and_after_a_size_change():
    rng = np.random.default_rng(1)
    background = textured()
    engine = KeyingEngine(KeyingSettings(mode="difference", plate_frames=2))
    image, _ = on_background(SyntheticScene(W, H, 4, seed=0), 0, background, rng)
    engine.capture_plate(background)
    assert engine.plate_ready and len(engine.infer([image])[0]) == 4
    assert np.array_equal(engine.despill(image), image), "no screen, nothing to despill"
    engine.capture_plate()
    assert not engine.plate_ready
    assert [len(f) for f in engine.infer([background, background])] == [0, 0] and engine.plate_ready
    assert len(engine.infer([image])[0]) == 4
    with pytest.raises(ValueError, match="capture_plate"):
        engine.infer([np.zeros((H + 2, W, 3), np.uint8)])


def test_despill_leaves_frames_alone_in_difference_mode():
    image = textured()
    assert KeyingEngine(KeyingSettings(mode="difference")).despill(image) is image
