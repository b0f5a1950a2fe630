"""Frame sources: synthetic scene, webcam, video file, RTSP stream, image folder.

Each source decodes in its own thread and hands the consumer only the newest frame through a
one-slot mailbox, so a slow pipeline drops (and counts) old frames instead of falling behind.
Offline sources (a file processed as fast as possible) hand over losslessly instead: the reader
waits for the slot, and nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from itertools import count
from pathlib import Path
from typing import Callable, Iterator

import av
import cv2
import numpy as np

from livematte.config import (
    FileSourceConfig,
    ImageFolderSourceConfig,
    RtspSourceConfig,
    SourceConfig,
    SyntheticSourceConfig,
    WebcamSourceConfig,
)
from livematte.frame import Frame, as_bgr
from livematte.mailbox import Mailbox, MailboxClosed
from livematte.synthetic import SyntheticScene

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class SourceError(RuntimeError):
    """A source that cannot deliver frames; the message names the source and what to do."""


class SourceEnded(Exception):
    """The source has no more frames (end of file, synthetic clip done)."""


class ConnectionLost(Exception):
    """A live device or stream stopped delivering; the source reconnects."""


@dataclass(frozen=True)
class SourceInfo:
    name: str
    fps: float
    live: bool  # frames arrive in real time (newest wins) rather than as fast as they are taken
    stall_s: float | None = None  # a live source silent this long has stalled (its read timeout); None: not judged


class Source(ABC):
    """A reader thread feeding a one-slot mailbox. Use as a context manager and iterate, or call get()."""

    def __init__(self, info: SourceInfo, lossless: bool):
        self.info = info
        self.reconnects = 0
        self.status = "starting"  # running | reconnecting | ended
        self._mailbox: Mailbox[Frame] = Mailbox(lossless=lossless)
        self._stop = threading.Event()
        self._index = count()
        self._started_ns = 0
        self._thread = threading.Thread(target=self._run, name=f"source:{info.name}", daemon=True)

    @abstractmethod
    def _produce(self) -> Iterator[Frame]:
        """Yield frames until the source ends; runs in the reader thread."""

    @property
    def dropped(self) -> int:
        """Frames replaced in the mailbox before the consumer took them."""
        return self._mailbox.dropped

    def start(self) -> "Source":
        self._started_ns = time.monotonic_ns()
        self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, or None if none arrived within `timeout` seconds (e.g. while reconnecting)."""
        try:
            return self._mailbox.get(timeout)
        except MailboxClosed as closed:
            if closed.__cause__ is not None:
                raise SourceError(f"{self.info.name}: {closed.__cause__}") from closed.__cause__
            raise SourceEnded() from None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                frame = self.get()
            except SourceEnded:
                return
            if frame is not None:
                yield frame

    def close(self) -> None:
        self._stop.set()
        self._mailbox.discard()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> "Source":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- helpers for the reader thread ---

    def _run(self) -> None:
        try:
            for frame in self._produce():
                if self.status == "starting":
                    self.status = "running"
                if self._stop.is_set() or not self._mailbox.put(frame):
                    break
        except Exception as exc:  # handed to the consumer, which raises it as a SourceError
            self.status = "ended"
            self._mailbox.close(exc)
            return
        self.status = "ended"
        self._mailbox.close()

    def _frame(self, pixels: np.ndarray, pts: float | None, alphas: np.ndarray | None = None) -> Frame:
        return Frame(np.ascontiguousarray(pixels), next(self._index), time.monotonic_ns(), pts, alphas)

    def _pace(self, seconds_since_start: float) -> None:
        """Sleep until `seconds_since_start` after start() (real-time playback); stop() interrupts it."""
        delay = self._started_ns / 1e9 + seconds_since_start - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def _reconnecting(self, connect: Callable[[], Iterator[Frame]], min_s: float, max_s: float) -> Iterator[Frame]:
        """Run `connect()` forever: when it fails or ends, log it and retry with exponential backoff."""
        delay = min_s
        while not self._stop.is_set():
            try:
                for frame in connect():
                    self.status, delay = "running", min_s
                    yield frame
                reason = "stream ended"
            except (ConnectionLost, av.error.FFmpegError, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            self.status = "reconnecting"
            self.reconnects += 1
            log.warning("%s: %s; reconnecting in %.2g s", self.info.name, reason, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, max_s)


class SyntheticSource(Source):
    def __init__(self, cfg: SyntheticSourceConfig):
        super().__init__(SourceInfo(f"synthetic {cfg.width}x{cfg.height}", cfg.fps, cfg.realtime),
                         lossless=not cfg.realtime)
        self.cfg = cfg
        self.scene = SyntheticScene(cfg.width, cfg.height, cfg.people, cfg.seed, cfg.fps, cfg.motion)

    def _produce(self) -> Iterator[Frame]:
        indices = range(self.cfg.frames) if self.cfg.frames is not None else count()
        for i in indices:
            if self.cfg.realtime:
                self._pace(i / self.cfg.fps)
            pixels, alphas = self.scene.render(i)
            yield self._frame(pixels, i / self.cfg.fps, alphas)


class WebcamSource(Source):
    def __init__(self, cfg: WebcamSourceConfig):
        super().__init__(SourceInfo(f"camera {cfg.device}", cfg.fps, live=True), lossless=False)
        self.cfg = cfg
        self._capture: cv2.VideoCapture | None = self._open()  # fail early on a wrong device

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.cfg.device)
        if not capture.isOpened():
            raise SourceError(
                f"cannot open camera {self.cfg.device!r}: no such device, or another program is using it. "
                "List cameras with `v4l2-ctl --list-devices` (Linux) and pick one with "
                "--set source.device=INDEX_OR_PATH"
            )
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # never serve a stale frame from the driver's queue
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
        capture.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        return capture

    def _connect(self) -> Iterator[Frame]:
        capture = self._capture or self._open_again()
        self._capture = None
        try:
            while not self._stop.is_set():
                ok, image = capture.read()
                if not ok:
                    raise ConnectionLost("camera stopped delivering frames (unplugged or taken by another program)")
                yield self._frame(as_bgr(image), None)
        finally:
            capture.release()

    def _open_again(self) -> cv2.VideoCapture:
        try:
            return self._open()
        except SourceError as exc:
            raise ConnectionLost(str(exc)) from None

    def _produce(self) -> Iterator[Frame]:
        return self._reconnecting(self._connect, 0.25, self.cfg.reconnect_max_s)

    def close(self) -> None:
        super().close()
        if self._capture is not None:
            self._capture.release()


