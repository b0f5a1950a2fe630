"""Training checkpoints: model (our tensor names), optimizer, schedule, loss scaler, step and RNG
states, so a resumed run continues exactly where the saved one stopped.

Files are out/checkpoints/step_NNNNNNNN.pt, written atomically; only the newest few are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from livematte.model.build import build_model
from livematte.model.e2ehim import E2EHIM

FORMAT = "livematte-train-checkpoint"
VERSION = 1


class TrainCheckpointError(Exception):
    """A checkpoint that cannot be used, and what to do instead."""


@dataclass(frozen=True)
class TrainingState:
    """The objects a checkpoint saves and restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save_checkpoint(run_dir: Path, state: TrainingState, step: int, config: dict[str, Any], keep: int) -> Path:
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    content = {"format": FORMAT, "version": VERSION, "step": step, "config": config,
               "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
               "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(), "rng": rng}
    partial = path.with_suffix(".partial")
    torch.save(content, partial)
    partial.replace(path)
    for old in sorted(folder.glob("step_*.pt"))[:-keep]:
        old.unlink()
    return path


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(checkpoint_dir(run_dir).glob("step_*.pt"))
    return found[-1] if found else None


def read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrainCheckpointError(f"checkpoint {path} not found; "
                                   "pass a step_*.pt file from a run's checkpoints/ folder")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for damaged or foreign files
        raise TrainCheckpointError(f"{path}: not a readable training checkpoint ({exc}); "
                                   "use another step_*.pt") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise TrainCheckpointError(f"{path} is not a livematte training checkpoint; an official E2E-HIM checkpoint is "
                                   "installed with `livematte weights import PATH` instead")
    return content


def model_weights(path: Path) -> dict[str, Tensor]:
    """The model's state dict (our names) from a training checkpoint."""
    return read_checkpoint(path)["model"]


def load_network(weights: str) -> E2EHIM:
    """An installed weights name, a .safetensors file, or a training checkpoint (.pt)."""
    if weights.endswith(".pt"):
        return build_model(model_weights(Path(weights)))
    return build_model(weights)


def restore(path: Path, state: TrainingState) -> int:
    """Load everything into `state` and the RNGs; returns the step the checkpoint was taken at."""
    content = read_checkpoint(path)
    state.model.load_state_dict(content["model"], strict=True)
    try:
        state.optimizer.load_state_dict(content["optimizer"])
    except ValueError as exc:
        raise TrainCheckpointError(f"{path}: its optimizer state does not fit this run ({exc}); model.freeze_backbone "
                                   "must be as it was when the checkpoint was written") from None
    state.scheduler.load_state_dict(content["scheduler"])
    state.scaler.load_state_dict(content["scaler"])
    torch.set_rng_state(content["rng"]["torch"])
    if "cuda" in content["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(content["rng"]["cuda"])
    return int(content["step"])
