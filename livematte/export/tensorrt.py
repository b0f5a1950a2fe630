"""Build a TensorRT plan from the ONNX export, with a timing cache and one optimisation profile.

The network is strongly typed: its precision is the graph's (export_onnx's fp16 graph for an FP16
engine), which TensorRT 10 accepts with the STRONGLY_TYPED flag and TensorRT 11 requires (it has no
FP16 builder flag). The timing cache keeps the kernel timings of earlier builds on this GPU, so a
rebuild (another size or batch) takes a fraction of the first one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from livematte.export.onnx import INPUT, ExportError

log = logging.getLogger(__name__)


def build_plan(onnx_path: Path, plan_path: Path, input_size: tuple[int, int], max_batch: int,
               timing_cache: Path) -> Path:
    """Serialise an engine for batches 1..max_batch (tuned for 1, the live case) to `plan_path`."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}:\n{errors}\nExport it again with "
                          "`livematte export onnx`, or report the failing node")
    config = builder.create_builder_config()
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    height, width = input_size
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT, (1, 3, height, width), (1, 3, height, width), (max_batch, 3, height, width))
    config.add_optimization_profile(profile)
    started = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx_path} (see its messages above); "
                          "try a smaller engine.tensorrt.max_batch or free GPU memory")
    log.info("TensorRT engine built in %.0f s", time.perf_counter() - started)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    partial = plan_path.with_name(plan_path.name + ".partial")
    partial.write_bytes(memoryview(plan))
    partial.replace(plan_path)
    timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return plan_path
