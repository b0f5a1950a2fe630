"""One browser's stream: its own tracking, effects and temp folder, processed on its own worker thread.

Frames flow one way: the browser's track -> a reader task that keeps only the newest frame -> the
worker thread (FrameProcessor) -> the newest processed frame -> ProcessedTrack.recv(). The worker is a
one-thread executor, so the page's requests (select, effect changes, uploads) run on the same thread
between two frames and never race with a frame in progress; the event loop only moves frames and text.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from pydantic import BaseModel

from livematte.config import BackgroundConfig, Config, PersonEffectConfig
from livematte.engine.base import Engine
from livematte.frame import Frame
from livematte.processor import FrameProcessor
from livematte.webrtc.latest import Latest, LatestClosed
from livematte.webrtc.messages import (
    ChangeEffect,
    EffectSet,
    Failure,
    MessageError,
    PersonState,
    PlateCapturing,
    Select,
    Selected,
    Stats,
    parse_request,
)
from livematte.webrtc.track import Output, ProcessedTrack
from livematte.webrtc.uploads import save_image

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Arrival:
    frame: VideoFrame
    seconds: float  # the camera's timestamp: aiortc's receiver counts it from the first frame, unwrapped
    arrived_ns: int


class PeerSession:
    def __init__(self, peer_id: str, cfg: Config, engine: Engine):
        self.id = peer_id
        self.engine = engine
        self.processor = FrameProcessor(cfg, engine)
        self.folder = Path(tempfile.mkdtemp(prefix=f"livematte-peer-{peer_id[:8]}-"))
        self._interval = cfg.serve.stats_interval_s
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"peer-{peer_id[:8]}")
        self._inbox: Latest[Arrival] = Latest()
        self._outbox: Latest[Output] = Latest()
        self._channel: RTCDataChannel | None = None
        self._tasks: set[asyncio.Task] = set()
        self._frames = 0
        self._uploads = itertools.count(1)
        self._sent_ms: list[float] = []  # arrival -> handed to the encoder, per frame sent since the last stats
        self._last_sent: Output | None = None
        self._closed = False

    def attach_track(self, track: MediaStreamTrack) -> ProcessedTrack:
        """Start processing the browser's camera track; returns the track to send back."""
        for work in (self._read(track), self._pump(), self._report()):
            self._start(work)
        return ProcessedTrack(self._outbox, self._on_sent)

    def attach_channel(self, channel: RTCDataChannel) -> None:
        self._channel = channel

        @channel.on("message")
        def on_message(text: str | bytes) -> None:
            self._start(self._reply(text))

    async def set_background(self, data: bytes, track: int | None) -> PersonState | None:
        """Show an encoded image (uploads.encoded) behind everyone (track None) or as the own background of
        one person. The folder keeps only the backgrounds in use: each upload replaces one."""
        name = f"background_{next(self._uploads)}"

        def switch() -> PersonState | None:
            path = save_image(data, self.folder, name)
            state = None
            if track is None:
                self._replace_background(path)
            else:
                effects = self.processor.compositor.effects
                spec = effects.get(track).model_copy(update={"background": path})
                effects.set(track, spec)
                state = PersonState.of(spec)
            self._forget_unused()
            return state

        return await self._run(switch)

    def _forget_unused(self) -> None:
        """Delete the uploads no effect shows any more (they were read when set: the compositor keeps them)."""
        compositor = self.processor.compositor
        used = {compositor.cfg.background.path, *compositor.effects.backgrounds()}
        for path in self.folder.iterdir():
            if path not in used:
                path.unlink(missing_ok=True)

    async def close(self) -> None:
        """Stop the tasks, let the frame in progress finish, free the processor and delete the folder."""
        if self._closed:
            return
        self._closed = True
        self._inbox.close()
        self._outbox.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._run(self.processor.close)
        self._worker.shutdown(wait=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- frames --------------------------------------------------------------------------------

    async def _read(self, track: MediaStreamTrack) -> None:
        """Take every frame as it arrives, so the newest one waits for the worker and stale ones are dropped."""
        try:
            while True:
                frame = await track.recv()
                self._inbox.put(Arrival(frame, float(frame.pts * frame.time_base), time.monotonic_ns()))
        except MediaStreamError:
            self._inbox.close()

    async def _pump(self) -> None:
        try:
            while True:
                arrival = await self._inbox.get()
                out = await self._run(self._process, arrival)
                if out is not None:
                    self._outbox.put(out)
        except LatestClosed:
            pass
        except Exception as exc:  # the page hears why its video stopped
            log.exception("peer %s: processing stopped", self.id[:8])
            self._send(Failure(message=f"processing stopped: {exc}"))
        finally:
            self._outbox.close()

    def _process(self, arrival: Arrival) -> Output | None:
        """On the worker thread: camera frame -> processed frame."""
        frame = Frame(arrival.frame.to_ndarray(format="bgr24"), self._frames, arrival.arrived_ns, arrival.seconds)
        self._frames += 1
        processed = self.processor.process(frame)
        if processed is None:
            return None
        return Output(processed.image, processed.frame.pts, processed.frame.capture_ns, processed.people)

    def _on_sent(self, out: Output) -> None:
        self._sent_ms.append((time.monotonic_ns() - out.arrived_ns) / 1e6)
        self._last_sent = out

    # --- the page's requests ---------------------------------------------------------------------

    async def _reply(self, text: str | bytes) -> None:
        try:
            request = parse_request(text)
            if isinstance(request, Select):
                reply = await self._run(self._select, request)
            elif isinstance(request, ChangeEffect):
                reply = await self._run(self._change, request)
            else:
                reply = await self._capture_plate()
        except MessageError as exc:
            reply = Failure(message=str(exc))
        self._send(reply)

    def _select(self, request: Select) -> Selected:
        track = self.processor.compositor.select(request.x, request.y)
        state = PersonState.of(self.processor.compositor.effects.get(track)) if track is not None else None
        return Selected(track=track, state=state)

    def _change(self, request: ChangeEffect) -> EffectSet:
        effects = self.processor.compositor.effects
        current: PersonEffectConfig = effects.default if request.track is None else effects.get(request.track)
        spec = request.apply_to(current)
        if request.track is None:
            effects.default = spec
        else:
            effects.set(request.track, spec)
        return EffectSet(track=request.track, state=PersonState.of(spec))

    async def _capture_plate(self) -> PlateCapturing:
        frames = self.engine.plate_frames
        if frames is None:
            raise MessageError("this engine needs no empty scene: only the keying engine's difference key "
                               "(engine.keying.mode=difference) keys against one")
        await self._run(self.engine.capture_plate)
        return PlateCapturing(frames=frames)

    def _replace_background(self, path: Path) -> None:
        """A new compositor with an image background; the effect assignments carry over."""
        effects = self.processor.compositor.cfg
        self.processor.set_effects(effects.model_copy(update={"background": BackgroundConfig(kind="image", path=path)}))

    # --- stats -----------------------------------------------------------------------------------

    async def _report(self) -> None:
        since = time.monotonic()
        while True:
            await asyncio.sleep(self._interval)
            stages = await self._run(self._take_stage_ms)
            now = time.monotonic()
            sent_ms, self._sent_ms = self._sent_ms, []
            last = self._last_sent
            height, width = last.image.shape[:2] if last is not None else (0, 0)
            self._send(Stats(fps=len(sent_ms) / (now - since), frames=self._frames,
                             dropped=self._inbox.dropped + self._outbox.dropped,
                             people=last.people if last is not None else 0, width=width, height=height,
                             stages_ms=stages, server_ms=float(np.median(sent_ms)) if sent_ms else None))
            since = now

    def _take_stage_ms(self) -> dict[str, float]:
        """Median per stage since the last call (and the samples dropped, so a long session stays small)."""
        taken = {stage: round(ms, 2) for stage, ms in self.processor.stage_ms().items()}
        for samples in self.processor.times.values():
            samples.clear()
        return taken

    # --- plumbing --------------------------------------------------------------------------------

    def _start(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, work, *args)

    def _send(self, message: BaseModel) -> None:
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(message.model_dump_json())
