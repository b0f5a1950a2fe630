"""E2E-HIM -> ONNX: fixed spatial size, dynamic batch, opset 18; fp32, or fp16 for TensorRT.

The graph's outputs are the network's raw outputs (E2EHIMOutput: class logits, alpha, trimap logits
at /8), and every engine runs the one shared post-processing on them (network_engine). It stays out
of the graph on purpose: gating keeps a data-dependent number of queries, which no fixed-shape graph
(TensorRT plan, CUDA graph) can return, and fusing the trimap of all 20 queries at full resolution
inside the graph would cost 20/K times the work of fusing only the K kept ones after it.

fp16: TensorRT 11 builds only strongly typed networks (the precision is in the graph; the FP16
builder flag is gone), so the fp16 graph is exported from an fp16 copy of the model whose
normalisations stay fp32, as torch autocast keeps them, with fp32 input and outputs.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from livematte.export.weights_id import weights_id
from livematte.model.build import Weights, build_model
from livematte.model.e2ehim import E2EHIMOutput
from livematte.model.input import check_input_size
from livematte.paths import cache_dir

log = logging.getLogger(__name__)

INPUT = "image"
OUTPUTS = E2EHIMOutput._fields  # class_logits (B, 20, 2), alpha (B, 20, H, W), trimap_logits (B, 20, 3, H/8, W/8)
OPSET = 18
EXPORT_VERSION = 1  # part of the cache key: bump when the exported graph changes
Precision = Literal["fp32", "fp16"]


class ExportError(RuntimeError):
    """An export that cannot be made or used; the message says what to install or change."""


def _own_dtype(module: nn.Module, args: tuple) -> tuple | None:
    weight = next(module.parameters(recurse=False), None)
    if weight is None:
        return None
    return tuple(a.to(weight.dtype) if isinstance(a, Tensor) and a.is_floating_point() else a for a in args)


def _to_half(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
    return output.half()


class HalfPrecision(nn.Module):
    """The network in fp16 with its GroupNorms and LayerNorms in fp32; fp32 in and out.

    Every module casts its floating inputs to its own weights' dtype, so the fp32 tensors the network
    makes itself (the Swin shift mask) and the norms' outputs meet fp16 weights as fp16.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).half()
        for module in self.model.modules():
            module.register_forward_pre_hook(_own_dtype)
            if isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
                module.float()
                module.register_forward_hook(_to_half)

    def forward(self, image: Tensor) -> E2EHIMOutput:
        return E2EHIMOutput(*(o.float() for o in self.model(image.half())))


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The exporter warns once per Split node its optimiser leaves alone (hundreds of lines) and about
    torchvision ops this network does not use: errors only while it runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(weights: Weights, path: Path, input_size: tuple[int, int], precision: Precision = "fp32") -> Path:
    """Write the graph to `path` (checked with onnx.checker) and return it."""
    import onnx

    check_input_size(input_size)
    source = weights_id(weights)
    model = build_model(weights, fused_alpha=False).eval()  # the fused alpha head's groups are the batch size
    network = model if precision == "fp32" else HalfPrecision(model).eval()
    example = torch.zeros(2, 3, *input_size)  # an example batch of 1 would fix the batch size in the graph
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), _quiet("onnxscript", "torch.onnx"):
        program = torch.onnx.export(network, (example,), dynamic_shapes=({0: batch},), input_names=[INPUT],
                                    output_names=list(OUTPUTS), opset_version=OPSET, dynamo=True, verbose=False)
    program.model.metadata_props.update({
        "livematte.weights_id": source, "livematte.precision": precision,
        "livematte.input_size": f"{input_size[1]}x{input_size[0]}", "livematte.export_version": str(EXPORT_VERSION)})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    program.save(partial, external_data=False)
    onnx.checker.check_model(str(partial), full_check=True)
    partial.replace(path)
    return path


def cached_export(weights: Weights, input_size: tuple[int, int], precision: Precision = "fp32") -> Path:
    """The graph of these weights at this size from the user cache, exported there on first use."""
    height, width = input_size
    name = f"e2ehim-{weights_id(weights)[:16]}-{width}x{height}-{precision}-opset{OPSET}-v{EXPORT_VERSION}.onnx"
    path = cache_dir() / "onnx" / name
    if not path.is_file():
        log.info("exporting E2E-HIM to ONNX at %dx%d (%s), once for these weights and size; about a minute",
                 width, height, precision)
        export_onnx(weights, path, input_size, precision)
        log.info("exported %s", path)
    return path


def max_difference(weights: Weights, path: Path, batch: int = 2, seed: int = 0) -> dict[str, float]:
    """Largest |ONNX Runtime - torch| of each output on one random batch, both on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, _, height, width = session.get_inputs()[0].shape
    image = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = build_model(weights).eval()(image)
    got = session.run(list(OUTPUTS), {INPUT: image.numpy()})
    return {name: float(np.abs(g - e.numpy()).max()) for name, g, e in zip(OUTPUTS, got, expected)}
