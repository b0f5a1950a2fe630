"""`livematte eval DATA (--weights W | --predictions DIR) [--input-size WxH] ...`: metrics, JSON, table."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from livematte.model.checkpoint import CheckpointError
from livematte.train.checkpoints import TrainCheckpointError
from livematte.train.layout import LayoutError

console = Console(stderr=True)


def _input_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, multiples of 32 -> (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write WIDTHxHEIGHT, e.g. 640x640") from None
    if width <= 0 or height <= 0 or width % 32 or height % 32:
        raise argparse.ArgumentTypeError(f"{text}: both sides must be positive multiples of 32, e.g. 640x640")
    return height, width


def add_eval_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser("eval", help="instance, image and temporal matting metrics on a dataset")
    parser.add_argument("data", type=Path, help="image-instance dataset: images/NAME.jpg + alphas/NAME/00.png ...")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="installed weights name, .safetensors file or training checkpoint (.pt)")
    source.add_argument("--predictions", type=Path, metavar="DIR",
                        help="mattes to score, in DIR/alphas/NAME/00.png ...")
    parser.add_argument("--input-size", type=_input_size, default=(640, 640), metavar="WxH",
                        help="network input, letterboxed (default 640x640, the official size)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threshold", type=float, default=0.5, help="p(human) a query needs (official 0.5)")
    parser.add_argument("--min-area", type=float, default=1000.0,
                        help="smallest matte area in pixels at image size (official 1000)")
    parser.add_argument("--sequence", action="store_true",
                        help="the images are consecutive frames and NN.png the same person throughout: adds dtSSD")
    parser.add_argument("--out", type=Path, default=Path("out/eval/report.json"), help="JSON report path")
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from livematte.eval.evaluate import evaluate
    from livematte.eval.predictors import FolderPredictor, ModelPredictor
    from livematte.eval.report import device_name, print_report, write_report
    from livematte.train.layout import list_samples

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        files = list_samples(args.data)
        if args.predictions is not None:
            predict, about = FolderPredictor(args.predictions), {"predictions": str(args.predictions.resolve())}
        else:
            predict = ModelPredictor(args.weights, args.input_size, device, args.threshold, args.min_area)
            about = {"weights": args.weights, "device": device_name(device),
                     "input_size": list(args.input_size), "threshold": args.threshold, "min_area": args.min_area}
        report = evaluate(files, predict, sequence=args.sequence, show_progress=console.is_terminal)
    except (LayoutError, CheckpointError, TrainCheckpointError, RuntimeError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    path = write_report(report, args.out, {"data": str(args.data.resolve()), **about, "sequence": args.sequence})
    print_report(report, Console())
    print(path.resolve())
    return 0
