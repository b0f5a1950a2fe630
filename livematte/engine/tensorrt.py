"""E2E-HIM as a TensorRT engine behind the Engine protocol, and the cache of built plans.

A plan is built once from the ONNX export of the weights (export.tensorrt.build_plan) and cached in
the user cache directory under a key of everything that makes a plan valid: weights, input shape,
batch range, precision, TensorRT version and GPU. It runs on torch CUDA tensors by pointer on the
caller's current stream (the pipeline's): no host copies, no extra synchronisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from livematte.engine.network_engine import NetworkEngine
from livematte.engine.postprocess import PostprocessConfig
from livematte.export.onnx import INPUT, OUTPUTS, ExportError, Precision, cached_export
from livematte.export.tensorrt import build_plan
from livematte.export.weights_id import weights_id
from livematte.model.build import Weights
from livematte.model.e2ehim import E2EHIMOutput
from livematte.paths import cache_dir

log = logging.getLogger(__name__)


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError as exc:
        raise ExportError(f"TensorRT cannot be imported ({exc}): on a machine with an NVIDIA GPU, "
                          "pip install tensorrt; or use engine.kind e2ehim (torch) or onnxruntime") from None
    return tensorrt


@dataclass(frozen=True)
class PlanKey:
    """What a plan depends on; a plan is only ever loaded for the same key."""

    weights_id: str
    input_size: tuple[int, int]  # (height, width)
    max_batch: int
    precision: Precision
    tensorrt: str
    gpu: str

    @property
    def file_name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]
        height, width = self.input_size
        return f"e2ehim-{width}x{height}-b{self.max_batch}-{self.precision}-{digest}.plan"

    @property
    def timing_cache_name(self) -> str:
        """Kernel timings hold for one TensorRT version on one GPU, whatever the network."""
        return f"timing-{hashlib.sha256(f'{self.tensorrt}|{self.gpu}'.encode()).hexdigest()[:16]}.cache"


def plan_dir() -> Path:
    return cache_dir() / "tensorrt"


def cached_plan(weights: Weights, input_size: tuple[int, int], max_batch: int = 4, precision: Precision = "fp16",
                device: torch.device | None = None) -> Path:
    """The plan for these weights and settings on this GPU, built (minutes) and cached on first use."""
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise ExportError("building a TensorRT engine needs an NVIDIA GPU that torch sees (a CUDA build of torch)")
    key = PlanKey(weights_id(weights), tuple(input_size), max_batch, precision, trt.__version__,
                  torch.cuda.get_device_name(device))
    path = plan_dir() / key.file_name
    if not path.is_file():
        onnx_path = cached_export(weights, input_size, precision)
        log.info("building the TensorRT %s engine at %dx%d, batch 1-%d, on %s: several minutes, once "
                 "(`livematte export tensorrt` builds it ahead of time)", precision, input_size[1], input_size[0],
                 max_batch, key.gpu)
        build_plan(onnx_path, path, input_size, max_batch, plan_dir() / key.timing_cache_name)
        path.with_suffix(".json").write_text(json.dumps(asdict(key), indent=2) + "\n")
    return path


class TensorRTEngine(NetworkEngine):
    """weights: see build_model. input_size: see NetworkEngine. Batches of up to max_batch frames."""

    def __init__(self, weights: Weights, device: str = "cuda", input_size: tuple[int, int] | None = None,
                 max_batch: int = 4, precision: Precision = "fp16",
                 postprocess_config: PostprocessConfig = PostprocessConfig()) -> None:
        self._trt = import_tensorrt()
        device_ = torch.device(device)
        if device_.type != "cuda" or not torch.cuda.is_available():
            raise ExportError(f"TensorRT needs a CUDA device (got {device!r}) and a CUDA build of torch that sees it; "
                              "on the CPU use engine.kind onnxruntime")
        self._weights = weights
        self.max_batch = max_batch
        self.precision = precision
        super().__init__(device_, input_size, postprocess_config)

    def _start(self) -> None:
        trt = self._trt
        plan = cached_plan(self._weights, self.input_size, self.max_batch, self.precision, self.device)
        with torch.cuda.device(self.device):
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
            if self._engine is None:
                raise ExportError(f"this TensorRT cannot load {plan}; delete it and it is built again")
            self._context = self._engine.create_execution_context()
        for name in OUTPUTS:
            if self._engine.get_tensor_dtype(name) != trt.float32:
                raise ExportError(f"{plan}: output {name} is not float32; delete the plan and its ONNX export "
                                  f"in {cache_dir()} to rebuild both")

    def _forward(self, image: Tensor) -> E2EHIMOutput:
        if image.shape[0] > self.max_batch:
            raise ValueError(f"a batch of {image.shape[0]} frames exceeds the TensorRT engine's max_batch "
                             f"{self.max_batch}; raise engine.tensorrt.max_batch")
        image = image.contiguous()
        context = self._context
        context.set_input_shape(INPUT, tuple(image.shape))
        context.set_tensor_address(INPUT, image.data_ptr())
        outputs = {}
        for name in OUTPUTS:
            outputs[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=torch.float32, device=self.device)
            context.set_tensor_address(name, outputs[name].data_ptr())
        with torch.cuda.device(self.device):
            if not context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
                raise RuntimeError("TensorRT failed to run the engine (see its messages above)")
        return E2EHIMOutput(**outputs)
