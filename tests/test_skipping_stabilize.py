import numpy as np
import pytest

from livematte.skipping import InferenceSkipper
from livematte.stabilize import Stabilizer
from livematte.temporal import TemporalFuser
from livematte.tracking import Tracker


def frame(level):
    return np.full((36, 64, 3), level, np.uint8)


def test_every_kth_frame():
    skipper = InferenceSkipper(every=3)
    assert [skipper.should_infer(frame(0)) for _ in range(7)] == [True, False, False, True, False, False, True]
    assert skipper.skip_rate == pytest.approx(4 / 7)


def test_change_triggered_with_a_refresh_gap():
    skipper = InferenceSkipper(every=4, min_change=5)
    levels = [100, 101, 102, 140, 140, 140, 140, 141]
    assert [skipper.should_infer(frame(v)) for v in levels] == [True, False, False, True, False, False, False, True]


def test_every_one_never_skips():
    skipper = InferenceSkipper()
    assert all(skipper.should_infer(frame(v)) for v in range(5)) and skipper.skip_rate == 0


def test_bad_every():
    with pytest.raises(ValueError, match="at least 1"):
        InferenceSkipper(every=0)


def person(x):
    m = np.zeros((1, 36, 64), np.float32)
    m[0, 5:30, x:x + 12] = 1
    return m


def test_stabilizer_holds_a_one_frame_dropout_on_a_still_image():
    stabilizer = Stabilizer(Tracker(confirm_frames=1), TemporalFuser("causal"))
    still = frame(90)
    assert stabilizer.update(still, person(20), np.array([0.9])).ids == [1]
    dropped = stabilizer.update(still, np.zeros((0, 36, 64), np.float32), np.zeros(0))
    assert dropped.ids == [1] and np.array_equal(dropped.mattes, person(20)), "held through the dropout"
    gone = stabilizer.update(still, np.zeros((0, 36, 64), np.float32), np.zeros(0))
    assert gone.ids == [] or not gone.mattes.any(), "a persisting absence is accepted"


def test_stabilizer_exact_mode_delay():
    stabilizer = Stabilizer(Tracker(confirm_frames=1), TemporalFuser("exact"))
    assert stabilizer.delay == 1
    assert stabilizer.update(frame(90), person(20), np.array([0.9])) is None
    out = stabilizer.update(frame(90), person(20), np.array([0.9]))
    assert out.ids == [1] and np.array_equal(out.mattes, person(20))
    assert stabilizer.flush().ids == [1]
