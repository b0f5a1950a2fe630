"""CUDA kernels on a GPU: timings at 1080p and 4K, and parity with the CPU twins on real footage.

    .venv/bin/python bench/kernels_gpu.py [--repeats 50] [--out bench/results]

Needs CuPy (the `gpu` extra) and a CUDA device. Timings are CUDA events around each call (median of
--repeats after a warm-up, inputs already on the device). Parity: every kernel on frames of
../shared/media/video_test2.mp4 (with synthetic person mattes) against its CPU twin. Writes
bench/results/kernels_gpu_<date>.json. Target: composite + fusion under 1 ms at 1080p.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
from kernels_cpu import BLUR_RADIUS, FEATHER_RADIUS, PARAMS, frames_at, mixed_layers, people_mattes
from timing import call_ms

from kernels import (
    Background,
    FusionParams,
    Scene,
    composite,
    feather,
    frame_changes,
    fuse_causal,
    gpu_available,
    input_size_for,
    masked_blur,
    preprocess,
)
from kernels.blur import REDUCED_RADIUS
from pipelines.report import write_report

SIZES = {"1080p": (1080, 1920), "4K": (2160, 3840)}
PEOPLE = (1, 4, 20)


def bench_case(size: str, h: int, w: int, n: int, repeats: int, xp=None) -> dict:
    """Each kernel's median ms at h x w with n people; xp: cupy (default) or numpy for the CPU twins."""
    if xp is None:
        import cupy as xp
    cuda = xp is not np

    prev_frame, frame = (xp.asarray(f) for f in frames_at(h, w)[:2])
    alphas = xp.asarray(people_mattes(h, w, n))
    net_h, net_w = input_size_for(h, w)
    layers = mixed_layers(n)
    scene = Scene(background=Background.COLOR, color=(0.0, 177.0, 64.0), spotlight_dim=0.4)
    previous = xp.zeros((h, w, 3), np.uint8)
    frame_changes(prev_frame, previous, PARAMS)
    matte = xp.asarray(people_mattes(h, w, n, seed=1))
    age = xp.zeros((n, h, w), np.uint8)
    pend = xp.zeros((n, h, w), np.uint8)
    new = xp.zeros(n, np.uint8)
    cells = xp.empty(PARAMS.cells_shape(h, w), np.uint8)
    count = xp.empty(1, np.int32)
    pre_out = xp.empty((3, net_h, net_w), np.float32)
    out = xp.empty((h, w, 3), np.uint8)

    def fusion():
        frame_changes(frame, previous, PARAMS, cells, count)
        fuse_causal(alphas, matte, age, pend, new, cells, count, PARAMS)

    kernels = {
        "preprocess": lambda: preprocess(frame, (net_h, net_w), out=pre_out),
        "fusion": fusion,
        "composite": lambda: composite(frame, alphas, layers, scene, out=out),
        "masked_blur": lambda: masked_blur(frame, alphas, BLUR_RADIUS),
        "feather": lambda: feather(alphas, FEATHER_RADIUS),
    }
    result = {"size": size, "frame": f"{w}x{h}", "people": n, "kernels_ms": {}}
    for name, fn in kernels.items():
        result["kernels_ms"][name] = round(statistics.median(call_ms(fn, repeats, cuda)), 4)
        print(f"{size:>6} {n:>2} people  {name:<12} {result['kernels_ms'][name]:8.3f} ms", flush=True)
    result["composite_plus_fusion_ms"] = round(result["kernels_ms"]["composite"] + result["kernels_ms"]["fusion"], 4)
    return result


def parity() -> dict:
    """Largest GPU - twin difference per kernel on three real frames at 720p."""
    import cupy

    prev_frame, frame, source = frames_at(720, 1280)
    h, w, _ = frame.shape
    n = 4
    alphas = people_mattes(h, w, n)
    report = {"frames_from": source}
    cpu, _ = preprocess(frame, (352, 640))
    report["preprocess"] = float(abs(cupy.asnumpy(preprocess(cupy.asarray(frame), (352, 640))[0]) - cpu).max())

    p = FusionParams(**{**vars(PARAMS), "blend": 0.2})
    host = [np.zeros((h, w, 3), np.uint8), people_mattes(h, w, n, seed=1), np.zeros((n, h, w), np.uint8),
            np.zeros((n, h, w), np.uint8)]
    dev = [cupy.asarray(a) for a in host]
    worst = 0.0
    for reset, f in ((True, prev_frame), (False, frame)):
        c_cells, c_count = frame_changes(f, host[0], p)
        g_cells, g_count = frame_changes(cupy.asarray(f), dev[0], p)
        fuse_causal(alphas, *host[1:], np.zeros(n, np.uint8), c_cells, c_count, p, reset=reset)
        fuse_causal(cupy.asarray(alphas), *dev[1:], cupy.zeros(n, np.uint8), g_cells, g_count, p, reset=reset)
        worst = max(worst, float(abs(cupy.asnumpy(dev[1]) - host[1]).max()),
                    float((cupy.asnumpy(g_cells) != c_cells).sum()), float((cupy.asnumpy(dev[2]) != host[2]).sum()))
    report["fusion"] = worst

    def byte_diff(gpu_out, cpu_out):
        return int(abs(cupy.asnumpy(gpu_out).astype(int) - cpu_out.astype(int)).max())

    g_frame, g_alphas = cupy.asarray(frame), cupy.asarray(alphas)
    report["masked_blur"] = byte_diff(masked_blur(g_frame, g_alphas, BLUR_RADIUS),
                                      masked_blur(frame, alphas, BLUR_RADIUS))
    report["feather"] = float(abs(cupy.asnumpy(feather(g_alphas, FEATHER_RADIUS))
                                  - feather(alphas, FEATHER_RADIUS)).max())
    layers = mixed_layers(n)
    # a background blur radius the CPU runs at full resolution too (larger ones it blurs at reduced resolution)
    scenes = [Scene(background=b, blur_radius=REDUCED_RADIUS) for b in Background if b is not Background.IMAGE]
    report["composite"] = max(byte_diff(composite(g_frame, g_alphas, layers, scene),
                                        composite(frame, alphas, layers, scene))
                              for scene in scenes)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if not gpu_available():
        print("kernels_gpu: CuPy is not installed or sees no CUDA device; install the gpu extra on a CUDA machine",
              file=sys.stderr)
        return 2
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    cases = [bench_case(size, *SIZES[size], n, args.repeats) for size in SIZES for n in PEOPLE]
    parity_report = parity()
    print("parity (max |GPU - twin|):", parity_report)
    at_1080 = max(c["composite_plus_fusion_ms"] for c in cases if c["size"] == "1080p" and c["people"] <= 4)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"gpu": props["name"].decode(), "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
                   "cupy": cupy.__version__},
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
        "settings": {"blur_radius": BLUR_RADIUS, "feather_radius": FEATHER_RADIUS, "repeats": args.repeats},
        "targets": {"composite_plus_fusion_1080p_up_to_4_people_under_1ms": {"ms": at_1080, "met": at_1080 < 1.0}},
        "parity_max_abs_diff": parity_report,
        "cases": cases,
    }
    print(f"wrote {write_report(report, args.out, 'kernels_gpu')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
