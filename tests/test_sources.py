import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livematte.config import (
    FileSourceConfig,
    ImageFolderSourceConfig,
    RtspSourceConfig,
    SyntheticSourceConfig,
    WebcamSourceConfig,
)
from livematte.sources import RtspSource, SourceEnded, SourceError, open_source
from tests.media import ffmpeg, free_port, make_clip

HELPERS = Path(__file__).parent / "helpers"


def wait_for(condition, seconds=20.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_frames(source, n, timeout=15.0):
    frames = []
    deadline = time.monotonic() + timeout
    while len(frames) < n and time.monotonic() < deadline:
        frame = source.get(timeout=0.5)
        if frame is not None:
            frames.append(frame)
    assert len(frames) == n, f"got {len(frames)} of {n} frames"
    return frames


# --- synthetic -----------------------------------------------------------------------------------


def test_synthetic_offline_delivers_every_frame_with_ground_truth():
    cfg = SyntheticSourceConfig(width=160, height=90, people=3, frames=12, fps=24)
    with open_source(cfg) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(12))
    assert all(f.pixels.shape == (90, 160, 3) and f.alphas.shape == (3, 90, 160) for f in frames)
    assert [f.pts for f in frames] == pytest.approx([i / 24 for i in range(12)])
    assert all(b.capture_ns >= a.capture_ns for a, b in zip(frames, frames[1:]))
    assert source.dropped == 0


def test_live_source_hands_over_only_the_newest_frame():
    cfg = SyntheticSourceConfig(width=64, height=48, people=1, frames=None, fps=200, realtime=True)
    with open_source(cfg) as source:
        frames = []
        for _ in range(5):
            time.sleep(0.05)  # a consumer far slower than the source
            frames.append(source.get(timeout=5))
    gaps = np.diff([f.index for f in frames])
    assert (gaps > 1).all(), "the slow consumer skipped stale frames"
    assert source.dropped > 0


def test_end_of_source_raises_source_ended():
    with open_source(SyntheticSourceConfig(width=32, height=32, frames=2)) as source:
        source.get(timeout=5)
        source.get(timeout=5)
        with pytest.raises(SourceEnded):
            source.get(timeout=5)


# --- file ----------------------------------------------------------------------------------------


def test_file_source_decodes_every_frame(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=30)
    with open_source(FileSourceConfig(path=clip)) as source:
        frames = list(source)
    assert source.info.fps == pytest.approx(25)
    assert len(frames) == 30 and frames[0].pixels.shape == (120, 160, 3)
    assert frames[-1].pts == pytest.approx(29 / 25)


def test_file_source_colours_are_ffmpegs(tmp_path):
    """H.264 in 4:2:0 is converted by OpenCV, not FFmpeg's swscale: the same colours within 3 grey levels
    but at a few sharp colour edges (chroma is upsampled otherwise); a channel swap or a wrong plane order
    would be off by up to 255."""
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    with open_source(FileSourceConfig(path=clip)) as source:
        frames = [f.pixels for f in source]
    with av.open(str(clip)) as container:
        expected = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    difference = np.abs(np.stack(frames).astype(np.int16) - np.stack(expected))
    assert difference.max() <= 10 and np.mean(difference > 3) < 0.001 and difference.mean() < 1


def test_file_source_loops_with_increasing_timestamps(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=10)
    with open_source(FileSourceConfig(path=clip, loop=True)) as source:
        frames = [source.get(timeout=5) for _ in range(25)]
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert np.array_equal(frames[0].pixels, frames[10].pixels) and np.array_equal(frames[3].pixels, frames[23].pixels)


def test_file_source_realtime_is_live(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=10)
    source = open_source(FileSourceConfig(path=clip, realtime=True))
    assert source.info.live
    with source:
        assert len(list(source)) >= 1


def test_file_with_odd_width(tmp_path):
    clip = make_clip(tmp_path / "odd.mkv", frames=5, size="161x99", codec="ffv1")
    with open_source(FileSourceConfig(path=clip)) as source:
        frames = list(source)
    assert len(frames) == 5 and frames[0].pixels.shape == (99, 161, 3)
    assert frames[0].pixels.flags.c_contiguous


