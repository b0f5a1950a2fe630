import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert (list(sweep["ms_by_people"]) == ["1", "3"]
            and list(sweep["ms_by_frame_size_4_people"]) == ["160x90", "320x180"])
    assert all((tmp_path / name).stat().st_size > 1000 for name in report["plots"]) and len(report["plots"]) == 3


def test_bench_compare_prints_ratios(tmp_path):
    args = [sys.executable, "-m", "livematte.cli", "bench", "--config", str(ROOT / "configs" / "bench.yaml"),
            "--compare", str(ROOT / "configs" / "bench.yaml"), "--frames", "10", "--people", "1", "--sizes", "160x90",
            "--out", str(tmp_path), *[a for s in SMALL for a in ("--set", s)], "--set", "temporal.mode=off"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stderr and "fps" in result.stderr
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_the_gpu_check_rehearses_every_step_on_the_cpu(tmp_path):
    """bench/gpu_check.py --device cpu: the script that spends a lent GPU's minutes runs end to end first."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["errors"] == {}
    assert report["tests"]["exit_code"] == 0 and report["tests"]["skipped"] == report["tests"]["tests"] > 0
    assert all("max_abs_diff_alpha" in row for row in report["model"]["rows"] if "skipped" not in row)
    runs = report["pipeline"]["runs"]
    assert all(r["frames"] > 0 and r["fps"] > 0 for r in runs.values())
    assert set(report["pipeline"]["per_person"]["ms_by_people"]) == {"1", "4"}
    assert report["webrtc"]["ok"] and len(report["webrtc"]["peers"]) == 2
    assert {c["people"] for c in report["kernels"]["cases"]} == {1, 4}
    assert set(report["streams"]["runs"]) == {"2", "3"}
    assert all(len(r["modes"]["batched"][0]["streams"]) == int(n) for n, r in report["streams"]["runs"].items())
    assert set(report["targets"]) and (tmp_path / "gpu_check.png").stat().st_size > 1000


def test_the_gpu_check_reads_copies_and_kernel_time_from_a_profiler_trace(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from gpu_check import trace_summary

    trace = {"traceEvents": [
        {"cat": "gpu_memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "dur": 500, "args": {"bytes": 6220800}},
        {"cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "dur": 700, "args": {"bytes": 6220800}},
        {"cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "dur": 10, "args": {"bytes": 80}},
        {"cat": "gpu_memcpy", "name": "Memcpy DtoD (Device -> Device)", "dur": 40, "args": {"bytes": 999}},
        {"cat": "kernel", "name": "composite", "dur": 150},
        {"cat": "kernel", "name": "fuse_causal", "dur": 250},
        {"cat": "kernel", "name": "composite", "dur": 150},
        {"cat": "cuda_runtime", "name": "cudaMemcpyAsync", "dur": 900},
    ]}
    found = trace_summary(trace, top=1)
    assert found["copies"] == {"HtoD": {"copies": 1, "bytes": 6220800}, "DtoH": {"copies": 2, "bytes": 6220880}}
    assert found["kernel_ms"] == pytest.approx(0.55) and found["memcpy_ms"] == pytest.approx(1.25)
    assert list(found["top"]) == ["composite"] and found["top"]["composite"] == pytest.approx(0.3)


def test_the_soak_samples_a_real_run_every_second(tmp_path):
    """bench/soak_cpu.py, shortened: the child is the real command, and its report says whether RSS held flat."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "soak_cpu.py"), "--frames", "150", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("soak_cpu_*.json")
    soak = json.loads(path.read_text())["soak"]
    assert soak["frames"] == 150 and "150 frames in" in soak["summary"]
    assert len(soak["samples_s_mb"]) >= 2 and soak["rss_mb_after_warmup"] > 50
    assert soak["flat_within_5_percent"] == (soak["largest_change_after_warmup"] <= 0.05)
