"""What Ray Serve adds to a frame: the network in this process against the same network served by a
replica on a local Ray instance (pipelines/cluster.py's deployment), the same 1280x720 frame, calls
alternated so both meet the same host moments. E2E-HIM with random weights (its speed does not depend
on their values; the official checkpoint is not available here), small input so the overhead shows.

    .venv/bin/python bench/cluster_cpu.py [--calls 40] [--input-size 64 96]
writes bench/results/cluster_cpu_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from livematte.memory import tune_process

tune_process()  # before torch loads: libgomp reads then how its threads wait, as in livematte's commands

import numpy as np  # noqa: E402
import torch  # noqa: E402
from random_network import random_network  # noqa: E402

from livematte.config import load_config  # noqa: E402
from livematte.engine.choose import open_engine  # noqa: E402
from livematte.engine.served import ServedEngine  # noqa: E402
from livematte.synthetic import SyntheticScene  # noqa: E402
from pipelines.cluster import join_cluster, serve_model  # noqa: E402
from pipelines.report import machine, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--input-size", type=int, nargs=2, default=(64, 96), metavar=("H", "W"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as folder:
        cfg = load_config(None, [
            *random_network(Path(folder), args.input_size), "cluster.address=local",
            f"cluster.cpus_per_replica={torch.get_num_threads()}"])  # the replica's torch gets as many threads
        local, _ = open_engine(cfg.engine)
        join_cluster(cfg.cluster, cpus=cfg.cluster.cpus_per_replica)
        try:
            served = ServedEngine(serve_model(cfg))
            frame = SyntheticScene(1280, 720, 2).render(0)[0]
            times: dict[str, list[float]] = {"in_process": [], "served": []}
            for engine in (local, served):
                engine.infer([frame])
            for _ in range(args.calls):
                for name, engine in (("in_process", local), ("served", served)):
                    start = time.perf_counter()
                    engine.infer([frame])
                    times[name].append((time.perf_counter() - start) * 1e3)
        finally:
            ray.shutdown()
    p50 = {name: round(float(np.median(t)), 2) for name, t in times.items()}
    report = {
        "benchmark": "one 1280x720 frame through E2E-HIM (random weights, CPU fp32) in this process vs served by "
                     "a Ray Serve replica on a local Ray instance, calls alternated",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": machine(),
        "input_size": list(args.input_size),
        "calls": args.calls,
        "ms_p50": p50,
        "ms_p95": {name: round(float(np.percentile(t, 95)), 2) for name, t in times.items()},
        "overhead_ms_p50": round(p50["served"] - p50["in_process"], 2),
    }
    print(write_report(report, args.out, "cluster_cpu"))
    print(report["ms_p50"], "overhead", report["overhead_ms_p50"], "ms")


if __name__ == "__main__":
    main()
