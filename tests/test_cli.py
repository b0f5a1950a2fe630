import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import yaml

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


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_mid_recording_leaves_a_playable_file(tmp_path, stop):
    """kill, systemd, Docker, `timeout` and a closed terminal stop the run as Ctrl-C does."""
    recording = tmp_path / "out" / "livematte.mp4"
    run = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--set", "source.frames=null",
                            "--set", "source.realtime=true", "--set", "source.width=160", "--set", "source.height=96"],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not recording.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
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


def test_engine_that_cannot_key_the_video_exits_2(tmp_path):
    from tests.media import make_clip

    clip = make_clip(tmp_path / "no_screen.mp4", frames=5)
    result = livematte("--set", "source.kind=file", "--set", f"source.path={clip}", "--set", "engine.kind=keying",
                       cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "KeyingEngine cannot process frame 0" in result.stderr and "difference" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("frames", ["0", "-5", "ten"])
def test_bench_refuses_a_frame_count_below_one(tmp_path, frames):
    command = [sys.executable, "-m", "livematte.cli", "bench", "--frames", frames, "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "--frames" in result.stderr and "Traceback" not in result.stderr
