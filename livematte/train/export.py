"""Install trained weights where the product finds them: the same safetensors file and JSON record
as `livematte weights import` writes, so `--set engine.e2ehim.weights=NAME` runs them."""

from __future__ import annotations

from pathlib import Path

from livematte.model.checkpoint import InstalledWeights, install_weights
from livematte.train.checkpoints import model_weights


def install_trained(checkpoint: Path, name: str) -> InstalledWeights:
    """Install the model of a training checkpoint under `name` (replacing weights of that name)."""
    return install_weights(model_weights(checkpoint), checkpoint.resolve(), name)
