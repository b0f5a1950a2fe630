"""Several sources in one run (config `streams`, pipelines/streams.py) and `livematte bench --streams`."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from safetensors.torch import save_file

from livematte.config import ConfigError, NullSinkConfig, StreamConfig, SyntheticSourceConfig, load_config
from livematte.engine.torch_engine import TorchEngine
from livematte.model.e2ehim import E2EHIM
from livematte.sinks import playable_frames
from livematte.sources import SourceError
from pipelines.bench_streams import streams_bench
from pipelines.streams import StreamsRun

from .e2ehim_helpers import unknown_trimap_model

ROOT = Path(__file__).resolve().parents[1]


def write_clip(path: Path, frames: int, size: tuple[int, int] = (160, 96)) -> None:
    """A small H.264 clip whose frames brighten one grey level a frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            picture = np.full((size[1], size[0], 3), 40 + 4 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        container.mux(stream.encode())


def streams_config(tmp_path: Path, *streams: StreamConfig, overrides: list[str] = ()):
    path = tmp_path / "streams.yaml"
    path.write_text(yaml.safe_dump({"streams": [s.model_dump(mode="json") for s in streams]}))
    return load_config(path, list(overrides))


def synthetic(seed: int, frames: int | None = 6, realtime: bool = False) -> SyntheticSourceConfig:
    return SyntheticSourceConfig(width=160, height=96, people=2, seed=seed, frames=frames, realtime=realtime)


def test_a_run_of_two_sources_writes_each_its_own_recording(tmp_path):
    """A camera-like synthetic scene and a file, named relative to the config file, run from elsewhere."""
    folder, elsewhere = tmp_path / "job", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    write_clip(folder / "clip.mp4", 15)
    (folder / "streams.yaml").write_text(yaml.safe_dump({"streams": [
        {"source": {"kind": "synthetic", "width": 160, "height": 96, "people": 2, "frames": 12},
         "sinks": [{"kind": "file", "path": "out/scene.mp4"}]},
        {"source": {"kind": "file", "path": "clip.mp4"},
         "sinks": [{"kind": "file", "path": "out/clip.mp4"}, {"kind": "png", "path": "out/clip_frames"}]}]}))
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(folder / "streams.yaml")],
                            cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    printed = [Path(line) for line in result.stdout.split()]
    out = elsewhere / "out"
    assert printed == [out / "scene.mp4", out / "clip.mp4", out / "clip_frames"]
    assert playable_frames(out / "scene.mp4") == 12 and playable_frames(out / "clip.mp4") == 15
    assert len(list((out / "clip_frames").glob("*.png"))) == 15
    assert "stream 0 (synthetic): 12 frames" in result.stderr and "stream 1 (file): 15 frames" in result.stderr


def test_streams_replace_source_and_sinks_and_never_share_an_output(tmp_path):
    one, two = (StreamConfig(source=synthetic(i), sinks=[{"kind": "file", "path": f"out/{i}.mp4"}]) for i in (0, 1))
    cfg = streams_config(tmp_path, one, two, overrides=["effects.isolate=[1]"])
    configs = cfg.stream_configs()
    assert [c.source.seed for c in configs] == [0, 1] and [c.sinks[0].path.name for c in configs] == ["0.mp4", "1.mp4"]
    assert [c.effects.isolate_path for c in configs] == [Path("out/people/stream_0"), Path("out/people/stream_1")]
    with pytest.raises(ConfigError, match="streams replaces source and sinks"):
        streams_config(tmp_path, one, overrides=["source.kind=synthetic"])
    clash = StreamConfig(source=synthetic(2), sinks=[{"kind": "file", "path": "out/0.mp4"}])
    with pytest.raises(ConfigError, match="two sinks write to .*0.mp4"):
        streams_config(tmp_path, one, clash)
    (tmp_path / "no_sinks.yaml").write_text("streams: [{source: {kind: synthetic}, sinks: []}]")
    with pytest.raises(ConfigError, match="streams.0.sinks"):
        load_config(tmp_path / "no_sinks.yaml")


