"""`livematte weights import PATH [--name NAME]`, `livematte weights list` and `livematte weights remove NAME`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from livematte.model.checkpoint import (
    DEFAULT_NAME,
    CheckpointError,
    import_checkpoint,
    installed_weights,
    remove_weights,
)


def add_weights_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `weights` and its commands; each sets `func(args) -> int` (the exit status)."""
    parser = subparsers.add_parser("weights", help="import, list and remove E2E-HIM weights")
    commands = parser.add_subparsers(dest="weights_command", required=True)
    imp = commands.add_parser("import", help="verify an official E2E-HIM checkpoint (.pth) and install it")
    imp.add_argument("path", type=Path, help="the official Swin-Tiny checkpoint file")
    imp.add_argument("--name", default=DEFAULT_NAME, help=f"name to install it under (default {DEFAULT_NAME})")
    imp.set_defaults(func=run_import)
    lst = commands.add_parser("list", help="show installed weights")
    lst.set_defaults(func=run_list)
    remove = commands.add_parser("remove", help="delete installed weights (engine.kind auto then uses the "
                                 "learned CPU engine, unless other weights are named)")
    remove.add_argument("name", help="the installed name (see `livematte weights list`)")
    remove.set_defaults(func=run_remove)
    return parser


def run_import(args: argparse.Namespace) -> int:
    try:
        weights = import_checkpoint(args.path, args.name)
    except CheckpointError as exc:
        return _failed(exc)
    Console().print(f"installed [bold]{weights.name}[/bold]: {weights.tensors} tensors -> {weights.path}\n"
                    f"source sha256 {weights.source_sha256}", highlight=False, soft_wrap=True)
    return 0


def run_list(args: argparse.Namespace) -> int:
    found = installed_weights()
    console = Console()
    if not found:
        console.print("no weights installed; run `livematte weights import PATH`")
        return 0
    columns = ("name", "imported", "source sha256", "mapping", "file")
    rows = [(w.name, w.imported, w.source_sha256, str(w.mapping_version), str(w.path)) for w in found]
    if not console.is_terminal:  # piped: whole values, one tab-separated line each, for scripts and grep
        print("\n".join("\t".join(row) for row in (columns, *rows)))
        return 0
    table = Table(*columns)
    for name, imported, sha, mapping, path in rows:
        table.add_row(name, imported, sha[:16], mapping, path)
    console.print(table)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    try:
        path = remove_weights(args.name)
    except CheckpointError as exc:
        return _failed(exc)
    Console().print(f"removed [bold]{escape(args.name)}[/bold] ({path})", highlight=False, soft_wrap=True)
    return 0


def _failed(exc: CheckpointError) -> int:
    Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return 1
