"""One frame the engine rejects (a black frame at camera warm-up, the lights off) is skipped with the
people held; only engine.max_failures frames in a row end the run."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from livematte.config import load_config
from livematte.engine.base import EngineError
from livematte.engine.keying import KeyingEngine, KeyingSettings
from livematte.frame import Frame
from livematte.processor import FrameProcessor
from livematte.synthetic import SyntheticScene

H, W = 180, 320


def green_screen_frames(count: int) -> list[np.ndarray]:
    scene = SyntheticScene(W, H, people=2, seed=3)
    return [scene.render(i)[0] for i in range(count)]


def processor(*extra: str) -> FrameProcessor:
    cfg = load_config(overrides=["engine.kind=keying", "effects.people={}", *extra])
    return FrameProcessor(cfg, KeyingEngine(KeyingSettings.from_config(cfg.engine.keying)))


def test_a_black_frame_is_skipped_with_the_people_held(caplog):
    frames = green_screen_frames(8)
    frames[5] = np.zeros_like(frames[5])
    run = processor()
    with caplog.at_level(logging.WARNING, logger="livematte.processor"):
        outputs = [run.process(Frame(pixels, i, time.monotonic_ns())) for i, pixels in enumerate(frames)]
    assert [out.people for out in outputs[2:]] == [2] * 6, "the black frame keeps the two people"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "frame 5 skipped" in warnings[0] and "engine.max_failures" in warnings[0]
    assert "back after 1 skipped frames" in warnings[1]


def test_max_failures_in_a_row_end_the_run_naming_the_key():
    frames = green_screen_frames(3) + [np.zeros((H, W, 3), np.uint8)] * 3
    run = processor("engine.max_failures=3")
    for i, pixels in enumerate(frames[:5]):
        run.process(Frame(pixels, i, time.monotonic_ns()))
    with pytest.raises(EngineError, match=r"3 frames in a row \(frame 5.*engine.max_failures \(3\)"):
        run.process(Frame(frames[5], 5, time.monotonic_ns()))


def test_a_first_frame_the_engine_rejects_gives_nobody():
    run = processor()
    out = run.process(Frame(np.zeros((H, W, 3), np.uint8), 0, time.monotonic_ns()))
    assert out.people == 0 and out.image.shape == (H, W, 3)
