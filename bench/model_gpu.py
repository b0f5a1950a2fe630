"""E2E-HIM on a CUDA GPU: torch fp32, fp16, fp16 + CUDA graphs, ONNX Runtime (CUDA) and TensorRT.

    .venv/bin/python bench/model_gpu.py [--repeats 50] [--out bench/results]

Random weights. At 640x352 and 640x640 (W x H), batch 1 and 4: the network on a normalised batch
already on the GPU (each engine's `_forward`, the part the engines differ in), timed with CUDA
events on the current stream: median and p95 of --repeats calls after a warm-up, and per frame
(per call / batch). ONNX Runtime and TensorRT rows say why they were skipped where their packages
(onnxruntime-gpu, tensorrt) are missing; TensorRT's build time (minutes, cached) is recorded.
Target: the best path at 640x640, batch 1, at most 4 ms per frame on an H100.
Writes bench/results/model_gpu_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path
from typing import Callable

import torch
from model_cpu import SIZES
from timing import call_ms, summary

from livematte.engine.network_engine import NetworkEngine
from livematte.engine.onnx import OnnxRuntimeEngine
from livematte.engine.tensorrt import TensorRTEngine
from livematte.engine.torch_engine import TorchEngine
from livematte.export.onnx import ExportError
from livematte.model.e2ehim import E2EHIM
from pipelines.report import write_report

BATCHES = (1, 4)
TARGET_MS = 4.0


def time_forward(engine: NetworkEngine, image: torch.Tensor, repeats: int) -> dict[str, float]:
    with torch.inference_mode():
        return summary(call_ms(lambda: engine._forward(image), repeats, cuda=True, warmup=5), image.shape[0])


def engines(model: E2EHIM, size: tuple[int, int]) -> dict[str, Callable[[], NetworkEngine]]:
    """Each path as a factory, so a missing package skips one row and a path is built only when timed."""
    return {
        "torch_fp32": lambda: TorchEngine(model, device="cuda", input_size=size, fp16=False),
        "torch_fp16": lambda: TorchEngine(model, device="cuda", input_size=size, fp16=True),
        "torch_fp16_cuda_graphs": lambda: TorchEngine(model, device="cuda", input_size=size, fp16=True,
                                                      cuda_graphs=True),
        "onnxruntime_cuda_fp32": lambda: OnnxRuntimeEngine(model, device="cuda", input_size=size),
        "tensorrt_fp16": lambda: TensorRTEngine(model, input_size=size, max_batch=max(BATCHES), precision="fp16"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU and a CUDA build of torch")
    torch.manual_seed(0)
    model = E2EHIM().eval()
    rows = []
    for name, size in SIZES.items():
        for path, factory in engines(model, size).items():
            started = time.perf_counter()
            try:
                engine = factory()
            except ExportError as exc:
                rows.append({"size": name, "path": path, "skipped": str(exc)})
                print(json.dumps(rows[-1]), flush=True)
                continue
            setup_s = round(time.perf_counter() - started, 1)
            for batch in BATCHES:
                image = torch.randn(batch, 3, *size, device="cuda").contiguous(memory_format=engine.memory_format)
                rows.append({"size": name, "path": path, "batch": batch, "setup_s": setup_s,
                             **time_forward(engine, image, args.repeats)})
                print(json.dumps(rows[-1]), flush=True)
            del engine
            torch.cuda.empty_cache()
    timed = [r for r in rows if r["size"] == "640x640" and r.get("batch") == 1]
    best = min(timed, key=lambda r: r["per_frame_ms"])
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
                   "cudnn": torch.backends.cudnn.version(), "python": platform.python_version()},
        "weights": "random", "timing": "CUDA events around the network on a batch already on the GPU",
        "rows": rows,
        "best_640x640_batch1": {"path": best["path"], "per_frame_ms": best["per_frame_ms"], "target_ms": TARGET_MS,
                                "met": best["per_frame_ms"] <= TARGET_MS},
    }
    print(f"wrote {write_report(result, args.out, 'model_gpu')}")


if __name__ == "__main__":
    main()
