"""Soak: `livematte run` for 10,000 frames (synthetic, 640x360, null sink), its RSS sampled every second.

    .venv/bin/python bench/soak_cpu.py [--frames 10000] [--out bench/results]

The run is the real command in a child process, as a user starts it; the samples after the first tenth
of the run, and after its first WARMUP_S seconds (imports, compilation caches, allocator pools), must stay
within 5 % of the first of them.
Writes bench/results/soak_cpu_<date>.json with every sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from pipelines.report import machine, write_report

ROOT = Path(__file__).resolve().parents[1]
FLAT = 0.05  # largest RSS change after warm-up, as a fraction of the RSS then
WARMUP_S = 5.0  # at least this much of the run is warm-up (imports, models, first frames)


def soak(frames: int, folder: Path) -> dict:
    command = [sys.executable, "-m", "livematte.cli", "run", "--set", "source.width=640", "--set",
               "source.height=360", "--set", f"source.frames={frames}", "--set", "sinks.0.kind=null"]
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process, samples = psutil.Process(child.pid), []
    while child.poll() is None:
        try:
            samples.append((round(time.monotonic() - started, 1), round(process.memory_info().rss / 2**20, 1)))
        except psutil.NoSuchProcess:
            break
        time.sleep(1.0)
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"livematte run failed ({child.returncode}):\n{stderr}")
    warmup = max(WARMUP_S, samples[-1][0] / 10)
    after_warmup = [rss for at, rss in samples if at >= warmup] or [samples[-1][1]]
    reference = after_warmup[0]
    drift = max(abs(rss - reference) for rss in after_warmup) / reference
    return {"command": " ".join(command[1:]), "frames": frames, "seconds": round(time.monotonic() - started, 1),
            "summary": stderr.strip().splitlines()[-1], "rss_mb_after_warmup": reference,
            "rss_mb_at_end": after_warmup[-1], "rss_mb_max": max(after_warmup),
            "largest_change_after_warmup": round(drift, 4), "flat_within_5_percent": drift <= FLAT,
            "samples_s_mb": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": machine(),
                  "soak": soak(args.frames, Path(folder)), "device_after": machine()}
    print(write_report(report, args.out, "soak_cpu"))


if __name__ == "__main__":
    main()