def _open_video(url: str, what: str, *, paced: bool) -> av.container.InputContainer:
    """The container, decoding with frame threads for throughput, or when `paced` (frames used as they
    come, like a camera's) with slice threads: frame threads add frames of latency and, at 1080p, 0.6 ms
    of CPU a frame here."""
    try:
        container = av.open(url)
    except av.error.FileNotFoundError:
        raise SourceError(f"{what} not found: {url}; check the path") from None
    except av.error.IsADirectoryError:
        raise SourceError(f"{what} {url} is a folder; a folder of pictures is source kind images") from None
    except av.error.InvalidDataError:
        raise SourceError(f"{what} {url} is not a video PyAV can decode; "
                          "check the file or convert it with ffmpeg") from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{what} {url} has no video stream")
    container.streams.video[0].thread_type = "SLICE" if paced else "AUTO"
    return container


def _decode(container: av.container.InputContainer) -> Iterator[tuple[np.ndarray, float | None]]:
    for frame in container.decode(container.streams.video[0]):
        yield _bgr(frame), frame.time


def _bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame's BGR pixels. 4:2:0 video of even size (what encoders and cameras send) is converted
    by OpenCV: half the CPU of FFmpeg's swscale here (1.9 against 3.9 ms a 1080p frame), within 3 grey
    levels of it but at sharp colour edges (chroma upsampled otherwise); any other format by swscale."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="bgr24")


