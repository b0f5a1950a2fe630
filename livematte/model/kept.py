"""Tensors derived from a module's weight (a packed or transformed copy), kept between calls.

Fast CPU paths keep what they derive from a weight: NNPACK's kernel transforms (conv.py), oneDNN's
packed matrices (linear.py). They are valid while the weight is unchanged and only in eager fp32
inference, where nothing needs the derivation differentiable or traced.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def tracing() -> bool:
    """torch.compile, torch.export or a TorchScript trace is recording: tensors made now must not be kept."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


def eager_cpu_inference(x: Tensor) -> bool:
    """x is fp32 on the CPU, with no gradient, autocast, compile, export or trace around."""
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu") and not tracing())


class KeptWeights:
    """Tensors derived from a module's weight, kept while the weight is unchanged (same storage, same
    version) and nothing wants them differentiable or traced; `make` builds one when needed.
    Each name holds one tensor; a change of the weight drops them all."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._kept: dict[str, Tensor] = {}

    @staticmethod
    def keeps(weight: Tensor) -> bool:
        """Whether derivations of this weight may be kept; an inference tensor keeps no version to watch."""
        return not ((torch.is_grad_enabled() and weight.requires_grad) or weight.is_inference() or tracing())

    def get(self, weight: Tensor, name: str, make: Callable[[], Tensor]) -> Tensor:
        if not self.keeps(weight):
            return make()
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if key != self._key:
            self._key, self._kept = key, {}
        if name not in self._kept:
            with torch.autocast(weight.device.type, enabled=False):  # kept in the weight's dtype, for any caller
                self._kept[name] = make()
        return self._kept[name]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self._kept.values())
