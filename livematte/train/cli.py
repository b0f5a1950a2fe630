"""`livematte train --config configs/train_X.yaml [--set key=value] [--resume [CHECKPOINT]] [--install CHECKPOINT]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from livematte.model.checkpoint import CheckpointError, InstalledWeights
from livematte.train.checkpoints import TrainCheckpointError, latest_checkpoint
from livematte.train.config import load_train_config
from livematte.train.layout import LayoutError

console = Console(stderr=True)


def add_train_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser("train", help="train E2E-HIM on your own data (configs/train_*.yaml)")
    parser.add_argument("--config", required=True, metavar="FILE", help="training preset, e.g. configs/train_tiny.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set run.batch_size=4 (repeatable)")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                        help="continue the run from its newest checkpoint in run.out (or from CHECKPOINT)")
    parser.add_argument("--install", type=Path, metavar="CHECKPOINT",
                        help="do not train: install the weights of CHECKPOINT under run.install_as")
    parser.set_defaults(func=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    from livematte.train.export import install_trained
    from livematte.train.trainer import Trainer

    cfg = load_train_config(args.config, args.overrides)
    try:
        if args.install is not None:
            if not cfg.run.install_as:
                raise CheckpointError("set the name to install under: --set run.install_as=NAME")
            _print_installed(install_trained(args.install, cfg.run.install_as))
            return 0
        resume = None
        if args.resume == "latest":
            resume = latest_checkpoint(cfg.run.out)
            if resume is None:
                raise TrainCheckpointError(f"no checkpoint in {cfg.run.out / 'checkpoints'} to resume; start without "
                                           "--resume or pass a checkpoint file")
        elif args.resume is not None:
            resume = Path(args.resume)
        result = Trainer(cfg, resume).run(show_progress=console.is_terminal)
    except (LayoutError, TrainCheckpointError, CheckpointError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    console.print(f"step {result.step}: loss {result.first_loss:.4f} (first logged) -> {result.last_loss:.4f}; "
                  f"log {result.log}, plot {result.plot}", highlight=False, soft_wrap=True)
    if result.installed is not None:
        _print_installed(result.installed)
    print(result.checkpoint.resolve())
    return 0


def _print_installed(weights: InstalledWeights) -> None:
    console.print(f"installed [bold]{weights.name}[/bold] -> {weights.path}; run it with "
                  f"--set engine.e2ehim.weights={weights.name}", highlight=False, soft_wrap=True)
