"""Temporal quality benchmark: tracking + fusion on synthetic scenes with network-like errors.

The synthetic source's exact alphas are corrupted the way per-frame network outputs go wrong
(noise along the edges, blobs that pop in and out for a frame, people missing for a frame, tiny
instances dropped, instance order shuffled), then run through the stabilizer (tracker + fuser) with
fusion off, causal and exact. Reported per scene kind: MAD and dtSSD against the ground truth, and
identity switches (changes of the id a ground-truth figure is matched to over time).

    .venv/bin/python bench/quality.py            # writes bench/results/quality_<date>.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from livematte.stabilize import Stabilizer
from livematte.synthetic import SyntheticScene
from livematte.temporal import TemporalFuser
from livematte.tracking import Tracker

SCENES = {"still": 0.0, "video_call": 0.05, "walking": 1.0}  # name -> SyntheticScene motion
MODES = ("off", "causal", "exact")


def corrupt(alphas: np.ndarray, rng: np.random.Generator, min_area: float, edge_noise: float,
            pop_rate: float, dropout_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Network-like per-frame errors on exact alphas; returns (mattes, probs) in shuffled order."""
    out = []
    for alpha in alphas:
        if rng.random() < dropout_rate:
            continue
        matte = alpha.copy()
        band = cv2.dilate(((alpha > 0) & (alpha < 1)).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        matte[band] += rng.normal(0, edge_noise, int(band.sum())).astype(np.float32)
        if rng.random() < pop_rate and band.any():
            ys, xs = np.nonzero(band)
            k = rng.integers(len(ys))
            blob = np.zeros_like(matte, np.uint8)
            cv2.circle(blob, (int(xs[k]), int(ys[k])), int(rng.integers(4, 10)), 1, -1)
            matte[blob > 0] = float(rng.random() < 0.5)
        matte = np.clip(matte, 0, 1)
        if matte.sum() >= min_area:
            out.append(matte)
    order = rng.permutation(len(out))
    mattes = np.stack([out[i] for i in order]) if out else np.zeros((0, *alphas.shape[1:]), np.float32)
    probs = np.clip(rng.normal(0.9, 0.05, len(out)), 0, 1).astype(np.float32)
    return mattes, probs


def match(pred: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """Ground-truth figure -> index of the output matte that covers it (IoU >= 0.3, Hungarian)."""
    if not len(pred) or not len(truth):
        return {}
    p, t = pred.reshape(len(pred), -1) > 0.5, truth.reshape(len(truth), -1) > 0.5
    inter = p.astype(np.float32) @ t.T.astype(np.float32)
    union = p.sum(1)[:, None] + t.sum(1)[None] - inter
    iou = inter / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(-iou)
    return {int(c): int(r) for r, c in zip(rows, cols) if iou[r, c] >= 0.3}


def run(mode: str, motion: float, seed: int, args) -> dict:
    scene = SyntheticScene(args.width, args.height, args.people, seed=seed, motion=motion)
    stabilizer = Stabilizer(Tracker(), TemporalFuser(mode))
    rng = np.random.default_rng(1000 + seed)
    min_area = 1000 * args.width * args.height / (1280 * 720)
    truths, outputs = [], []
    for t in range(args.frames):
        image, alphas = scene.render(t)
        truths.append(alphas)
        mattes, probs = corrupt(alphas, rng, min_area, args.edge_noise, args.pop_rate, args.dropout_rate)
        people = stabilizer.update(image, mattes, probs)
        if people is not None:
            outputs.append((people.mattes.copy(), list(people.ids)))
    last = stabilizer.flush()
    if last is not None:
        outputs.append((last.mattes.copy(), list(last.ids)))

    figures = args.people
    previous_id: dict[int, int] = {}
    switches = 0
    mad, dtssd = [], []
    prev_pred = prev_truth = None
    for t, (truth, (mattes, ids)) in enumerate(zip(truths, outputs)):
        matched = match(mattes, truth)
        pred = np.zeros_like(truth)
        for figure, k in matched.items():
            pred[figure] = mattes[k]
            if figure in previous_id and previous_id[figure] != ids[k]:
                switches += 1
            previous_id[figure] = ids[k]
        if t >= args.warmup:
            mad.append(np.abs(pred - truth).mean())
            if prev_pred is not None:
                diff = (pred - prev_pred) - (truth - prev_truth)
                dtssd.append(np.sqrt((diff ** 2).reshape(figures, -1).mean(1)).mean())
        prev_pred, prev_truth = pred, truth
    return {"mad_x1e3": 1e3 * float(np.mean(mad)), "dtssd_x1e2": 1e2 * float(np.mean(dtssd)), "id_switches": switches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--edge-noise", type=float, default=0.02)
    parser.add_argument("--pop-rate", type=float, default=0.15)
    parser.add_argument("--dropout-rate", type=float, default=0.03)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    results: dict = {}
    for scene, motion in SCENES.items():
        per_mode = {}
        for mode in MODES:
            runs = [run(mode, motion, seed, args) for seed in range(args.seeds)]
            per_mode[mode] = {
                "mad_x1e3": float(np.mean([r["mad_x1e3"] for r in runs])),
                "dtssd_x1e2": float(np.mean([r["dtssd_x1e2"] for r in runs])),
                "id_switches": int(sum(r["id_switches"] for r in runs)),
            }
            print(f"{scene:10s} {mode:6s} MAD {per_mode[mode]['mad_x1e3']:.2f}e-3"
                  f"  dtSSD {per_mode[mode]['dtssd_x1e2']:.2f}e-2  id switches {per_mode[mode]['id_switches']}")
        off, causal = per_mode["off"], per_mode["causal"]
        per_mode["causal_vs_off"] = {
            "dtssd_change": causal["dtssd_x1e2"] / off["dtssd_x1e2"] - 1,
            "mad_change": causal["mad_x1e3"] / off["mad_x1e3"] - 1,
        }
        per_mode["targets_met"] = {
            "zero_id_switches": all(per_mode[m]["id_switches"] == 0 for m in MODES),
            "dtssd_at_least_30pct_lower": per_mode["causal_vs_off"]["dtssd_change"] <= -0.30,
            "mad_at_most_5pct_higher": per_mode["causal_vs_off"]["mad_change"] <= 0.05,
        }
        results[scene] = per_mode
    today = dt.date.today().isoformat()
    report = {
        "benchmark": "temporal quality (tracking + fusion) on corrupted synthetic ground truth",
        "date": today,
        "device": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"scenes": SCENES},
        "results": results,
    }
    out = args.out or Path(__file__).parent / "results" / f"quality_{today}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
