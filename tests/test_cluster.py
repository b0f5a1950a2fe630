"""Streams on a Ray cluster started on this machine (cluster.address local, pipelines/cluster.py): the same
output as in one process, and a model replica or a stream's actor killed mid-stream costs only that
stream a bounded gap."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import yaml
from safetensors.torch import save_file

pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e .[cluster])")

import ray  # noqa: E402

from livematte.config import load_config  # noqa: E402
from livematte.engine.served import NAME as MODEL  # noqa: E402
from pipelines.cluster import WORKER, run_on_cluster  # noqa: E402

from .e2ehim_helpers import unknown_trimap_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """An E2E-HIM whose 20 people follow the picture (random alphas), as a weights file any process reads."""
    path = tmp_path_factory.mktemp("weights") / "people.safetensors"
    save_file({k: v.contiguous() for k, v in unknown_trimap_model(seed=11, people=True).state_dict().items()},
              str(path))
    return path


def network(weights: Path) -> list[str]:
    return ["engine.kind=e2ehim", f"engine.e2ehim.weights={weights}", "engine.e2ehim.device=cpu",
            "engine.e2ehim.input_size=[64,96]"]


def write_streams(folder: Path, frames: int, live: bool = False, streams: int = 2) -> Path:
    """Synthetic streams 160x96 (seeds 1, 2, ...), each into a PNG folder: offline (every frame) or live."""
    source = {"kind": "synthetic", "width": 160, "height": 96, "people": 2, "realtime": live,
              "frames": None if live else frames}
    path = folder / "streams.yaml"
    path.write_text(yaml.safe_dump({
        "streams": [{"source": {**source, "seed": i + 1}, "sinks": [{"kind": "png", "path": f"out/stream_{i}"}]}
                    for i in range(streams)],
        "run": {"max_frames": frames}}))
    return path


def pictures(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))]


def kill_when(started: Path, find: Callable[[], str], namespace: str | None, restart: bool
              ) -> tuple[threading.Thread, list[str]]:
    """A thread that kills the actor `find` names (found when it kills) once `started` holds a picture;
    restart: whether Ray may start it again. Also the list of the names it killed."""
    killed: list[str] = []

    def kill():
        deadline = time.monotonic() + 120
        while not any(started.glob("*.png")) and time.monotonic() < deadline:
            time.sleep(0.05)
        killed.append(find())
        ray.kill(ray.get_actor(killed[-1], namespace=namespace), no_restart=not restart)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread, killed


def test_streams_on_a_local_cluster_give_what_they_give_in_one_process(tmp_path, weights):
    """`livematte run` with cluster.address local (the README's command): each stream a Ray actor, the
    network a Serve deployment of two replicas; the same pictures as the run in one process."""
    config = write_streams(tmp_path, frames=8)
    here, there = tmp_path / "one_process", tmp_path / "cluster"
    for folder, extra in ((here, []), (there, ["cluster.address=local", "cluster.replicas=2"])):
        folder.mkdir()
        args = [a for s in network(weights) + extra for a in ("--set", s)]
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(config), *args], cwd=folder,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "stream 1 (synthetic): 8 frames" in result.stderr
    assert "served by Ray Serve (2 replicas)" in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    for stream in ("stream_0", "stream_1"):
        alone, spread = pictures(here / "out" / stream), pictures(there / "out" / stream)
        assert len(alone) == len(spread) == 8
        for a, b in zip(alone, spread):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert not np.array_equal(pictures(there / "out" / "stream_0")[5], pictures(there / "out" / "stream_1")[5])


def test_a_model_replica_killed_mid_stream_loses_no_frame(tmp_path, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write_streams(tmp_path, frames=30), network(weights) + ["cluster.address=local",
                                                                           "cluster.replicas=2"])
    def a_replica() -> str:
        return next(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if MODEL in a["name"])

    killer, replica = kill_when(tmp_path / "out" / "stream_0", a_replica, "serve", restart=False)
    done = run_on_cluster(cfg)
    killer.join(timeout=10)
    assert replica, "a replica was killed while the streams ran"
    assert [r.frames for r in done.reports] == [30, 30], "every frame of both streams, none lost to the kill"
    assert len(pictures(tmp_path / "out" / "stream_1")) == 30


def test_a_stream_worker_killed_mid_stream_resumes_and_the_others_go_on(tmp_path, monkeypatch):
    """Live streams on the keying engine (each actor its own): the killed one starts again, writing anew
    beside what it wrote before; the other never notices."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write_streams(tmp_path, frames=45, live=True), ["cluster.address=local"])
    kill_when(tmp_path / "out" / "stream_0", lambda: f"{WORKER}0", None, restart=True)
    done = run_on_cluster(cfg)
    out = tmp_path / "out"
    resumed = list(out.glob("stream_0_resumed_*"))
    assert len(resumed) == 1, sorted(p.name for p in out.iterdir())
    assert 1 <= len(pictures(out / "stream_0")) < 45, "the first part stays as it was written"
    assert len(pictures(resumed[0])) == 45 and [r.frames for r in done.reports] == [45, 45]
    assert len(pictures(out / "stream_1")) == 45


def test_a_config_mistake_is_one_line_before_the_cluster_starts(tmp_path):
    config = write_streams(tmp_path, frames=4)
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(config), "--set",
                             "cluster.address=local", "--set", "engine.kind=e2ehim", "--set",
                             f"engine.e2ehim.weights={tmp_path / 'missing.safetensors'}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "missing.safetensors" in result.stderr and "Traceback" not in result.stderr
    assert "Ray" not in result.stderr, "refused before a Ray instance was started"