class FileSource(Source):
    def __init__(self, cfg: FileSourceConfig):
        self.cfg = cfg
        self._container = _open_video(str(cfg.path), "video file", paced=cfg.realtime)
        stream = self._container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        super().__init__(SourceInfo(f"file {cfg.path.name}", fps, cfg.realtime), lossless=not cfg.realtime)

    def _produce(self) -> Iterator[Frame]:
        offset, last = 0.0, 0.0
        try:
            while True:
                decoded = 0
                for pixels, pts in _decode(self._container):
                    last = (pts if pts is not None else decoded / self.info.fps) + offset
                    if self.cfg.realtime:
                        self._pace(last)
                    decoded += 1
                    yield self._frame(pixels, last)
                if not self.cfg.loop or decoded == 0:
                    return
                offset = last + 1.0 / self.info.fps
                self._container.seek(0)
        except av.error.FFmpegError as exc:
            raise SourceError(f"decoding {self.cfg.path} failed: {exc}") from exc
        finally:
            self._container.close()


class RtspSource(Source):
    def __init__(self, cfg: RtspSourceConfig):
        super().__init__(SourceInfo(f"rtsp {cfg.url}", 30.0, live=True, stall_s=cfg.timeout_s), lossless=False)
        self.cfg = cfg

    def _connect(self) -> Iterator[Frame]:
        options = {"rtsp_transport": self.cfg.transport, "fflags": "nobuffer", "flags": "low_delay",
                   "max_delay": "100000"}
        if self.cfg.listen:
            # wait this long for a publisher, then log and listen again (the default, -1, fails with ERANGE)
            options.update(rtsp_flags="listen", listen_timeout=str(max(1, round(self.cfg.timeout_s))))
        with av.open(self.cfg.url, options=options, timeout=self.cfg.timeout_s) as container:
            if not container.streams.video:
                raise ConnectionLost("the stream has no video track")
            container.streams.video[0].thread_type = "SLICE"  # frame threads would add frames of latency
            rate = container.streams.video[0].average_rate
            if rate:
                self.info = replace(self.info, fps=float(rate))
            log.info("%s: connected", self.info.name)
            for pixels, pts in _decode(container):
                if self._stop.is_set():
                    return
                yield self._frame(pixels, pts)

    def _produce(self) -> Iterator[Frame]:
        return self._reconnecting(self._connect, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)


class ImageFolderSource(Source):
    def __init__(self, cfg: ImageFolderSourceConfig):
        if not cfg.path.is_dir():
            raise SourceError(f"image folder not found: {cfg.path}; pass a folder of images")
        self.paths = sorted(p for p in cfg.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"no images in {cfg.path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        super().__init__(SourceInfo(f"images {cfg.path.name}", cfg.fps, cfg.realtime), lossless=not cfg.realtime)
        self.cfg = cfg
        self.skipped: list[Path] = []

    def _produce(self) -> Iterator[Frame]:
        size: tuple[int, int] | None = None
        step = count()
        while True:
            for path in self.paths:
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if image is None:
                    if path not in self.skipped:
                        log.warning("skipping %s: not an image OpenCV can read", path)
                        self.skipped.append(path)
                    continue
                pixels = as_bgr(image)
                if size is None:
                    size = pixels.shape[1], pixels.shape[0]
                elif (pixels.shape[1], pixels.shape[0]) != size:
                    log.warning("resizing %s from %dx%d to the stream size %dx%d", path.name, pixels.shape[1],
                                pixels.shape[0], *size)
                    pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
                t = next(step) / self.cfg.fps
                if self.cfg.realtime:
                    self._pace(t)
                yield self._frame(pixels, t)
            if not self.cfg.loop or size is None:
                return


def open_source(cfg: SourceConfig) -> Source:
    """The source a config describes (not started: use it as a context manager)."""
    kinds = {
        "synthetic": SyntheticSource,
        "webcam": WebcamSource,
        "file": FileSource,
        "rtsp": RtspSource,
        "images": ImageFolderSource,
    }
    return kinds[cfg.kind](cfg)
