"""Training data: the image-instance layout, generated datasets, compositing with occlusion
bookkeeping, augmentation, trimap and segmentation targets, and the replayable sample order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.model.e2ehim import NUM_QUERIES
from livematte.train.augment import augment
from livematte.train.compose import Cutout, compose, cut_out
from livematte.train.config import AugmentConfig, CompositeData, TargetConfig
from livematte.train.datasets import FolderSource, RunOrder, TrainingSet, collate, open_source
from livematte.train.layout import LayoutError, Sample, list_samples, read_sample, write_sample
from livematte.train.synthetic_data import SyntheticSpec, write_synthetic_dataset
from livematte.train.targets import BACKGROUND, FOREGROUND, UNKNOWN, seg_from_alpha, trimap_from_alpha


def sample(name: str = "a", h: int = 24, w: int = 32, people: int = 2) -> Sample:
    rng = np.random.default_rng(len(name) + people)
    alphas = np.round(rng.random((people, h, w)) * 255).astype(np.float32) / 255
    return Sample(name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), alphas)


def test_layout_round_trip_and_16_bit_alphas(tmp_path):
    written = sample()
    write_sample(tmp_path, written)
    cv2.imwrite(str(tmp_path / "alphas" / "a" / "02.png"), np.full((24, 32), 65535, np.uint16))
    (files,) = list_samples(tmp_path)
    read = read_sample(files)
    assert [p.name for p in files.alphas] == ["00.png", "01.png", "02.png"]
    np.testing.assert_array_equal(read.image, written.image)
    np.testing.assert_allclose(read.alphas[:2], written.alphas, atol=1e-6)
    assert (read.alphas[2] == 1.0).all()


def test_layout_errors_name_the_problem_and_the_fix(tmp_path):
    with pytest.raises(LayoutError, match="needs images/ and alphas/"):
        list_samples(tmp_path)
    write_sample(tmp_path, sample())
    cv2.imwrite(str(tmp_path / "images" / "lonely.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(LayoutError, match=r"1 images .* no alphas/NAME/ folder \(lonely\)"):
        list_samples(tmp_path)
    (tmp_path / "images" / "lonely.png").unlink()
    cv2.imwrite(str(tmp_path / "alphas" / "a" / "00.png"), np.zeros((5, 5), np.uint8))
    with pytest.raises(LayoutError, match=r"00.png: alpha is 5x5 but its image is 32x24"):
        read_sample(list_samples(tmp_path)[0])


def test_synthetic_dataset_is_written_once_rewritten_for_a_new_spec_and_never_over_other_data(tmp_path):
    spec = SyntheticSpec(samples=3, width=64, height=48, people=(2, 3), seed=1)
    root = write_synthetic_dataset(tmp_path / "d", spec)
    files = list_samples(root)
    assert len(files) == 3 and all(2 <= len(f.alphas) <= 3 for f in files)
    stamp = files[0].image.stat().st_mtime_ns
    write_synthetic_dataset(root, spec)
    assert files[0].image.stat().st_mtime_ns == stamp
    write_synthetic_dataset(root, SyntheticSpec(samples=2, width=64, height=48, people=(2, 3), seed=1))
    assert len(list_samples(root)) == 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(LayoutError, match="not a generated synthetic dataset"):
        write_synthetic_dataset(tmp_path / "mine", spec)


def test_synthetic_alphas_are_exact_visible_parts(tmp_path):
    root = write_synthetic_dataset(tmp_path, SyntheticSpec(samples=4, width=96, height=64, people=(3, 3), seed=5))
    for files in list_samples(root):
        s = read_sample(files)
        assert s.alphas.sum(axis=0).max() <= 1.0 + 3 / 255
        assert all((a >= 0.5).any() for a in s.alphas)


def test_trimap_marks_solid_regions_and_a_band_around_edges():
    y, x = np.mgrid[:41, :41]
    disc = ((y - 20) ** 2 + (x - 20) ** 2 <= 10 ** 2).astype(np.float32)[None]
    trimap = trimap_from_alpha(disc, width=2)[0]
    assert trimap[20, 20] == FOREGROUND and trimap[0, 0] == BACKGROUND
    assert trimap[20, 30] == UNKNOWN and trimap[20, 31] == UNKNOWN and trimap[20, 27] == FOREGROUND
    assert set(np.unique(trimap_from_alpha(disc, width=0))) == {BACKGROUND, FOREGROUND}
    soft = disc.copy()
    soft[0, 20, 20] = 0.5
    assert trimap_from_alpha(soft, width=0)[0, 20, 20] == UNKNOWN


def test_segmentation_target_is_the_coverage_of_each_8x8_cell():
    alpha = np.zeros((1, 16, 16), np.float32)
    alpha[0, :8, :8] = 1.0
    alpha[0, 8:, 8:12] = 1.0
    np.testing.assert_allclose(seg_from_alpha(alpha)[0], [[1.0, 0.0], [0.0, 0.5]])


def solid(colour: tuple[int, int, int], h: int = 20, w: int = 20) -> Cutout:
    return Cutout(np.full((h, w, 3), colour, np.float32), np.ones((h, w), np.float32))


@pytest.mark.parametrize("seed", range(4))
def test_composite_updates_the_mattes_of_covered_people(seed):
    """Two 36 px people on a 40 px canvas always overlap; the image must be exactly the layers
    composited with the returned alphas, which holds only if covered parts left the farther alpha."""
    red, blue = (0, 0, 255), (255, 0, 0)
    out = compose(np.zeros((40, 40, 3), np.uint8), [solid(red), solid(blue)], (0.9, 0.9), np.random.default_rng(seed))
    assert out.alphas.shape == (2, 40, 40) and all((a == 1).any() for a in out.alphas)
    assert out.alphas.sum(axis=0).max() <= 1.0 + 1e-6
    colours = np.array([out.image[out.alphas[i] == 1][0] for i in range(2)], np.float32)
    assert {tuple(c) for c in colours.astype(int)} == {red, blue}
    rebuilt = np.einsum("nhw,nc->hwc", out.alphas, colours)
    assert np.abs(rebuilt - out.image).max() <= 1.0
    bottoms = [np.nonzero(a.any(axis=1))[0].max() for a in out.alphas]
    assert bottoms[1] >= bottoms[0]  # the nearer person (lower feet) is the later layer


def test_cut_out_crops_to_the_person():
    s = Sample("s", np.zeros((10, 12, 3), np.uint8), np.zeros((1, 10, 12), np.float32))
    s.alphas[0, 2:5, 3:9] = 0.5
    cut = cut_out(s, 0)
    assert cut.alpha.shape == (3, 6) and (cut.alpha == 0.5).all()


def striped(h: int = 48, w: int = 64) -> Sample:
    """Grey image whose brightness says where the person is (alpha 1 = bright)."""
    alpha = np.zeros((1, h, w), np.float32)
    alpha[0, 8:40, 10:30] = 1.0
    return Sample("s", np.repeat((20 + 200 * alpha[0])[..., None], 3, axis=2).astype(np.uint8), alpha)


def test_augmentation_keeps_image_and_alphas_aligned_and_is_reproducible():
    cfg = AugmentConfig(flip=0.5, affine=1.0, zoom=1.5)
    for seed in range(6):
        out = augment(striped(), 32, cfg, np.random.default_rng(seed))
        assert out.image.shape == (32, 32, 3) and out.alphas.shape == (1, 32, 32)
        grey = out.image.astype(np.float32).mean(axis=2)
        inside, outside = grey[out.alphas[0] > 0.99], grey[out.alphas[0] < 0.01]
        if inside.size and outside.size:
            assert inside.min() > outside.max()
    a, b = (augment(striped(), 32, cfg, np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(a.image, b.image)
    c = augment(striped(), 32, cfg, np.random.default_rng(8))
    assert not np.array_equal(a.image, c.image)


def test_training_items_have_targets_for_at_most_one_person_per_query(tmp_path):
    h = w = 64
    alphas = np.zeros((NUM_QUERIES + 3, h, w), np.float32)
    for i in range(len(alphas)):
        alphas[i, i * 2: i * 2 + 2, : 4 + i] = 1.0  # person i covers 2 x (4 + i) pixels
    write_sample(tmp_path, Sample("many", np.zeros((h, w, 3), np.uint8), alphas))
    off = AugmentConfig(flip=0, affine=0, zoom=1, contrast=0, gamma=1, saturation=0)
    dataset = TrainingSet(FolderSource(tmp_path), 64, off, TargetConfig(trimap_width=1, min_area=9), seed=0)
    batch = collate([dataset[(0, 0)], dataset[(0, 1)]])
    assert batch.images.shape == (2, 3, 64, 64)
    targets = batch.targets[0]
    assert targets.alphas.shape == (NUM_QUERIES, 64, 64)
    areas = targets.alphas.sum(dim=(1, 2)).tolist()
    assert areas == [2.0 * (4 + i) for i in range(3, NUM_QUERIES + 3)]  # the three smallest were dropped
    assert targets.seg.shape == (NUM_QUERIES, 8, 8) and set(targets.trimaps.unique().tolist()) <= {0, 1, 2}


def test_run_order_replays_any_stretch_and_visits_every_sample_each_epoch():
    whole = list(RunOrder(7, seed=3, start=0, stop=21))
    assert list(RunOrder(7, seed=3, start=0, stop=9)) + list(RunOrder(7, seed=3, start=9, stop=21)) == whole
    for epoch in range(3):
        assert sorted(index for index, _ in whole[7 * epoch: 7 * epoch + 7]) == list(range(7))
    assert [position for _, position in whole] == list(range(21))


def test_composite_source_pastes_people_from_the_foreground_dataset_onto_backgrounds(tmp_path):
    foregrounds = write_synthetic_dataset(tmp_path / "fg", SyntheticSpec(samples=3, width=64, height=48, people=(2, 2),
                                                                        seed=4))
    (tmp_path / "bg").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "bg" / f"{i}.jpg"), np.full((50, 70, 3), 40 * i, np.uint8))
    source = open_source(CompositeData(foregrounds=foregrounds, backgrounds=tmp_path / "bg", people=(2, 3), samples=5))
    assert len(source) == 5
    for index in range(5):
        composite = source.sample(index, np.random.default_rng(index))
        assert composite.image.shape == (50, 70, 3) and 2 <= len(composite.alphas) <= 3
        assert composite.alphas.sum(axis=0).max() <= 1.0 + 1e-5
    with pytest.raises(LayoutError, match="background folder .* not found"):
        open_source(CompositeData(foregrounds=foregrounds, backgrounds=tmp_path / "nothing"))
