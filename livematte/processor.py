"""One frame through the product: engine -> tracking + fusion -> compositor (infer, stabilize, render).

Everything here is per stream (one camera, one WebRTC peer): track ids, fusion state, effect
assignments and the skip schedule. The engine is passed in so that several streams can share one
network. Threading and frame handover are the caller's business (pipelines/live.py, the WebRTC
server); this class only keeps the order of the stages and their timings.

With a network engine the frame goes to the engine's device once, and inference, tracking, fusion and
compositing all read that copy; the output comes back to the host once. On the
CPU the "upload" is a zero-copy torch view of the same memory.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, TypeVar

import numpy as np

from kernels._arrays import host, kind_of, native, restore, xp_of
from livematte.compositor import Compositor
from livematte.config import Config, EffectsConfig, Footage
from livematte.engine.base import Engine, EngineError, Instances
from livematte.frame import Frame
from livematte.skipping import InferenceSkipper
from livematte.stabilize import People, Stabilizer, numbered_left_to_right
from livematte.temporal import TemporalFuser, fusion_params
from livematte.tracking import Tracker

log = logging.getLogger(__name__)

STAGES = ("engine", "stabilize", "composite")
STATS_WINDOW = 3000  # timings kept per stage: the last 100 s at 30 fps, so a stream running for days stays flat
T = TypeVar("T")


@dataclass(frozen=True)
class Inferred:
    """A frame and the engine's people in it, between inference and tracking; pixels: the frame on the
    engine's device. The instances are read, never written, after this point (a skipped inference hands
    the same ones on again)."""

    frame: Frame
    pixels: Any
    instances: Instances


@dataclass(frozen=True)
class Tracked:
    """A frame and its people, between tracking and compositing; pixels: the frame on the people's device."""

    frame: Frame
    people: People
    pixels: Any


@dataclass(frozen=True)
class Processed:
    """One output frame, on the host, with the frame it was made from (its capture time included)."""

    frame: Frame
    image: np.ndarray  # (H, W, 3) BGR or (H, W, 4) BGRA
    isolated: dict[int, np.ndarray]  # track id -> BGRA layer of that person alone
    people: int


