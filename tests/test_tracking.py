import numpy as np
import pytest

from livematte.synthetic import SyntheticScene
from livematte.tracking import UNTRACKED, Tracker


def run_scene(tracker, scene, frames, rng, drop=None, with_frame=True):
    """Feed the scene's true alphas in a shuffled order, without the slivers an engine drops
    (under 1000 px at 720p); return {figure: set of ids it got}."""
    min_area = 1000 * scene.width * scene.height / (1280 * 720)
    seen: dict[int, set[int]] = {}
    for t in range(frames):
        image, alphas = scene.render(t)
        keep = [i for i in rng.permutation(len(alphas)) if alphas[i].sum() >= min_area and not (drop and drop(t, i))]
        ids = tracker.update(alphas[keep], np.full(len(keep), 0.9, np.float32), image if with_frame else None)
        for figure, track_id in zip(keep, ids):
            if track_id != UNTRACKED:
                seen.setdefault(figure, set()).add(track_id)
    return seen


@pytest.mark.parametrize("seed", [0, 3])
def test_ids_survive_shuffled_order_and_people_walking_behind_each_other(seed):
    scene = SyntheticScene(640, 360, 4, seed=seed)
    seen = run_scene(Tracker(), scene, 300, np.random.default_rng(seed))
    assert len(seen) == 4
    assert all(len(ids) == 1 for ids in seen.values()), f"id switches: {seen}"
    assert len(set().union(*seen.values())) == 4


def test_without_the_frame_only_overlap_matching_runs():
    scene = SyntheticScene(640, 360, 2, seed=1)
    seen = run_scene(Tracker(), scene, 60, np.random.default_rng(0), with_frame=False)
    assert sorted(len(ids) for ids in seen.values()) == [1, 1]


def test_twenty_people_in_a_grid_keep_their_ids_through_shuffles():
    rng = np.random.default_rng(3)
    tracker = Tracker(max_people=20)
    first = None
    for t in range(30):
        mattes = np.zeros((20, 180, 400), np.float32)
        for i in range(20):
            y, x = 10 + 90 * (i // 10), 5 + 40 * (i % 10) + t % 5
            mattes[i, y:y + 70, x:x + 25] = 1
        order = rng.permutation(20)
        ids = tracker.update(mattes[order], np.full(20, 0.9, np.float32))
        by_person = dict(zip(order.tolist(), ids))
        if t == 1:
            first = by_person
        if t >= 1:
            assert by_person == first
    assert sorted(first.values()) == list(range(1, 21))


def test_ten_walkers_crossing_in_720p():
    seen = run_scene(Tracker(), SyntheticScene(1280, 720, 10, seed=0), 150, np.random.default_rng(0))
    assert len(seen) == 10 and all(len(ids) == 1 for ids in seen.values()), seen


def test_brief_disappearance_keeps_the_id_long_absence_gets_a_new_one():
    scene = SyntheticScene(320, 180, 2, seed=4)
    tracker = Tracker(max_missing=5)
    gone = lambda lo, hi: (lambda t, i: i == 0 and lo <= t < hi)  # noqa: E731
    seen = run_scene(tracker, scene, 40, np.random.default_rng(2), drop=gone(10, 14))
    assert len(seen[0]) == 1, "hidden for 4 frames: same id"
    tracker = Tracker(max_missing=5)
    seen = run_scene(tracker, scene, 60, np.random.default_rng(2), drop=gone(10, 30))
    first, second = sorted(seen[0])
    assert second > max(seen[1]), "a returning person after a long absence gets a fresh, never-used id"


def test_confirmation_hides_one_frame_false_positives():
    tracker = Tracker(confirm_frames=3)
    blob = np.zeros((1, 40, 40), np.float32)
    blob[0, 10:20, 10:20] = 1
    assert tracker.update(blob, [0.9]) == [UNTRACKED]
    assert tracker.update(blob, [0.9]) == [UNTRACKED]
    assert tracker.update(blob, [0.9]) == [1]


def test_hysteresis_enter_and_exit_thresholds():
    tracker = Tracker(enter_threshold=0.7, exit_threshold=0.3, confirm_frames=1)
    blob = np.zeros((1, 40, 40), np.float32)
    blob[0, 10:20, 10:20] = 1
    assert tracker.update(blob, [0.5]) == [UNTRACKED], "below enter: no new person"
    assert tracker.update(blob, [0.8]) == [1]
    assert tracker.update(blob, [0.5]) == [1], "between thresholds: an existing person stays"
    assert tracker.update(blob, [0.2]) == [UNTRACKED], "below exit: dropped"


def test_max_people_keeps_the_oldest():
    tracker = Tracker(confirm_frames=1, max_people=2)
    mattes = np.zeros((3, 30, 90), np.float32)
    for i in range(3):
        mattes[i, 5:25, 30 * i + 5:30 * i + 25] = 1
    assert tracker.update(mattes[:2], [0.9, 0.9]) == [1, 2]
    assert tracker.update(mattes, [0.9, 0.9, 0.9]) == [1, 2, UNTRACKED]


def test_empty_frames_and_mismatched_inputs():
    tracker = Tracker()
    assert tracker.update(np.zeros((0, 20, 20), np.float32), np.zeros(0)) == []
    with pytest.raises(ValueError, match="2 mattes but 1 probabilities"):
        tracker.update(np.zeros((2, 20, 20), np.float32), [0.9])


def test_torch_mattes_are_pooled_on_their_device():
    torch = pytest.importorskip("torch")
    tracker = Tracker(confirm_frames=1)
    mattes = torch.zeros(2, 180, 320)
    mattes[0, 20:100, 20:80] = 1
    mattes[1, 20:100, 200:260] = 1
    assert tracker.update(mattes, torch.tensor([0.9, 0.9])) == [1, 2]
    assert tracker.update(mattes.flip(0), torch.tensor([0.9, 0.9])) == [2, 1]
