"""Frame sinks: video file, PNG sequence, virtual camera, preview window, null.

Sinks take host images (uint8 BGR H x W x 3, or BGRA H x W x 4 when the background is transparent)
and open lazily on the first frame, when the output size is known.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from fractions import Fraction

import av
import cv2
import numpy as np

from livematte.config import (
    FileSinkConfig,
    NullSinkConfig,
    PngSinkConfig,
    PreviewSinkConfig,
    SinkConfig,
    VirtualCameraSinkConfig,
)

log = logging.getLogger(__name__)


class SinkError(RuntimeError):
    """A sink that cannot take frames; the message says what is missing and how to fix it."""


class Sink(ABC):
    def __init__(self, fps: float):
        self.fps = fps
        self.frames = 0
        self.wants_stop = False  # set by interactive sinks (preview: q or Esc)
        self._size: tuple[int, int] | None = None
        self._refitting = False  # pictures of another size came (said once)

    def write(self, image: np.ndarray, *, at_ns: int | None = None) -> None:
        """at_ns: when the picture was live (time.monotonic_ns() of its capture, or of a card while the
        source is down), for sinks that keep time; None: pictures follow each other at the sink's rate."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise SinkError(f"sinks take uint8 BGR or BGRA images (H, W, 3|4), got {image.dtype} {image.shape}")
        size = image.shape[1], image.shape[0]
        if self._size is None:
            self._size = size
            self._open(*size)
        elif size != self._size:
            image = self._fitted(image)
        self._write(image, at_ns)
        self.frames += 1

    def _fitted(self, image: np.ndarray) -> np.ndarray:
        """A picture of another size than the output was opened at (a card shown before the first frame, a
        camera back at another resolution), scaled to fit it with black bars: an output keeps one size."""
        width, height = self._size
        if not self._refitting:
            log.warning("%s: pictures are %dx%d, the output was opened at %dx%d: they are fitted to it",
                        type(self).__name__, image.shape[1], image.shape[0], width, height)
            self._refitting = True
        scale = min(width / image.shape[1], height / image.shape[0])
        inner = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
        out = np.zeros((height, width, image.shape[2]), np.uint8)
        top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
        out[top:top + inner[1], left:left + inner[0]] = cv2.resize(image, inner, interpolation=cv2.INTER_AREA)
        return out

    @abstractmethod
    def _open(self, width: int, height: int) -> None: ...

    @abstractmethod
    def _write(self, image: np.ndarray, at_ns: int | None) -> None: ...

    def close(self) -> None:
        """Flush and release; safe to call twice."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _even(image: np.ndarray) -> np.ndarray:
    """Pad odd widths/heights by one replicated pixel: 4:2:0 video needs even sizes."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if not (pad_h or pad_w):
        return image
    return cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)


TIME_BASE = Fraction(1, 1000)  # of a video file's timestamps: live pictures keep their capture time to the ms
# MP4/MOV as fragments (one per keyframe) behind an empty header, rather than one index written at the
# end: a recording cut short by SIGKILL or a full disk (cut back to its last whole fragment) then plays.
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


