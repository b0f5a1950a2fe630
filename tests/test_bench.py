import json
import subprocess
import sys
from pathlib import Path

from livematte.config import load_config
from pipelines.bench import bench

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["source.width=320", "source.height=180", "source.people=2"]


def test_bench_writes_a_report_with_stages_latency_sweeps_and_plots(tmp_path):
    cfg = load_config(ROOT / "configs" / "bench.yaml", SMALL)
    report, path = bench(cfg, frames=15, out=tmp_path, people=(1, 3), sizes=((90, 160), (180, 320)), repeats=2)
    assert json.loads(path.read_text()) == report
    pipeline = report["pipeline"]
    assert pipeline["frames"] == 15 and pipeline["fps"] > 0 and pipeline["fps_with_startup"] > 0
    assert pipeline["first_frame_s"] > 0  # start-up is reported apart from the rate once running
    assert pipeline["capacity_fps"] > 0  # the synthetic source unpaced
    assert 0 <= pipeline["dropped_running"] <= pipeline["dropped"]
    assert set(pipeline["stage_ms"]) == {"engine", "stabilize", "composite", "sinks"}
    assert 0 < pipeline["latency_ms"]["p50"] <= pipeline["latency_ms"]["p95"] <= pipeline["latency_ms"]["p99"]
    assert pipeline["audio_delay_ms"] == pipeline["latency_ms"]["p50"]
    sweep = report["engine_sweep"]
    assert list(sweep["ms_by_people"]) == ["1", "3"] and list(sweep["ms_by_frame_size_4_people"]) == ["160x90", "320x180"]
    assert all((tmp_path / name).stat().st_size > 1000 for name in report["plots"]) and len(report["plots"]) == 3


def test_bench_compare_prints_ratios(tmp_path):
    args = [sys.executable, "-m", "livematte.cli", "bench", "--config", str(ROOT / "configs" / "bench.yaml"),
            "--compare", str(ROOT / "configs" / "bench.yaml"), "--frames", "10", "--people", "1", "--sizes", "160x90",
            "--out", str(tmp_path), *[a for s in SMALL for a in ("--set", s)], "--set", "temporal.mode=off"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stderr and "fps" in result.stderr
    assert len(list(tmp_path.glob("*.json"))) == 2
