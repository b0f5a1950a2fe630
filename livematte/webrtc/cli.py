"""`livematte serve`: the WebRTC demo server (needs the `webrtc` extra)."""

from __future__ import annotations

import argparse
import logging

from livematte.cli_args import add_config_args
from livematte.config import load_config, preset_path

SERVE_CONFIG = preset_path("serve.yaml")


def add_serve_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `serve`; it sets `func(args) -> int` (the exit status)."""
    parser = subparsers.add_parser("serve", help="WebRTC demo: a page sends its camera and gets it back processed")
    add_config_args(parser, SERVE_CONFIG, example="serve.port=8081")
    parser.set_defaults(func=run_serve)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    logging.getLogger().setLevel(cfg.run.log_level.upper())
    try:
        from pipelines.webrtc import serve
    except ModuleNotFoundError as exc:
        if exc.name not in ("aiortc", "aiohttp"):
            raise
        logging.getLogger(__name__).error("`livematte serve` needs aiortc and aiohttp: pip install -e '.[webrtc]'")
        return 2
    serve(cfg)
    return 0
