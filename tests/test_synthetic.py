import numpy as np
import pytest

from livematte.synthetic import SyntheticScene


def test_same_seed_same_frames_other_seed_other_frames():
    a, alpha_a = SyntheticScene(320, 180, 3, seed=7).render(12)
    b, alpha_b = SyntheticScene(320, 180, 3, seed=7).render(12)
    c, _ = SyntheticScene(320, 180, 3, seed=8).render(12)
    assert np.array_equal(a, b) and np.array_equal(alpha_a, alpha_b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("width, height, people", [(1280, 720, 4), (333, 191, 20), (64, 48, 1), (50, 50, 0)])
def test_alphas_are_visible_parts_of_each_figure(width, height, people):
    image, alphas = SyntheticScene(width, height, people, seed=1).render(5)
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert alphas.shape == (people, height, width) and alphas.dtype == np.float32
    assert alphas.size == 0 or (alphas.min() >= 0 and alphas.sum(0).max() <= 1 + 1e-5)
    if 0 < people <= 4:
        assert all(a.max() > 0.99 for a in alphas), "every figure is in view"
    if people:
        soft = ((alphas > 0.05) & (alphas < 0.95)).sum()
        assert soft > 0, "edges are anti-aliased"


def test_background_is_chroma_green_and_figures_are_not():
    image, alphas = SyntheticScene(640, 360, 4, seed=2).render(0)
    b, g, r = (image[..., c].astype(int) for c in range(3))
    background = alphas.sum(0) == 0
    person = alphas.sum(0) > 0.999
    assert np.mean((g > r + 60) & (g > b + 60))  # sanity: the scene has a green screen
    assert ((g > r + 60) & (g > b + 60))[background].mean() > 0.99
    assert ((g > r + 60) & (g > b + 60))[person].mean() < 0.01


def test_figures_move_and_cross():
    scene = SyntheticScene(640, 360, 4, seed=3, fps=30)
    centres = []
    for t in range(0, 300, 10):
        _, alphas = scene.render(t)
        columns = alphas.sum(1)
        centres.append([np.average(np.arange(c.size), weights=c) if c.sum() else np.nan for c in columns])
    centres = np.array(centres)
    assert (np.nanmax(centres, 0) - np.nanmin(centres, 0)).min() > 20, "every figure moves sideways"
    order = np.argsort(centres[~np.isnan(centres).any(1)], axis=1)
    assert len({tuple(o) for o in order}) > 1, "figures change left-to-right order (they cross)"
