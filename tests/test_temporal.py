import numpy as np
import pytest

from kernels import FusionParams
from livematte.temporal import TemporalFuser

H, W = 24, 32


def still_frame(level=100):
    return np.full((H, W, 3), level, np.uint8)


def mattes(*values):
    return np.stack([np.full((H, W), v, np.float32) for v in values])


def test_off_passes_through():
    fuser = TemporalFuser("off")
    m = mattes(0.3, 0.7)
    assert fuser.update(still_frame(), m, [4, 9]) is m and fuser.ids == [4, 9]


def test_causal_holds_a_one_frame_pop_on_a_still_image():
    fuser = TemporalFuser("causal")
    fuser.update(still_frame(), mattes(0.5), [1])
    popped = fuser.update(still_frame(), mattes(0.9), [1])
    assert np.allclose(popped, 0.5), "a one-frame disagreement on a still image is ignored"
    persisted = fuser.update(still_frame(), mattes(0.9), [1])
    assert np.allclose(persisted, 0.9), "a disagreement that persists is accepted one frame later"


def test_causal_ignores_a_wobble_on_a_still_image_and_takes_a_lasting_change():
    """A learned engine's mask edges go up and down where nothing moved: none of it reaches the output."""
    fuser = TemporalFuser("causal")
    fuser.update(still_frame(), mattes(0.5), [1])
    wobble = [float(fuser.update(still_frame(), mattes(v), [1])[0, 0, 0]) for v in (0.8, 0.3, 0.7, 0.35, 0.75)]
    assert wobble == pytest.approx([0.5] * 5)
    lasting = [float(fuser.update(still_frame(), mattes(0.3), [1])[0, 0, 0]) for _ in range(3)]
    assert lasting == pytest.approx([0.5, 0.3, 0.3]), "taken on its second frame"
    agreeing = [float(fuser.update(still_frame(), mattes(0.32), [1])[0, 0, 0]) for _ in range(2)]
    assert agreeing == pytest.approx([0.3 + 0.15 * 0.02, 0.3 + (1 - 0.85 ** 2) * 0.02]), "agreement blends in"


def test_state_follows_ids_not_positions():
    fuser = TemporalFuser("causal")
    fuser.update(still_frame(), mattes(0.2, 0.8), [1, 2])
    swapped = fuser.update(still_frame(), mattes(0.8 + 0.01, 0.2 + 0.01), [2, 1])
    assert np.allclose(swapped[0], 0.8, atol=0.002) and np.allclose(swapped[1], 0.2, atol=0.002), \
        "held values moved with their ids"
    assert fuser.ids == [2, 1]


def test_new_track_takes_its_prediction_and_a_returning_id_keeps_no_stale_state():
    fuser = TemporalFuser("causal")
    fuser.update(still_frame(), mattes(0.2), [1])
    out = fuser.update(still_frame(), mattes(0.2, 0.6), [1, 2])
    assert np.allclose(out[1], 0.6)
    fuser.update(still_frame(), mattes(0.2), [1])
    back = fuser.update(still_frame(), mattes(0.2, 0.9), [1, 2])
    assert np.allclose(back[1], 0.9), "id 2 was absent for a frame: its old state is gone"


