"""What every benchmark report shares: the machine it ran on, and where its JSON goes."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC ..."), or the architecture where /proc/cpuinfo has none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # how libgomp's threads wait between parallel regions


def openmp_wait() -> dict:
    """How OpenMP's threads wait between parallel regions in this process (livematte/memory.py's tune_process
    sets it)."""
    return {name: os.environ.get(name) for name in OPENMP_VARIABLES}


def environment_with_openmp_wait(variables: dict[str, str]) -> dict[str, str]:
    """This process's environment for a child, its OpenMP wait set by `variables` alone (none: the child's
    livematte chooses)."""
    return {k: v for k, v in os.environ.items() if k not in OPENMP_VARIABLES} | variables


def machine() -> dict:
    """CPU, cores, load average now (the machines are shared: it says how much of them a run got), Python,
    OpenMP's wait."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "openmp_wait": openmp_wait()}


def report_path(folder: Path, stem: str) -> Path:
    """<folder>/<stem>_<date>.json; the folder is created."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}_{dt.date.today().isoformat()}.json"


def write_report(report: dict, folder: Path, stem: str) -> Path:
    """Write <folder>/<stem>_<date>.json and return its path."""
    path = report_path(folder, stem)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
