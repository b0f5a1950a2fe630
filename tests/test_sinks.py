from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livematte.config import FileSinkConfig, PngSinkConfig, PreviewSinkConfig, VirtualCameraSinkConfig
from livematte.sinks import SinkError, open_sink


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_file_sink_writes_h264_with_every_frame(tmp_path):
    path = tmp_path / "out" / "video.mp4"
    with open_sink(FileSinkConfig(path=path), fps=25) as sink:
        for level in range(0, 250, 10):
            sink.write(np.full((72, 128, 3), level, np.uint8))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 25
    frames = decode(path)
    assert len(frames) == 25
    assert [int(f.mean()) for f in frames[::6]] == pytest.approx([0, 60, 120, 180, 240], abs=3)


@pytest.mark.parametrize("name", ["live.mp4", "live.mkv"])
def test_live_pictures_keep_their_capture_time_outages_included(tmp_path, name):
    """A 25 fps camera recorded by a sink opened at 30 fps, with a 3 s outage: the file lasts as long as
    it was live, not frames / 30."""
    path = tmp_path / name
    start = 7_000_000_000
    captured = [start + i * 40_000_000 for i in range(50)] + [start + 5_000_000_000 + i * 40_000_000 for i in range(50)]
    with open_sink(FileSinkConfig(path=path), fps=30) as sink:
        for i, at_ns in enumerate(captured):
            sink.write(np.full((72, 128, 3), 2 * i, np.uint8), at_ns=at_ns)
    with av.open(str(path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == 100  # the first picture may start late by the encoder's reordering delay (MP4)
    assert [t - times[0] for t in times] == pytest.approx([(at - start) / 1e9 for at in captured], abs=0.002)


def test_file_sink_pads_odd_sizes_and_flattens_alpha(tmp_path):
    path = tmp_path / "odd.mp4"
    image = np.zeros((33, 51, 4), np.uint8)
    image[..., 2] = 200  # red
    image[:, :25, 3] = 255  # left half opaque, right half transparent
    with open_sink(FileSinkConfig(path=path), fps=30) as sink:
        sink.write(image)
    (frame,) = decode(path)
    assert frame.shape == (34, 52, 3)
    assert frame[10, 5, 2] > 150 and frame[10, 45, 2] < 40


def test_file_sink_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot write video file"):
        open_sink(FileSinkConfig(path=blocker / "out.mp4"), fps=30).write(np.zeros((8, 8, 3), np.uint8))


def test_png_sink_keeps_alpha(tmp_path):
    image = np.zeros((20, 30, 4), np.uint8)
    image[..., 1], image[5:15, 10:20, 3] = 180, 255
    with open_sink(PngSinkConfig(path=tmp_path / "frames"), fps=30) as sink:
        sink.write(image)
        sink.write(image)
    files = sorted((tmp_path / "frames").glob("*.png"))
    assert [f.name for f in files] == ["frame_000000.png", "frame_000001.png"]
    back = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(back, image)


def test_sinks_fit_pictures_of_another_size_and_reject_bad_arrays(tmp_path):
    """An output keeps the size it was opened at (a waiting card before a camera's first frame, a camera
    back at another resolution): other pictures are fitted with black bars."""
    sink = open_sink(PngSinkConfig(path=tmp_path / "frames"), fps=30)
    sink.write(np.zeros((10, 20, 3), np.uint8))
    sink.write(np.full((40, 40, 3), 200, np.uint8))  # square: bars left and right
    with pytest.raises(SinkError, match="uint8 BGR or BGRA"):
        sink.write(np.zeros((10, 10), np.float32))
    assert sink.frames == 2
    fitted = cv2.imread(str(sorted((tmp_path / "frames").glob("*.png"))[1]))
    assert fitted.shape == (10, 20, 3)
    assert (fitted[:, 5:15] == 200).all() and (fitted[:, :5] == 0).all() and (fitted[:, 15:] == 0).all()


def test_virtual_camera_without_backend_names_v4l2loopback():
    sink = open_sink(VirtualCameraSinkConfig(), fps=30)
    with pytest.raises(SinkError, match="v4l2loopback.*exclusive_caps=1"):
        sink.write(np.zeros((48, 64, 3), np.uint8))


class FakeCamera:
    """Stands in for pyvirtualcam.Camera: a v4l2loopback device cannot exist on this machine."""

    instances: list["FakeCamera"] = []

    def __init__(self, width, height, fps, *, fmt, device=None, backend=None):
        self.width, self.height, self.fps, self.fmt, self.device = width, height, fps, fmt, device or "/dev/video9"
        self.sent, self.sleeps, self.closed = [], 0, False
        FakeCamera.instances.append(self)

    def send(self, frame):
        self.sent.append(frame.copy())

    def sleep_until_next_frame(self):
        self.sleeps += 1

    def close(self):
        self.closed = True


@pytest.mark.parametrize("pixel_format", ["i420", "rgb"])
def test_virtual_camera_sends_even_frames_and_paces(monkeypatch, pixel_format):
    import pyvirtualcam

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    image = np.zeros((31, 41, 3), np.uint8)
    image[..., 0] = 255  # blue
    with open_sink(VirtualCameraSinkConfig(pixel_format=pixel_format), fps=24) as sink:
        sink.write(image)
        sink.write(image)
    camera = FakeCamera.instances[-1]
    assert (camera.width, camera.height, camera.fps) == (42, 32, 24)
    assert camera.sleeps == 2 and camera.closed
    if pixel_format == "i420":
        assert camera.sent[0].shape == (48, 42)
        back = cv2.cvtColor(camera.sent[0], cv2.COLOR_YUV2BGR_I420)
    else:
        assert camera.sent[0].shape == (32, 42, 3)
        back = camera.sent[0][..., ::-1]
    assert back[10, 10, 0] > 200 and back[10, 10, 2] < 60


def test_preview_is_headless_safe(caplog):
    with open_sink(PreviewSinkConfig(), fps=30) as sink:
        sink.write(np.zeros((10, 10, 3), np.uint8))
    assert sink.frames == 1 and not sink.wants_stop
    assert not sink.available and "preview window unavailable" in caplog.text
