"""E2E-HIM with random weights as a config's engine, for benchmarks: the network's speed does not depend
on its weights' values, and the official checkpoint is not available here."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from livematte.model.e2ehim import E2EHIM


def random_network(folder: Path, input_size: tuple[int, int], device: str = "cpu") -> list[str]:
    """Writes folder/random.safetensors (torch seed 0); the config overrides that make it the engine."""
    weights = folder / "random.safetensors"
    torch.manual_seed(0)
    save_file(E2EHIM().state_dict(), str(weights))
    return ["engine.kind=e2ehim", f"engine.e2ehim.weights={weights}", f"engine.e2ehim.device={device}",
            f"engine.e2ehim.input_size=[{input_size[0]}, {input_size[1]}]"]
