"""E2E-HIM through ONNX Runtime behind the Engine protocol: the CPU provider, or CUDA where present.

The graph is one from `livematte export onnx` (fixed spatial size, any batch), or installed weights
exported on first use into the user cache. Pre- and post-processing are the torch engine's own
(network_engine); tensors cross into ONNX Runtime by pointer (I/O binding), so nothing is copied
between torch and ONNX Runtime, on the host or on the GPU.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from livematte.engine.network_engine import NetworkEngine
from livematte.engine.postprocess import PostprocessConfig
from livematte.export.onnx import INPUT, OUTPUTS, ExportError, cached_export
from livematte.model.build import Weights
from livematte.model.e2ehim import E2EHIMOutput

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def import_onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("ONNX Runtime is not installed: pip install -e '.[export]' "
                          "(onnxruntime-gpu instead of onnxruntime for device 'cuda')") from None
    return onnxruntime


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' where both ONNX Runtime and torch can use the GPU, else 'cpu'."""
    if device != "auto":
        return device
    usable = PROVIDERS["cuda"] in import_onnxruntime().get_available_providers() and torch.cuda.is_available()
    return "cuda" if usable else "cpu"


class OnnxRuntimeEngine(NetworkEngine):
    """model: an exported .onnx graph (its own input size), or weights (see build_model) to export
    on first use at input_size (None: follows the first frame, see NetworkEngine)."""

    def __init__(self, model: Path | Weights, device: str = "cpu", input_size: tuple[int, int] | None = None,
                 postprocess_config: PostprocessConfig = PostprocessConfig()) -> None:
        onnxruntime = import_onnxruntime()
        device_ = torch.device(device)
        provider = PROVIDERS[device_.type]
        if provider not in onnxruntime.get_available_providers():
            raise ExportError(f"ONNX Runtime offers no {provider} here (it has "
                              f"{', '.join(onnxruntime.get_available_providers())}): install onnxruntime-gpu "
                              "for device 'cuda', or use device 'cpu'")
        if device_.type == "cuda" and not torch.cuda.is_available():
            raise ExportError("device 'cuda' requested but torch sees no CUDA device; use device 'cpu'")
        self._ort = onnxruntime
        self._provider = provider
        self._weights = model
        self._session = None
        if isinstance(model, (str, Path)) and str(model).endswith(".onnx"):
            self._open(Path(model), device_)
            graph_size = tuple(self._session.get_inputs()[0].shape[2:])
            if input_size is not None and tuple(input_size) != graph_size:
                raise ValueError(f"{model} runs at {graph_size[1]}x{graph_size[0]} (WxH), not input_size "
                                 f"{input_size[1]}x{input_size[0]}: leave input_size unset or export at that size")
            input_size = graph_size
        super().__init__(device_, input_size, postprocess_config)

    def _start(self) -> None:
        if self._session is None:
            self._open(cached_export(self._weights, self.input_size), self.device)

    def _open(self, path: Path, device: torch.device) -> None:
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provider = (self._provider, {"device_id": device.index or 0}) if device.type == "cuda" else self._provider
        errors = self._ort.capi.onnxruntime_pybind11_state
        try:
            session = self._ort.InferenceSession(str(path), options, providers=[provider])
        except (errors.Fail, errors.InvalidArgument, errors.NoSuchFile, errors.InvalidProtobuf) as exc:
            raise ExportError(f"ONNX Runtime cannot load {path} ({exc}); make it again with "
                              "`livematte export onnx`") from None
        inputs, outputs = session.get_inputs(), session.get_outputs()
        fixed = all(isinstance(d, int) for o in [*inputs, *outputs] for d in o.shape[1:])
        if [i.name for i in inputs] != [INPUT] or [o.name for o in outputs] != list(OUTPUTS) or not fixed:
            raise ExportError(f"{path} is not an E2E-HIM export of livematte (input {INPUT!r} of fixed height and "
                              f"width, outputs {', '.join(OUTPUTS)}): make one with `livematte export onnx`")
        self._session = session

    def _forward(self, image: Tensor) -> E2EHIMOutput:
        binding = self._session.io_binding()
        kind, index = self.device.type, self.device.index or 0
        image = image.contiguous()
        binding.bind_input(INPUT, kind, index, np.float32, tuple(image.shape), image.data_ptr())
        outputs = []
        for output in self._session.get_outputs():
            shape = (image.shape[0], *output.shape[1:])
            outputs.append(torch.empty(shape, dtype=torch.float32, device=self.device))
            binding.bind_output(output.name, kind, index, np.float32, shape, outputs[-1].data_ptr())
        if kind == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # ONNX Runtime reads the image on its own stream
        self._session.run_with_iobinding(binding)
        return E2EHIMOutput(*outputs)
