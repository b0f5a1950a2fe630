"""How OpenMP's threads wait between parallel regions, three ways: the network alone and the main job.

    .venv/bin/python bench/openmp_wait.py [--rounds 3] [--out bench/results]

libgomp reads its settings once, when torch loads it, so every measurement is a child process started
with them: libgomp's default spin (about 3 ms; GOMP_SPINCOUNT=300000), sleeping at once
(OMP_WAIT_POLICY=PASSIVE, livematte's previous setting) and livematte's own (about 0.1 ms,
livematte/memory.py). Rounds alternate the three, so the host's drift falls on all of them alike.
1. E2E-HIM alone (random weights), fp32, batch 1, 640x352: median of 7 calls after 3 s of warm-up.
2. The main job (`python run.py`, the default config: keying engine, the 720p synthetic source
   unpaced, 150 frames encoded to an MP4 file, here in a temporary folder): fps once running.
Writes bench/results/openmp_wait_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.report import environment_with_openmp_wait, machine, openmp_wait, write_report

# how OpenMP's threads wait -> the variables the child process gets (livematte's own: none, it sets them)
WAITS = {"default spin": {"GOMP_SPINCOUNT": "300000"}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}, "livematte": {}}
NETWORK_SIZE = (352, 640)


def network() -> dict:
    import torch
    from model_cpu import summary, time_calls

    from livematte.model.e2ehim import E2EHIM

    torch.manual_seed(0)
    model = E2EHIM().eval()
    image = torch.randn(1, 3, *NETWORK_SIZE)
    with torch.inference_mode():
        return summary(time_calls(lambda: model(image), 7))


def main_job() -> dict:
    from livematte.config import load_config
    from pipelines.live import LivePipeline

    cfg = load_config()
    with tempfile.TemporaryDirectory() as folder:
        sinks = [cfg.sinks[0].model_copy(update={"path": Path(folder) / "livematte.mp4"})]
        report = LivePipeline(cfg.model_copy(update={"sinks": sinks})).run(show_progress=False)
    return {"fps": round(report.steady_fps, 2), "frames": report.frames}


CASES = {"network_640x352": network, "main_job": main_job}


def child(case: str, wait: str) -> dict:
    command = [sys.executable, __file__, "--child", case]
    result = subprocess.run(command, env=environment_with_openmp_wait(WAITS[wait]), capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import livematte
        from livematte.memory import tune_process

        tune_process()  # first, as livematte's commands do: libgomp reads how to wait when torch loads it

        result = CASES[args.child]()
        print(json.dumps({**result, "openmp_wait": openmp_wait(), "livematte": livematte.__version__}))
        return 0

    device = machine()
    runs = {case: {wait: [] for wait in WAITS} for case in CASES}
    for index in range(args.rounds):
        for case in CASES:
            for wait in WAITS:
                runs[case][wait].append(child(case, wait))
                print(f"round {index + 1}, {case}, {wait}: {runs[case][wait][-1]}", flush=True)
    network_ms = {wait: [r["median_ms"] for r in results] for wait, results in runs["network_640x352"].items()}
    fps = {wait: [r["fps"] for r in results] for wait, results in runs["main_job"].items()}
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "waits": WAITS,
        "rounds": args.rounds,
        "network_640x352_median_ms": network_ms,
        "network_640x352_median_of_rounds_ms": {w: statistics.median(v) for w, v in network_ms.items()},
        "main_job_fps": fps,
        "main_job_median_of_rounds_fps": {w: statistics.median(v) for w, v in fps.items()},
        "runs": runs,
    }
    path = write_report(report, args.out, "openmp_wait")
    for wait in WAITS:
        print(f"{wait:<12} network 640x352 {network_ms[wait]} ms, main job {fps[wait]} fps")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
