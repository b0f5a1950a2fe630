"""Which weights an exported graph or engine plan was made from: the key of the export caches.

Installed weights are named by the sha256 of the official checkpoint they were imported from (kept
in their safetensors metadata at import), so the key is known without reading 280 MB; anything
else is named by a hash of its tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

from livematte.model.build import Weights
from livematte.model.checkpoint import find_weights, read_weights
from livematte.model.e2ehim import E2EHIM


def weights_id(weights: Weights) -> str:
    """A hex sha256 that changes whenever any weight changes."""
    if isinstance(weights, E2EHIM):
        return tensors_id(weights.state_dict())
    if isinstance(weights, Mapping):
        return tensors_id(weights)
    path = Path(weights)
    if not path.is_file():
        path = find_weights(str(weights))
    with safe_open(str(path), "pt") as f:
        source = (f.metadata() or {}).get("source_sha256")
    return source or tensors_id(read_weights(path))


def tensors_id(state: Mapping[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
