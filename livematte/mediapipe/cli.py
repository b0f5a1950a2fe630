"""`livematte models fetch [--wheel FILE]` and `livematte models list`: the learned engine's model files."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from livematte.mediapipe.models import MODELS, WHEEL, ModelError, fetch_models, missing_models
from livematte.paths import models_dir


def add_models_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `models` and its commands; each sets `func(args) -> int` (the exit status)."""
    parser = subparsers.add_parser("models", help="fetch and list the learned CPU engine's model files")
    commands = parser.add_subparsers(dest="models_command", required=True)
    fetch = commands.add_parser("fetch", help=f"download {WHEEL} from PyPI once and keep its person models")
    fetch.add_argument("--wheel", type=Path, help=f"use a {WHEEL} wheel file you downloaded instead")
    fetch.set_defaults(func=run_fetch)
    lst = commands.add_parser("list", help="show the model files and whether each is in place")
    lst.set_defaults(func=run_list)
    return parser


def run_fetch(args: argparse.Namespace) -> int:
    try:
        paths = fetch_models(args.wheel)
    except ModelError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 1
    Console().print(f"{len(paths)} model files in place (sha256 checked) in {models_dir()}", highlight=False,
                    soft_wrap=True)
    return 0


def run_list(args: argparse.Namespace) -> int:
    missing = {m.name for m in missing_models()}
    table = Table("file", "state", "what", "sha256")
    for model in MODELS:
        table.add_row(model.name, "missing or damaged" if model.name in missing else "ok", model.what,
                      model.sha256[:16])
    console = Console()
    console.print(f"{models_dir()} (from the {WHEEL} wheel, Apache-2.0)", highlight=False, soft_wrap=True)
    console.print(table)
    if missing:
        console.print("run `livematte models fetch` to put them in place")
    return 0