class FrameProcessor:
    def __init__(self, cfg: Config, engine: Engine):
        self.cfg, self.engine = cfg, engine
        self.stabilizer = Stabilizer(Tracker.from_config(cfg.tracking),
                                     TemporalFuser(cfg.temporal.mode, fusion_params(cfg.temporal)),
                                     hold_frames=cfg.temporal.hold_frames)
        self.compositor = Compositor(cfg.effects)
        self.skipper = InferenceSkipper(cfg.engine.every, cfg.engine.min_change)
        self.times: dict[str, deque[float]] = {stage: deque(maxlen=STATS_WINDOW) for stage in STAGES}
        self._despill = self._despill_for(cfg.effects)
        self._device = engine.device
        self._photos = cfg.footage is Footage.PHOTOS  # each frame a picture of its own: nothing tracked or fused
        self._last: Instances | None = None
        self._failures = 0  # frames in a row the engine could not process
        self._waiting: tuple[Frame, Any] | None = None  # exact fusion: the frame whose people arrive with the next one

    def process(self, frame: Frame) -> Processed | None:
        """The output for `frame`, or (exact fusion mode) for the frame before it; None on exact mode's first."""
        tracked = self.track(frame, owned=False)  # rendered right away: the fusion state can be read in place
        return None if tracked is None else self.render(tracked)

    def track(self, frame: Frame, owned: bool = True) -> Tracked | None:
        """infer() then stabilize(): the people of `frame` (exact mode: of the frame before it)."""
        return self.stabilize(self.infer(frame), owned)

    def infer(self, frame: Frame) -> Inferred:
        """The engine's people in `frame` (the last ones again where the skip schedule skips it)."""
        pixels = self._upload(frame.pixels)
        if self._photos or self.skipper.should_infer(frame.pixels) or self._last is None:
            self._last = self._timed("engine", lambda: self._infer(frame.index, pixels))
            return Inferred(frame, pixels, self._last)
        return Inferred(frame, pixels, _held(self._last))

    def stabilize(self, inferred: Inferred, owned: bool = True) -> Tracked | None:
        """Tracked and fused people; None on exact mode's first frame. infer() and stabilize() may run on
        two threads, one call of each at a time.

        owned: the mattes are a copy, so render() may run on another thread while the next stabilize()
        overwrites the fusion state; False skips that copy for a caller that renders before stabilizing
        again."""
        frame, pixels, last = inferred.frame, inferred.pixels, inferred.instances
        if self._photos:
            people = numbered_left_to_right(last.mattes, last.probs, self.cfg.tracking.enter_threshold)
            return Tracked(frame, people, pixels)
        seen = pixels if last.picture is None else last.picture
        people = self._timed("stabilize", lambda: self.stabilizer.update(seen, last.mattes, last.probs, last.extents,
                                                                         last.fresh))
        shown, self._waiting = (((frame, pixels), None) if self.stabilizer.delay == 0
                                else (self._waiting, (frame, pixels)))
        return None if people is None else Tracked(shown[0], _owned(people) if owned else people, shown[1])

    def flush(self) -> Tracked | None:
        """At the end of a stream: exact mode's last frame and its people (None in the other modes)."""
        people = self.stabilizer.flush()
        return None if people is None or self._waiting is None else Tracked(self._waiting[0], _owned(people),
                                                                            self._waiting[1])

    def render(self, tracked: Tracked) -> Processed:
        """Last step of process(): the composite. stabilize() and render() may run on two threads, one
        call of each at a time: they share no state when stabilize() handed over owned mattes."""
        frame, people = tracked.frame, tracked.people
        pixels = self._despilled(tracked.pixels)
        composite = self._timed("composite", lambda: self.compositor.render(pixels, people.mattes, people.ids,
                                                                             people.extents))
        # the one download per frame a host sink needs (a no-op for NumPy)
        return Processed(frame, host(composite.image), {k: host(v) for k, v in composite.isolated.items()},
                         len(people.ids))

    def set_effects(self, effects: EffectsConfig) -> None:
        """Switch to other effect settings (e.g. an uploaded background); who has which effect is kept.
        Call it between frames, from the thread that renders."""
        compositor = Compositor(effects)
        compositor.effects = self.compositor.effects
        old, self.compositor = self.compositor, compositor
        self._despill = self._despill_for(effects)
        old.close()

    def stage_ms(self) -> dict[str, float]:
        """Median milliseconds per stage over the last STATS_WINDOW frames."""
        return medians(self.times)

    def close(self) -> None:
        self.compositor.close()

    def _despilled(self, pixels):
        """The frame without the screen's colour cast; as it is where no screen is seen (the engine then
        skipped that frame, and a warning said so)."""
        if self._despill is None:
            return pixels
        try:
            return self._despill(pixels)
        except ValueError:
            return pixels

    def _despill_for(self, effects: EffectsConfig):
        """Keying: remove the screen's colour cast from people placed on a new background (where the
        background is the filmed one, the frame stays as it is)."""
        replaced = effects.background.kind not in ("original", "blur")
        return self.engine.despill if replaced else None

    def _upload(self, pixels: np.ndarray):
        """The frame on the engine's device (the one upload per frame); as it is for other engines."""
        if self._device is None:
            return pixels
        import torch

        return torch.from_numpy(pixels).to(self._device, non_blocking=True)

    def _infer(self, index: int, pixels) -> Instances:
        """The engine's people; on a frame it rejects (a black frame at camera warm-up, lights off), the
        last people again (nobody on a photo or the first frame), so that one bad frame never ends a live
        stream; engine.max_failures frames in a row do."""
        try:
            found = self.engine.infer([pixels])[0]
        except ValueError as exc:  # engines reject input they cannot work on with ValueError
            self._failures += 1
            limit = self.cfg.engine.max_failures
            if self._failures >= limit:
                raise EngineError(f"the engine could not process {self._failures} frames in a row (frame {index}: "
                                  f"{exc}); engine.max_failures ({limit}) is how many end the run") from None
            if self._failures == 1:
                log.warning("frame %d skipped, the people held: %s (%d in a row end the run: engine.max_failures)",
                            index, exc, limit)
            return _held(self._last) if self._last is not None and not self._photos else _nobody(pixels)
        if self._failures:
            log.warning("the engine is back after %d skipped frames", self._failures)
            self._failures = 0
        return found

    def _timed(self, stage: str, work: Callable[[], T]) -> T:
        start = time.perf_counter()
        result = work()
        self.times[stage].append((time.perf_counter() - start) * 1e3)
        return result



def medians(times: dict[str, deque[float]]) -> dict[str, float]:
    """Median milliseconds of each stage that has timings."""
    return {stage: float(np.median(samples)) for stage, samples in times.items() if samples}


def _held(instances: Instances) -> Instances:
    """The last people, handed on for a frame the engine did not read: without the picture of the frame
    they were found in, and none of them fresh."""
    return replace(instances, picture=None, fresh=np.zeros(len(instances), bool))


def _nobody(pixels) -> Instances:
    """No people, as arrays of the frame's kind and device."""
    xp, kind = xp_of(native(pixels)), kind_of(pixels)
    height, width = pixels.shape[:2]
    return Instances(restore(xp.zeros((0, height, width), np.float32), kind), restore(xp.zeros(0, np.float32), kind))


def _owned(people: People) -> People:
    """People whose mattes are a copy: the stabilizer's are its fusion state, which the next frame overwrites."""
    return People(restore(native(people.mattes).copy(), kind_of(people.mattes)), people.ids, people.extents)
