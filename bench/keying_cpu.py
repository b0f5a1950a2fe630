"""The keying engine's time per 1280x720 frame against the number of people, chroma and difference keys.

    .venv/bin/python bench/keying_cpu.py [--frames 60] [--rounds 5] [--threads 1 2] [--out bench/results]

Frames come from the synthetic scene (green screen; for the difference key the same figures on a
smooth multicoloured background, with the empty background as the clean plate). Frames are rendered
first, then each is keyed once per round; the figure reported is the median over --rounds rounds of
the mean ms per frame, with p95 of single frames alongside. Each case runs with OpenCV on one thread
(the live pipeline's other stages busy the second core) and on all cores. Writes bench/results/keying_cpu_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from livematte.engine.keying import KeyingEngine, KeyingSettings
from livematte.synthetic import SyntheticScene
from pipelines.report import cpu_model, write_report

W, H = 1280, 720
PEOPLE = (1, 4, 10, 20)
BUDGET_MS = 15.0  # the engine's share of a 33 ms frame on two cores (issue 5)


def background() -> np.ndarray:
    """A smooth multicoloured stand-in for a room, with no screen colour dominating."""
    coarse = np.random.default_rng(4).integers(30, 220, (9, 16, 3), dtype=np.uint8)
    return cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)


def frames(people: int, count: int, mode: str) -> list[np.ndarray]:
    """`count` frames of `people` walkers, on green (chroma) or on `background()` (difference)."""
    scene, room = SyntheticScene(W, H, people, seed=0), background().astype(np.float32)
    out = []
    for i in range(count):
        image, alphas = scene.render(i * 3)
        if mode == "difference":
            clear = 1.0 - alphas.sum(0)[..., None]
            image = np.clip(image - scene.background * clear + room * clear + 0.5, 0, 255).astype(np.uint8)
        out.append(image)
    return out


def time_engine(mode: str, people: int, count: int, rounds: int, threads: int) -> dict:
    cv2.setNumThreads(threads)
    engine = KeyingEngine(KeyingSettings(mode=mode))
    if mode == "difference":
        engine.capture_plate(background())
    batch = frames(people, count, mode)
    found = [len(r) for r in engine.infer(batch[:3])]  # warm-up
    means, singles = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for frame in batch:
            t = time.perf_counter()
            engine.infer([frame])
            singles.append((time.perf_counter() - t) * 1e3)
        means.append((time.perf_counter() - start) * 1e3 / len(batch))
    return {"mode": mode, "people": people, "opencv_threads": threads,
            "ms_per_frame": round(statistics.median(means), 3), "p95_ms": round(float(np.percentile(singles, 95)), 3),
            "instances_in_first_frames": found}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count()])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    cases = [time_engine(mode, people, args.frames, args.rounds, threads)
             for threads in args.threads for mode in ("chroma", "difference") for people in PEOPLE]
    load_after = os.getloadavg()
    four = [c["ms_per_frame"] for c in cases if c["people"] == 4]
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"cpu": cpu_model(), "logical_cores": os.cpu_count()},
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__},
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "note": ("CPU shared with other work during the run (1-minute load average before it above 0.5), so "
                 "timings are upper bounds" if load_before[0] > 0.5 else
                 "CPU idle before the run (the load average after it is this benchmark's own)"),
        "frame": {"width": W, "height": H},
        "settings": KeyingSettings().__dict__ | {"mode": "per case"},
        "frames_per_case": args.frames,
        "rounds": args.rounds,
        "cases": cases,
        "targets": {"engine_720p_4_people_under_15ms": {"ms": max(four), "met": max(four) < BUDGET_MS}},
    }
    path = write_report(report, args.out, "keying_cpu")
    for c in cases:
        print(f"{c['opencv_threads']} thread(s) {c['mode']:>10} {c['people']:>3} people: "
              f"{c['ms_per_frame']:7.2f} ms/frame (p95 {c['p95_ms']:.2f})")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
