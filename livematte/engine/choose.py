"""Which engine a config asks for: E2E-HIM (torch, ONNX Runtime or TensorRT) when its weights are installed,
else the learned CPU engine (MediaPipe's person models); the keying engine only when asked for."""

from __future__ import annotations

from pathlib import Path

from livematte.config import EngineConfig, Footage
from livematte.engine.base import Engine, EngineError

LEARNED = "learned CPU engine (MediaPipe pose detector + per-person pose landmark masks)"


def open_engine(cfg: EngineConfig, footage: Footage = Footage.PEOPLE) -> tuple[Engine, str]:
    """The engine and a one-line description of the choice (printed at start).

    footage: what the frames show (Config.footage); it decides auto without weights, and photos are read
    one by one by an engine that otherwise follows people across frames."""
    if cfg.kind == "onnxruntime" and cfg.onnxruntime.model is not None:
        return _onnxruntime(cfg, cfg.onnxruntime.model)
    if cfg.kind == "mediapipe":
        return _mediapipe(cfg, footage), LEARNED
    if cfg.kind != "keying":
        from livematte.model.checkpoint import CheckpointError, find_weights

        try:
            path = (Path(cfg.e2ehim.weights) if cfg.e2ehim.weights.endswith(".safetensors")
                    else find_weights(cfg.e2ehim.weights))
            if not path.is_file():
                raise CheckpointError(f"weights file {path} not found; "
                                      "import the checkpoint with `livematte weights import PATH`")
        except CheckpointError as exc:
            if cfg.kind != "auto":
                raise EngineError(str(exc)) from None
            if footage is Footage.DRAWN:
                return _keying(cfg), (f"no E2E-HIM weights installed: the synthetic scene's drawn figures on a green "
                                      f"screen go to the CPU keying engine ({cfg.keying.mode} key)")
            return _mediapipe(cfg, footage), (f"no E2E-HIM weights installed: using the {LEARNED}; import weights "
                                              "with `livematte weights import PATH`")
        network = {"onnxruntime": _onnxruntime, "tensorrt": _tensorrt}.get(cfg.kind, _e2ehim)
        return network(cfg, path)
    return _keying(cfg), f"keying engine ({cfg.keying.mode} key)"


def _mediapipe(cfg: EngineConfig, footage: Footage) -> Engine:
    from livematte.engine.mediapipe_engine import MediaPipeEngine
    from livematte.mediapipe.models import ModelError

    try:
        return MediaPipeEngine(cfg.mediapipe, stills=footage is Footage.PHOTOS)
    except ModelError as exc:
        raise EngineError(f"engine.kind {cfg.kind}: {exc}") from None


def _keying(cfg: EngineConfig) -> Engine:
    from livematte.engine.keying import KeyingEngine, KeyingSettings

    return KeyingEngine(KeyingSettings.from_config(cfg.keying))


def _e2ehim(cfg: EngineConfig, path: Path) -> tuple[Engine, str]:
    import torch

    from livematte.engine.torch_engine import TorchEngine

    e = cfg.e2ehim
    device = e.device if e.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineError("engine.e2ehim.device is cuda but torch sees no CUDA device: install a CUDA build of torch, "
                          "or set --set engine.e2ehim.device=cpu")
    engine = TorchEngine(path, device=device, input_size=e.input_size, fp16=e.fp16, cuda_graphs=e.cuda_graphs)
    return engine, f"E2E-HIM ({path.name}) on {device} {engine.precision}{' CUDA graphs' if e.cuda_graphs else ''}"


def _onnxruntime(cfg: EngineConfig, model: Path) -> tuple[Engine, str]:
    """model: an exported graph, or installed weights to export on first use."""
    from livematte.engine.onnx import OnnxRuntimeEngine, resolve_device
    from livematte.export.onnx import ExportError

    o = cfg.onnxruntime
    try:
        device = resolve_device(o.device)
        engine = OnnxRuntimeEngine(model, device=device, input_size=o.input_size)
    except (ExportError, ValueError) as exc:
        raise EngineError(f"engine.onnxruntime: {exc}") from None
    return engine, f"E2E-HIM through ONNX Runtime ({model.name}) on {device}"


def _tensorrt(cfg: EngineConfig, path: Path) -> tuple[Engine, str]:
    from livematte.engine.tensorrt import TensorRTEngine
    from livematte.export.onnx import ExportError

    t = cfg.tensorrt
    try:
        engine = TensorRTEngine(path, input_size=t.input_size, max_batch=t.max_batch, precision=t.precision)
    except (ExportError, ValueError) as exc:
        raise EngineError(f"engine.tensorrt: {exc}") from None
    return engine, f"E2E-HIM as a TensorRT {t.precision} engine ({path.name}), batch up to {t.max_batch}"