def test_file_that_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match="is not a video PyAV can decode"):
        open_source(FileSourceConfig(path=path))


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(FileSourceConfig(path=tmp_path / "gone.mp4"))


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    subprocess.run([ffmpeg(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=0.2", str(path)], check=True)
    with pytest.raises(SourceError, match="has no video stream"):
        open_source(FileSourceConfig(path=path))


# --- image folder --------------------------------------------------------------------------------


def test_image_folder_handles_grey_rgba_16bit_odd_sizes_and_junk(tmp_path, caplog):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a_colour.png"), rng.integers(0, 255, (45, 61, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b_grey.png"), np.full((45, 61), 77, np.uint8))
    bgra = np.zeros((45, 61, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 200, 128
    cv2.imwrite(str(tmp_path / "c_rgba.png"), bgra)
    cv2.imwrite(str(tmp_path / "d_16bit.png"), np.full((45, 61, 3), 65535, np.uint16))
    cv2.imwrite(str(tmp_path / "e_bigger.jpg"), np.full((90, 122, 3), 30, np.uint8))
    (tmp_path / "f_broken.png").write_bytes(b"\x89PNG junk")
    (tmp_path / "notes.txt").write_text("ignored")

    with open_source(ImageFolderSourceConfig(path=tmp_path, fps=10)) as source:
        frames = list(source)
    assert len(frames) == 5
    assert all(f.pixels.shape == (45, 61, 3) and f.pixels.dtype == np.uint8 for f in frames)
    assert (frames[1].pixels == 77).all()
    assert (frames[2].pixels[..., 2] == 200).all() and (frames[2].pixels[..., :2] == 0).all()
    assert (frames[3].pixels == 255).all()
    assert source.skipped == [tmp_path / "f_broken.png"]
    assert "skipping" in caplog.text and "resizing e_bigger.jpg" in caplog.text


def test_empty_image_folder(tmp_path):
    with pytest.raises(SourceError, match="no images in"):
        open_source(ImageFolderSourceConfig(path=tmp_path))


# --- webcam (OpenCV capture; no camera here, so the device is a video file OpenCV opens the same way)


def test_webcam_reads_frames_and_reopens_a_vanished_device(tmp_path):
    clip = make_clip(tmp_path / "camera.mp4", frames=8)
    with open_source(WebcamSourceConfig(device=str(clip), reconnect_max_s=0.5)) as source:
        frames = read_frames(source, 20)  # more than the device delivers before it "vanishes"
        assert frames[0].pixels.shape == (120, 160, 3)
        wait_for(lambda: source.reconnects >= 1, what="a reconnect")


def test_webcam_that_does_not_exist():
    with pytest.raises(SourceError, match="cannot open camera '/dev/video-none'"):
        open_source(WebcamSourceConfig(device="/dev/video-none"))


# --- RTSP ----------------------------------------------------------------------------------------


def gstreamer_server(port: int) -> subprocess.Popen:
    """GStreamer's RTSP server on 127.0.0.1 (Debian python3-gi + gir1.2-gst-rtsp-server-1.0)."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip("GStreamer RTSP server missing; run scripts/setup.sh --test")
    server = subprocess.Popen(["/usr/bin/python3", str(HELPERS / "rtsp_server.py"), str(port), "/x"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout.readline().strip() == "ready"
    return server


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=10)


def test_rtsp_pull_survives_the_server_going_away():
    port = free_port()
    cfg = RtspSourceConfig(url=f"rtsp://127.0.0.1:{port}/x", timeout_s=2, reconnect_min_s=0.2, reconnect_max_s=1)
    server = gstreamer_server(port)
    try:
        with open_source(cfg) as source:
            before = read_frames(source, 10)
            assert before[0].pixels.shape == (240, 320, 3)
            stop(server)
            wait_for(lambda: source.status == "reconnecting", what="the source to notice the server left")
            assert source.get(timeout=0.5) is None or source.status == "reconnecting"
            server = gstreamer_server(port)
            after = read_frames(source, 10, timeout=30)
            assert source.status == "running" and source.reconnects >= 1
            assert after[0].index > before[-1].index
    finally:
        stop(server)


def test_a_camera_down_at_start_gets_a_waiting_card_until_its_first_picture(tmp_path):
    """The outputs open at once and show why there is no picture (at the card's size, which later
    pictures are fitted to), and the real pictures follow once the camera is up."""
    from livematte.config import load_config
    from pipelines.live import CARD_SIZE, LivePipeline

    port = free_port()
    cfg = load_config(overrides=[
        "source.kind=rtsp", f"source.url=rtsp://127.0.0.1:{port}/x", "source.timeout_s=1",
        "source.reconnect_min_s=0.2", "source.reconnect_max_s=0.5", "engine.kind=keying",
        "engine.keying.mode=difference", "engine.keying.plate_frames=1", "sinks.0.kind=png",
        f"sinks.0.path={tmp_path / 'frames'}", "effects.people={}", "run.max_frames=10"])
    pipeline = LivePipeline(cfg)
    server = None
    try:
        runner = ThreadPoolExecutor(1).submit(pipeline.run, False)
        wait_for(lambda: len(list((tmp_path / "frames").glob("*.png"))) >= 10, what="cards before the camera")
        server = gstreamer_server(port)
        report = runner.result(timeout=60)
    finally:
        pipeline.stop()
        if server is not None:
            stop(server)
    written = [cv2.imread(str(p)) for p in sorted((tmp_path / "frames").glob("*.png"))]
    assert report.frames == 10 and report.cards >= 10 and len(written) == report.frames + report.cards
    assert all(w.shape == (CARD_SIZE[1], CARD_SIZE[0], 3) for w in written)
    first, last = written[0], written[-1]
    assert first.mean() < 45 and (first > 200).any(), "a dark card with white text"
    assert (last[:, :150] == 0).all() and last[:, 200:-200].mean() > 45, "the camera's 4:3 picture, fitted"


def test_what_the_outputs_say_while_a_live_source_sends_nothing(tmp_path):
    """Before the first picture: nothing for a second, then "waiting for"; while reconnecting: so; a
    stream that stops sending with its connection open: "waiting for" after source.timeout_s (not after
    PyAV's read timeout and a reconnect attempt, twice as long); files processed offline: never."""
    from pipelines.live import WAITING_AFTER_S, card_text

    camera = RtspSource(RtspSourceConfig(url="rtsp://127.0.0.1:9/x", timeout_s=4))  # not started: nothing sent
    assert card_text(camera, shown=False, silent_s=WAITING_AFTER_S - 0.1) is None
    assert card_text(camera, shown=False, silent_s=WAITING_AFTER_S) == "waiting for rtsp rtsp://127.0.0.1:9/x..."
    camera.status = "running"
    assert card_text(camera, shown=False, silent_s=30) is None  # connected; the first picture is on its way
    assert card_text(camera, shown=True, silent_s=3.9) is None
    assert card_text(camera, shown=True, silent_s=4.0) == "waiting for rtsp rtsp://127.0.0.1:9/x..."
    camera.status = "reconnecting"
    assert card_text(camera, shown=True, silent_s=0.1) == "reconnecting to rtsp rtsp://127.0.0.1:9/x..."
    clip = open_source(FileSourceConfig(path=make_clip(tmp_path / "clip.mp4", frames=2)))
    assert card_text(clip, shown=True, silent_s=60) is None and card_text(clip, shown=False, silent_s=60) is None


def publisher(clip: Path, port: int) -> subprocess.Popen:
    """ffmpeg publishing a looping clip over RTSP (TCP) to a listening livematte source."""
    return subprocess.Popen([ffmpeg(), "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip), "-c", "copy",
                             "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{port}/x"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def publish_until_connected(clip: Path, port: int, source) -> subprocess.Popen:
    """Start ffmpeg until it reaches the listening source (it gives up at once when nobody listens yet)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc = publisher(clip, port)
        time.sleep(1.0)
        if proc.poll() is None:
            return proc
    raise AssertionError("ffmpeg never reached the listening source")


def test_rtsp_listen_mode_takes_a_publisher_and_survives_it_leaving(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=50)
    port = free_port()
    cfg = RtspSourceConfig(url=f"rtsp://127.0.0.1:{port}/x", listen=True, timeout_s=2, reconnect_min_s=0.1,
                           reconnect_max_s=0.5)
    with open_source(cfg) as source:
        proc = publish_until_connected(clip, port, source)
        try:
            before = read_frames(source, 10)
            assert before[0].pixels.shape == (120, 160, 3)
            stop(proc)
            wait_for(lambda: source.status == "reconnecting", what="the source to notice the publisher left")
            proc = publish_until_connected(clip, port, source)
            after = read_frames(source, 10, timeout=30)
            assert after[0].index > before[-1].index and source.reconnects >= 1
        finally:
            stop(proc)