def test_where_the_picture_changed_unseen_follows_each_id():
    """Per track, the fuser keeps where the picture changed since the engine last looked at that person
    (an engine that reads people in turn hands the others on); it moves with the id when tracks reorder."""
    fuser = TemporalFuser("causal", FusionParams(blend=0.0))
    fuser.update(still_frame(), mattes(1.0, 1.0), [1, 2])
    moved = still_frame()
    moved[:, :W // 2] = 200
    fuser.update(moved, mattes(1.0, 1.0), [1, 2], fresh=np.array([False, True]))  # 2 was looked at, 1 not
    out = fuser.update(moved, mattes(0.2, 0.2, 0.5), [2, 1, 3], fresh=np.array([True, True, True]))
    assert np.allclose(out[1][:, :W // 2], 0.2), "1's first look at the changed half is taken at once"
    assert np.all(out[1][:, W // 2 + 1:] == 1) and np.all(out[0] == 1), "elsewhere a single look waits"


def test_changed_image_trusts_the_network():
    fuser = TemporalFuser("causal", FusionParams(tau_y=8))
    fuser.update(still_frame(100), mattes(0.5), [1])
    out = fuser.update(still_frame(140), mattes(0.9), [1])
    assert np.allclose(out, 0.9)


def test_frame_size_change_resets():
    fuser = TemporalFuser("causal")
    fuser.update(still_frame(), mattes(0.5), [1])
    other = np.full((10, 12, 3), 100, np.uint8)
    out = fuser.update(other, np.full((1, 10, 12), 0.9, np.float32), [1])
    assert np.allclose(out, 0.9)


def test_scene_cut_is_counted():
    fuser = TemporalFuser("causal")
    fuser.update(still_frame(10), mattes(0.5), [1])
    fuser.update(still_frame(200), mattes(0.6), [1])
    assert fuser.scene_cuts == 1


def test_exact_mode_is_one_frame_late_and_flushes():
    fuser = TemporalFuser("exact")
    assert fuser.delay == 1
    assert fuser.update(still_frame(), mattes(0.5), [1]) is None
    first = fuser.update(still_frame(), mattes(0.9), [1])
    assert np.allclose(first, 0.5) and fuser.ids == [1]
    second = fuser.update(still_frame(), mattes(0.5), [1]).copy()
    assert np.allclose(second, 0.5), "t+1 agrees with the fused t-1 on a still image: the pop at t is removed"
    last = fuser.flush()
    assert np.allclose(last, 0.5) and fuser.flush() is None


def test_exact_mode_when_a_track_leaves():
    fuser = TemporalFuser("exact")
    fuser.update(still_frame(), mattes(0.4, 0.6), [1, 2])
    out = fuser.update(still_frame(), mattes(0.4), [1])
    assert out.shape == (2, H, W) and fuser.ids == [1, 2]
    assert np.allclose(out[1], 0.6)


def test_bad_inputs():
    fuser = TemporalFuser("causal")
    with pytest.raises(ValueError, match="distinct"):
        fuser.update(still_frame(), mattes(0.1, 0.2), [3, 3])
    with pytest.raises(ValueError, match="2 mattes but 1 track ids"):
        fuser.update(still_frame(), mattes(0.1, 0.2), [3])
    with pytest.raises(ValueError, match="off, causal or exact"):
        TemporalFuser("smooth")


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    fuser = TemporalFuser("causal")
    fuser.update(torch.from_numpy(still_frame()), torch.from_numpy(mattes(0.5)), [1])
    out = fuser.update(torch.from_numpy(still_frame()), torch.from_numpy(mattes(0.9)), [1])
    assert isinstance(out, torch.Tensor) and torch.allclose(out, torch.tensor(0.5))


def walker(t):
    """Frame t of a textured person translating by (2, 3) per frame across a textured wall, and their matte."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    body = rng.integers(0, 256, (10, 8, 3), dtype=np.uint8)
    y, x = 3 + 2 * t, 2 + 3 * t
    frame[y:y + 10, x:x + 8] = body
    matte = np.zeros((1, H, W), np.float32)
    matte[0, y:y + 10, x:x + 8] = 1
    return frame, matte


def walked(motion, *predictions):
    """The fused mattes of frames 3, 4, ... of the walker, given their predictions after three exact ones."""
    fuser = TemporalFuser("causal", FusionParams(motion=motion))
    for t in range(3):
        fuser.update(*walker(t), [1])
    return [fuser.update(walker(t)[0], prediction, [1]).copy() for t, prediction in enumerate(predictions, 3)]


def test_one_frame_pop_on_a_walking_person_is_held_with_motion_compensation():
    truth = walker(3)[1]
    popped = truth.copy()
    popped[0, 12:15, 13:16] = 0  # a hole inside the body
    hole = (popped == 0) & (truth == 1)
    [compensated], [plain] = walked(True, popped), walked(False, popped)
    assert np.array_equal(compensated, truth), "after compensation the person is static: the pop is held off"
    assert not plain[hole].any(), "uncompensated, the moving texture counts as a change: the pop passes"


def test_a_walking_person_missed_for_a_frame_is_held_where_they_walked_to():
    truth, empty = walker(3)[1], np.zeros((1, H, W), np.float32)
    held, gone = walked(True, empty, empty)
    assert np.array_equal(held, truth), "held for one frame, moved on by the person's last shift"
    assert not gone.any(), "an absence that persists is accepted"
    [plain] = walked(False, empty)
    assert plain[truth > 0].mean() < 0.5, "uncompensated, most of the moving person blinks"


@pytest.mark.parametrize("mode", ["causal", "exact"])
def test_extents_hold_every_non_zero_value_of_the_returned_mattes(mode):
    """The compositor's feather trusts them instead of scanning every plane; a held person included."""
    fuser = TemporalFuser(mode)
    two = lambda t: np.concatenate([walker(t)[1], np.roll(walker(t)[1], 12, axis=2)])  # noqa: E731
    predictions = [two(0), two(1), np.zeros((2, H, W), np.float32), two(3), two(3)[:1]]
    ids = [[1, 2], [1, 2], [1, 2], [1, 2], [2]]
    seen = 0
    for t, (prediction, tracks) in enumerate(zip(predictions, ids)):
        fused = fuser.update(walker(t)[0], prediction, tracks)
        if fused is None:
            continue
        extents = fuser.extents
        assert extents.shape == (len(fuser.ids), 4)
        for matte, (y0, y1, x0, x1) in zip(fused, extents):
            outside = matte.copy()
            outside[y0:y1, x0:x1] = 0
            assert not outside.any()
            seen += bool(matte.any())
    assert seen >= 4  # the invariant was checked on mattes with people in them
    assert TemporalFuser("off").extents is None
