"""Arguments several `livematte` commands share: a preset with --set overrides, a WxH size, a count."""

from __future__ import annotations

import argparse
from pathlib import Path

from livematte.config import DEFAULT_CONFIG


def add_config_args(parser: argparse.ArgumentParser, default: Path = DEFAULT_CONFIG,
                    example: str = "source.people=6") -> None:
    parser.add_argument("--config", metavar="FILE", default=default,
                        help=f"YAML preset (default: configs/{default.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one setting, e.g. --set {example} (repeatable)")


def size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT -> (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write WIDTHxHEIGHT, e.g. 1280x720") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be at least 1")
    return height, width


def positive(text: str) -> int:
    """A count of at least 1 (argparse answers anything else with the option's name and exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value
