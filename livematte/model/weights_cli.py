"""`livematte weights import PATH [--name NAME]` and `livematte weights list`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from livematte.model.checkpoint import DEFAULT_NAME, CheckpointError, import_checkpoint, installed_weights


def add_weights_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `weights` and its commands; each sets `func(args) -> int` (the exit status)."""
    parser = subparsers.add_parser("weights", help="import and list E2E-HIM weights")
    commands = parser.add_subparsers(dest="weights_command", required=True)
    imp = commands.add_parser("import", help="verify an official E2E-HIM checkpoint (.pth) and install it")
    imp.add_argument("path", type=Path, help="the official Swin-Tiny checkpoint file")
    imp.add_argument("--name", default=DEFAULT_NAME, help=f"name to install it under (default {DEFAULT_NAME})")
    imp.set_defaults(func=run_import)
    lst = commands.add_parser("list", help="show installed weights")
    lst.set_defaults(func=run_list)
    return parser


def run_import(args: argparse.Namespace) -> int:
    try:
        weights = import_checkpoint(args.path, args.name)
    except CheckpointError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 1
    Console().print(f"installed [bold]{weights.name}[/bold]: {weights.tensors} tensors -> {weights.path}\n"
                    f"source sha256 {weights.source_sha256}", highlight=False, soft_wrap=True)
    return 0


def run_list(args: argparse.Namespace) -> int:
    found = installed_weights()
    console = Console()
    if not found:
        console.print("no weights installed; run `livematte weights import PATH`")
        return 0
    table = Table("name", "imported", "source sha256", "mapping", "file")
    for w in found:
        table.add_row(w.name, w.imported, w.source_sha256[:16], str(w.mapping_version), str(w.path))
    console.print(table)
    return 0
