import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import yaml

from livematte.sinks import playable_frames

ROOT = Path(__file__).resolve().parents[1]


def livematte(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_run_py_runs_the_default_job_and_prints_the_result_path(tmp_path):
    result = livematte("--set", "source.frames=12", "--set", "source.width=320", "--set", "source.height=180",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = Path(result.stdout.strip().splitlines()[-1])
    assert printed == tmp_path / "out" / "livematte.mp4"
    with av.open(str(printed)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == (320, 180)
    assert "12 frames" in result.stderr


def test_max_frames_stops_an_endless_source(tmp_path):
    result = livematte("--set", "source.frames=null", "--set", "run.max_frames=5", "--set", "source.width=64",
                       "--set", "source.height=64", "--set", "sinks.0.kind=png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out" / "frames").glob("*.png"))) == 5


def live_recording(tmp_path: Path, name: str = "livematte.mp4") -> tuple[subprocess.Popen, Path]:
    """`run.py` recording the synthetic scene live (30 fps, 160x96) to out/NAME, once its file exists."""
    recording = tmp_path / "out" / name
    run = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--set", "source.frames=null",
                            "--set", "source.realtime=true", "--set", "source.width=160", "--set", "source.height=96",
                            "--set", f"sinks.0.path=out/{name}"],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not recording.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
    return run, recording


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_mid_recording_leaves_a_playable_file(tmp_path, stop):
    """kill, systemd, Docker, `timeout` and a closed terminal stop the run as Ctrl-C does."""
    run, recording = live_recording(tmp_path)
    time.sleep(1.0)  # a second of frames written
    run.send_signal(stop)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0 and "stopped early" in stderr, stderr
    assert "Traceback" not in stderr
    with av.open(str(recording)) as container:
        frames = len(list(container.decode(video=0)))
    written = int(re.search(r"(\d+) frames in", stderr).group(1))
    assert frames == written > 0
    assert Path(stdout.strip().splitlines()[-1]) == recording


@pytest.mark.parametrize("gap_s", [0.0, 0.05])
def test_a_second_stop_signal_exits_fast_and_the_recording_still_plays(tmp_path, gap_s):
    """A second SIGTERM while the first one is being handled (an impatient `kill`, systemd's stop sequence)
    skips the orderly shutdown's waits: the run ends within seconds, with no traceback, and the
    recording plays (fragmented: everything written before the stop is in it)."""
    run, recording = live_recording(tmp_path)
    time.sleep(1.5)  # a keyframe's fragment written
    run.send_signal(signal.SIGTERM)
    time.sleep(gap_s)
    run.send_signal(signal.SIGTERM)
    start = time.monotonic()
    _, stderr = run.communicate(timeout=60)
    assert time.monotonic() - start < 10, stderr  # a slow stop names the worker it waited for
    # 130: stopped during the shutdown; 0: the shutdown had finished; -SIGTERM: the second signal came as
    # the interpreter was exiting, after every output was closed
    assert run.returncode in (0, 130, -signal.SIGTERM) and "Traceback" not in stderr, stderr
    assert playable_frames(recording) >= 30


@pytest.mark.parametrize("name", ["livematte.mp4", "livematte.mkv"])
def test_a_recording_killed_mid_run_plays_up_to_its_last_keyframe(tmp_path, name):
    """SIGKILL (or a power cut) leaves no chance to finalise: the file must already be playable."""
    run, recording = live_recording(tmp_path, name)
    time.sleep(3.5)  # 3.5 s of frames at 30 fps, keyframes every second
    run.kill()
    run.communicate(timeout=30)
    assert playable_frames(recording) >= 60


@pytest.mark.parametrize("limit", [400_000, 433_333, 466_667])
def test_a_full_disk_stops_the_run_with_one_line_and_keeps_the_recording(tmp_path, limit):
    """A file-size limit fails the writes as a full disk does (EFBIG instead of ENOSPC), at any byte: inside
    a fragment's media or its header."""
    import resource

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = subprocess.run([sys.executable, str(ROOT / "run.py"), "--set", "source.frames=null", "--set",
                          "source.width=320", "--set", "source.height=192"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, preexec_fn=small_files)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    message = run.stderr.strip().splitlines()[-1]
    assert "cannot write out/livematte.mp4: File too large; it keeps the first" in message
    kept = float(re.search(r"keeps the first ([0-9.]+) s", message).group(1))
    assert kept > 0 and playable_frames(tmp_path / "out" / "livematte.mp4") >= round(kept * 30)


@pytest.mark.parametrize(("args", "expected"), [
    (["--set", "sinks.0.path=out/talk.webm"], "sinks.0.path: Value error, a video file ends in .mp4, .mkv, .mov"),
    (["--set", "sinks.0.kind=png", "--set", "sinks.0.path=taken/frames"],
     "cannot make the PNG folder taken/frames: Not a directory"),
    (["--set", "source.kind=file", "--set", "source.path=clips"], "video file clips is a folder"),
], ids=["webm sink", "png sink under a file", "folder as a video file"])
def test_user_mistakes_exit_2_with_the_setting_to_fix(tmp_path, args, expected):
    (tmp_path / "taken").write_text("a file, not a folder")
    (tmp_path / "clips").mkdir()
    result = livematte("--set", "source.frames=3", *args, cwd=tmp_path)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_exits_2_with_an_actionable_message(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("source:\n  kind: synthetic\n  peoples: 3\n")
    result = livematte("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert str(config) in result.stderr and "source.peoples: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_source_exits_2(tmp_path):
    result = livematte("--set", "source.kind=file", "--set", "source.path=nothing.mp4", cwd=tmp_path)
    assert result.returncode == 2 and "video file not found: nothing.mp4" in result.stderr


def test_config_command_prints_the_effective_config(tmp_path):
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "config", "--set", "source.people=7"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["source"]["people"] == 7


def test_engine_that_cannot_key_the_video_exits_2_naming_the_keys(tmp_path):
    from tests.media import make_clip

    clip = make_clip(tmp_path / "no_screen.mp4", frames=5)
    result = livematte("--set", "source.kind=file", "--set", f"source.path={clip}", "--set", "engine.kind=keying",
                       "--set", "engine.max_failures=3", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "could not process 3 frames in a row (frame 2" in result.stderr
    for key in ("engine.keying.key_colour", "engine.keying.mode", "engine.max_failures"):
        assert key in result.stderr
    assert "Traceback" not in result.stderr and "KeyingEngine" not in result.stderr


@pytest.mark.parametrize("frames", ["0", "-5", "ten"])
def test_bench_refuses_a_frame_count_below_one(tmp_path, frames):
    command = [sys.executable, "-m", "livematte.cli", "bench", "--frames", frames, "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "--frames" in result.stderr and "Traceback" not in result.stderr


def test_warmup_compiles_the_kernels_the_default_job_uses(tmp_path):
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "warmup"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "CPU kernels compiled" in result.stderr and not list(tmp_path.iterdir()), "nothing written"
