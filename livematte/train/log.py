"""The training log: one JSON record per logged step in out/log.jsonl, and its loss plot (loss.png)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class TrainLog:
    """Appends records; on resume, drops records written after the checkpoint being resumed."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_log(path) if resume_step is not None and r["step"] <= resume_step]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(log: Path, out: Path) -> Path:
    """Total loss and each term against the step, log scale."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("the loss plot needs matplotlib: pip install 'livematte[train]'") from None
    records = read_log(log)
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key in ("total", "classification", "seg_focal", "seg_dice", "trimap", "alpha"):
        ax.plot(steps, [max(r["loss"][key], 1e-8) for r in records], label=key,
                linewidth=2.0 if key == "total" else 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
