"""One .tflite model run with LiteRT (XNNPACK on the CPU), outputs by name."""

from __future__ import annotations

import numpy as np

from livematte.mediapipe.models import FETCH_COMMAND, ModelError, ModelFile, model_path


class LiteModel:
    """A loaded model with one float32 input; not thread-safe (one interpreter, one call at a time)."""

    def __init__(self, model: ModelFile, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(f"LiteRT is not installed ({exc}): pip install ai-edge-litert (a dependency of "
                             "livematte; reinstall livematte to get it)") from None
        path = model_path(model)
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"LiteRT cannot load {path} ({exc}): run `{FETCH_COMMAND}` to fetch it again") from None
        (self._input,) = self._interpreter.get_input_details()
        self._outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}

    @property
    def input_shape(self) -> tuple[int, int]:
        """(height, width) of the input picture."""
        return int(self._input["shape"][1]), int(self._input["shape"][2])

    def __call__(self, picture: np.ndarray) -> dict[str, np.ndarray]:
        """picture: (H, W, 3) float32 at input_shape; each output without its batch axis."""
        self._interpreter.set_tensor(self._input["index"], picture[None])
        self._interpreter.invoke()
        return {name: self._interpreter.get_tensor(index)[0] for name, index in self._outputs.items()}
