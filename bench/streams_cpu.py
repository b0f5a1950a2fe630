"""Many streams on one network, on this CPU: N live synthetic streams through one process, the network's
frames batched across them against one frame at a time (pipelines/bench_streams.py, `livematte bench
--streams N` with a network engine). The network is E2E-HIM with random weights: its speed does not
depend on their values, and the official checkpoint is not available here.

    .venv/bin/python bench/streams_cpu.py [--streams 4] [--frames 60] [--input-size 128 224] [--max-batch N]
writes bench/results/streams_cpu_max<N>_<date>.json (streams_cpu_maxauto_... without --max-batch: the
default for a CPU network).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from livematte.memory import tune_process

tune_process()  # before torch loads: libgomp reads then how its threads wait, as in livematte's commands

from random_network import random_network  # noqa: E402
from rich.console import Console  # noqa: E402

from livematte.config import load_config  # noqa: E402
from pipelines.bench_streams import print_streams_summary, streams_bench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60, help="frames each stream outputs, per round")
    parser.add_argument("--input-size", type=int, nargs=2, default=(128, 224), metavar=("H", "W"))
    parser.add_argument("--size", type=int, nargs=2, default=(640, 360), metavar=("W", "H"), help="the streams' frames")
    parser.add_argument("--max-batch", type=int, help="engine.batch.max_batch of the batched mode (default: null)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cfg = load_config(ROOT / "configs" / "bench.yaml", [
            *random_network(Path(folder), args.input_size), f"source.width={args.size[0]}",
            f"source.height={args.size[1]}", f"engine.batch.max_batch={args.max_batch or 'null'}"])
        name = f"streams_cpu_max{args.max_batch or 'auto'}"
        report, path = streams_bench(cfg, args.streams, args.frames, args.out, name=name)
    print(path)
    print_streams_summary(Console(), report)


if __name__ == "__main__":
    main()