class FileSink(Sink):
    """H.264 (yuv420p) in an mp4/mkv/mov container; a transparent output is flattened onto black. Every
    packet goes to the file at once and a keyframe starts every cfg.keyframe_s seconds, so that a crash
    loses at most that much plus the encoder's look-ahead."""

    def __init__(self, cfg: FileSinkConfig, fps: float):
        super().__init__(fps)
        self.path = cfg.path
        self.cfg = cfg
        self._container = None
        self._stream = None
        self._kept_s = 0.0  # where the last keyframe that reached the file starts: what a cut-off file plays
        self._kept_bytes = 0  # the file's size then: header and whole fragments
        self._first_ns: int | None = None  # capture time of the first live picture: the file's zero
        self._pts = -1

    def _open(self, width: int, height: int) -> None:
        self._fragmented = self.path.suffix.lower() in (".mp4", ".mov")
        options = {"flush_packets": "1", **(FRAGMENTED if self._fragmented else {})}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.path), mode="w", options=options)
        except (OSError, ValueError, av.error.FFmpegError) as exc:
            raise SinkError(f"cannot write video file {self.path}: {exc}; "
                            "use a writable .mp4, .mkv or .mov path") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.gop_size = max(1, round(self.fps * self.cfg.keyframe_s))
        self._stream.codec_context.time_base = TIME_BASE
        self._stream.options = {"crf": str(self.cfg.crf), "preset": self.cfg.preset}
        if width % 2 or height % 2:
            log.info("%s: padding %dx%d to an even size for H.264", self.path, width, height)

    def _write(self, image: np.ndarray, at_ns: int | None) -> None:
        if image.shape[2] == 4:
            image = np.ascontiguousarray((image[..., :3].astype(np.uint16) * image[..., 3:] // 255).astype(np.uint8))
        frame = av.VideoFrame.from_ndarray(_even(image), format="bgr24")
        frame.pts = self._pts = max(self._pts + 1, self._timestamp(at_ns))
        frame.time_base = TIME_BASE
        self._mux(self._stream.encode(frame))

    def _timestamp(self, at_ns: int | None) -> int:
        """In TIME_BASE: a live picture's time since the first one (so a recording lasts as long as it was
        live, outages included, whatever rate the source claimed), else the next slot at the sink's rate."""
        if at_ns is None:
            return round(self.frames / self.fps / TIME_BASE)
        if self._first_ns is None:
            self._first_ns = at_ns
        return (at_ns - self._first_ns) * TIME_BASE.denominator // 1_000_000_000

    def _mux(self, packets: list[av.Packet]) -> None:
        """Into the file; a full disk (or a file-size limit) stops the recording with what it kept."""
        try:
            for packet in packets:
                self._container.mux(packet)
                if packet.is_keyframe and packet.pts is not None:  # the fragment before it is in the file
                    self._kept_s = float(packet.pts * packet.time_base)
                    self._kept_bytes = self.path.stat().st_size
        except OSError as exc:
            raise self._full(exc) from None

    def _full(self, exc: OSError) -> SinkError:
        """Let go of a file that takes no more data, cut back to its last whole fragment (players refuse
        one that ends inside a fragment's header), and say what it keeps."""
        container, self._container = self._container, None
        try:
            container.close()
        except OSError:
            pass
        if self._fragmented:
            os.truncate(self.path, self._kept_bytes)
        recorded = float(max(self._pts, 0) * TIME_BASE)
        return SinkError(f"cannot write {self.path}: {exc.strerror or exc}; it keeps the first {self._kept_s:.1f} s "
                         f"of {recorded:.1f} s recorded. Free some space or choose another sinks path")

    def close(self) -> None:
        if self._container is not None:
            self._mux(self._stream.encode(None))
            try:
                self._container.close()
            except OSError as exc:
                raise self._full(exc) from None
            self._container = None


class PngSink(Sink):
    """frame_000000.png, ...; BGRA outputs keep their alpha channel."""

    def __init__(self, cfg: PngSinkConfig, fps: float):
        super().__init__(fps)
        self.path = cfg.path

    def _open(self, width: int, height: int) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot make the PNG folder {self.path}: {exc.strerror or exc}; "
                            "choose a folder you can write (sinks: path)") from None

    def _write(self, image: np.ndarray, at_ns: int | None) -> None:
        target = self.path / f"frame_{self.frames:06d}.png"
        if not cv2.imwrite(str(target), image):
            raise SinkError(f"could not write {target}; check the folder is writable and the disk has space")


class VirtualCameraSink(Sink):
    """A virtual webcam other programs (browsers, Zoom, OBS) can pick, paced at its frame rate."""

    def __init__(self, cfg: VirtualCameraSinkConfig, fps: float):
        super().__init__(cfg.fps or fps)
        self.cfg = cfg
        self._camera = None

    def _open(self, width: int, height: int) -> None:
        import pyvirtualcam

        fmt = pyvirtualcam.PixelFormat.I420 if self.cfg.pixel_format == "i420" else pyvirtualcam.PixelFormat.RGB
        try:
            self._camera = pyvirtualcam.Camera(width + width % 2, height + height % 2, self.fps, fmt=fmt,
                                               device=self.cfg.device, backend=self.cfg.backend)
        except RuntimeError as exc:
            raise SinkError(
                f"no virtual camera available ({exc}). Linux: install v4l2loopback and load it with "
                "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livematte`; "
                "Windows/macOS: install OBS Studio and start its Virtual Camera once. See the README."
            ) from None
        log.info("virtual camera %s (%s, %dx%d @ %.3g fps)", self._camera.device, self.cfg.pixel_format, width, height,
                 self.fps)

    def _write(self, image: np.ndarray, at_ns: int | None) -> None:
        image = _even(image[..., :3])
        if self.cfg.pixel_format == "i420":
            self._camera.send(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420))
        else:
            self._camera.send(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        self._camera.sleep_until_next_frame()

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None


class PreviewSink(Sink):
    """An OpenCV window; where OpenCV has no GUI or there is no display it logs once and does nothing."""

    def __init__(self, cfg: PreviewSinkConfig, fps: float):
        super().__init__(fps)
        self.title = cfg.title
        self.available = False

    def _open(self, width: int, height: int) -> None:
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self.available = True
        except cv2.error:
            log.warning("preview window unavailable (no display, or a headless OpenCV build); continuing without it")

    def _write(self, image: np.ndarray, at_ns: int | None) -> None:
        if not self.available:
            return
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.wants_stop = True

    def close(self) -> None:
        if self.available:
            cv2.destroyWindow(self.title)
            self.available = False


class NullSink(Sink):
    def __init__(self, cfg: NullSinkConfig, fps: float):
        super().__init__(fps)

    def _open(self, width: int, height: int) -> None:
        pass

    def _write(self, image: np.ndarray, at_ns: int | None) -> None:
        pass


def open_sink(cfg: SinkConfig, fps: float) -> Sink:
    """The sink a config describes; `fps` is the source's rate (used where the config sets none)."""
    kinds = {"file": FileSink, "png": PngSink, "vcam": VirtualCameraSink, "preview": PreviewSink, "null": NullSink}
    return kinds[cfg.kind](cfg, fps)


def playable_frames(path) -> int:
    """The frames a player shows of a video file: up to its first damaged packet (a file cut off mid-write,
    by SIGKILL or a full disk, may end in one)."""
    shown = 0
    with av.open(str(path)) as container:
        try:
            for packet in container.demux(video=0):
                shown += len(packet.decode())
        except av.error.InvalidDataError:
            shown += len(container.streams.video[0].codec_context.decode(None))  # the frames still in the decoder
    return shown
