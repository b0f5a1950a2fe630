"""The evaluation's outputs: a JSON file (raw values, with what was evaluated, where and when) and a
printed table in the customary units (SAD, Grad, Conn / 1000; MSE, MAD, EMSE, EMAD x 1000)."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from livematte.eval.evaluate import EvalReport


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def write_report(report: EvalReport, path: Path, about: dict[str, Any]) -> Path:
    """`about`: what was evaluated (data, predictions or weights, settings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), **about,
               "units": "raw: alphas in [0, 1]; SAD, Grad and Conn are sums over pixels", **report.to_dict()}
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def _cell(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def print_report(report: EvalReport, console: Console) -> None:
    console.print(f"{report.images} images, {report.people} people, {report.predicted} predicted", highlight=False)
    instances = Table("IoU", "REC", "ACC", "EMSE x1e3", "EMAD x1e3", "pairs", title="instances")
    for s in report.instance:
        instances.add_row(f"{s.iou:.2f}", _cell(s.rec), _cell(s.acc), _cell(s.emse, 1e3, 2), _cell(s.emad, 1e3, 2),
                          str(s.pairs))
    console.print(instances)
    m = report.image
    image = Table("SAD /1e3", "MSE x1e3", "MAD x1e3", "Grad /1e3", "Conn /1e3", "dtSSD x1e2", title="union matte")
    image.add_row(_cell(m.sad, 1e-3), _cell(m.mse, 1e3, 2), _cell(m.mad, 1e3, 2), _cell(m.grad, 1e-3),
                  _cell(m.conn, 1e-3), _cell(report.dtssd, 1e2, 2))
    console.print(image)
