"""The network from what a caller has: a ready module, a state dict, a safetensors file or an installed name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Union

from torch import Tensor

from livematte.model.checkpoint import find_weights, load_into, read_weights
from livematte.model.e2ehim import E2EHIM

Weights = Union[str, Path, Mapping[str, Tensor], E2EHIM]


def build_model(weights: Weights, fused_alpha: bool = True) -> E2EHIM:
    """A model from a ready module, a state dict with our names, a safetensors path or an installed name.

    fused_alpha: see E2EHIM; a ready module of the other kind is copied into one of this kind.
    """
    if isinstance(weights, E2EHIM) and weights.alpha.fused == fused_alpha:
        return weights
    model = E2EHIM(fused_alpha=fused_alpha)
    if isinstance(weights, E2EHIM):
        model.load_state_dict(weights.state_dict())
    elif isinstance(weights, Mapping):
        load_into(model, weights)
    else:
        path = Path(weights)
        if not path.is_file():
            path = find_weights(str(weights))
        load_into(model, read_weights(path), what=str(path))
    return model