def test_streams_share_one_network_whose_frames_run_in_batches(tmp_path):
    network = TorchEngine(unknown_trimap_model(seed=4, people=True), device="cpu", input_size=(64, 96), fp16=False)
    cfg = streams_config(tmp_path, *(StreamConfig(source=synthetic(i), sinks=[NullSinkConfig()]) for i in range(3)),
                         overrides=["engine.batch.window_ms=50", "engine.batch.max_batch=3"])
    run = StreamsRun(cfg, engine=(network, "a network"))
    done = run.run()
    assert [r.frames for r in done.reports] == [6, 6, 6], "offline sources: every frame of every stream"
    assert sum(n * runs for n, runs in done.batch_sizes.items()) == 18 and max(done.batch_sizes) == 3
    assert all(p.engine is run.batching for p in run.pipelines)


def test_a_stream_that_fails_stops_the_others_and_its_error_ends_the_run(tmp_path):
    live = StreamConfig(source=synthetic(0, frames=None, realtime=True), sinks=[NullSinkConfig()])
    missing = StreamConfig(source={"kind": "file", "path": str(tmp_path / "gone.mp4")}, sinks=[NullSinkConfig()])
    cfg = streams_config(tmp_path, live, missing)
    start = time.monotonic()
    with pytest.raises(SourceError, match="gone.mp4"):
        StreamsRun(cfg).run()
    assert time.monotonic() - start < 60, "the endless live stream was stopped"


def test_bench_streams_compares_batched_with_one_frame_at_a_time(tmp_path):
    save_file(E2EHIM().state_dict(), str(tmp_path / "random.safetensors"))
    cfg = load_config(None, ["source.width=160", "source.height=96", "source.people=2", "engine.kind=e2ehim",
                             f"engine.e2ehim.weights={tmp_path / 'random.safetensors'}", "engine.e2ehim.device=cpu",
                             "engine.e2ehim.input_size=[64,96]", "engine.batch.window_ms=20"])
    report, path = streams_bench(cfg, streams=3, frames=6, out=tmp_path)
    assert path.exists() and report["engine_period_ms"] > 0
    batched, single = report["modes"].values()
    assert len(batched) == len(single) == 2, "two rounds of each mode, alternated"
    for run in batched + single:
        assert len(run["streams"]) == 3 and run["total_fps"] == pytest.approx(sum(s["fps"] for s in run["streams"]))
        assert 0 <= run["streams_held"] <= 3 and run["latency_ms"]["p50"] <= run["latency_ms"]["p99"]
    assert all(set(run["batch_sizes"]) == {"1"} for run in single)
    assert any(max(map(int, run["batch_sizes"])) > 1 for run in batched)
    assert set(report["batched_over_single"]) == {"total_fps", "latency_p99_ms_difference"}


def test_bench_streams_gives_each_stream_its_own_engine_where_engines_keep_state(tmp_path):
    cfg = load_config(None, ["source.width=160", "source.height=96", "source.people=2"])  # keying: per stream
    report, _ = streams_bench(cfg, streams=2, frames=5, out=tmp_path)
    (mode, runs), = report["modes"].items()
    assert mode == "own engine per stream" and len(runs) == 1 and runs[0]["batch_sizes"] == {}
    assert "batched_over_single" not in report


RAY = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the cluster extra is not installed")


@pytest.mark.parametrize("cluster", [None, pytest.param("local", marks=RAY)], ids=["one process", "local cluster"])
def test_sigterm_stops_every_stream_and_each_recording_plays(tmp_path, cluster):
    """In one process and on a Ray cluster (whose own SIGTERM handler would abort the command with every
    actor's file cut off)."""
    (tmp_path / "live.yaml").write_text(yaml.safe_dump({
        "streams": [{"source": {"kind": "synthetic", "width": 160, "height": 96, "frames": None, "realtime": True,
                                "seed": i}, "sinks": [{"kind": "file", "path": f"out/{i}.{suffix}"}]}
                    for i, suffix in enumerate(("mp4", "mkv"))],
        "cluster": {"address": cluster}}))
    run = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", "live.yaml"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all((tmp_path / "out" / name).exists() for name in ("0.mp4", "1.mkv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # two seconds of frames written
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr[-3000:]
    assert "(stopped early)" in stderr and "Traceback" not in stderr
    written = [int(n) for n in re.findall(r"stream \d \(synthetic\): (\d+) frames", stderr)]
    assert len(written) == 2 and min(written) >= 30
    assert [playable_frames(tmp_path / "out" / name) for name in ("0.mp4", "1.mkv")] == written
