"""`livematte export onnx` and `livematte export tensorrt`: build the accelerated engines ahead of time.

Without --out both write to the user cache, where engine.kind onnxruntime / tensorrt find them, so
the first run of the pipeline does not pay for the export or the build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from livematte.cli_args import size
from livematte.export.onnx import ExportError, cached_export, export_onnx, max_difference
from livematte.model.checkpoint import DEFAULT_NAME, CheckpointError

PARITY = 1e-4  # largest |ONNX Runtime - torch| accepted for an fp32 export


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `export` and its commands; each sets `func(args) -> int` (the exit status)."""
    parser = subparsers.add_parser("export", help="export E2E-HIM to ONNX, build a TensorRT engine")
    commands = parser.add_subparsers(dest="export_command", required=True)
    onnx = commands.add_parser("onnx", help="export to ONNX (fixed size, any batch) and check it against torch")
    tensorrt = commands.add_parser("tensorrt", help="build the TensorRT engine into the user cache (CUDA GPU)")
    for command, precision in ((onnx, "fp32"), (tensorrt, "fp16")):
        command.add_argument("--weights", default=DEFAULT_NAME,
                             help=f"installed weights name or .safetensors path (default {DEFAULT_NAME})")
        command.add_argument("--size", type=size, default=(352, 640), metavar="WxH",
                             help="network input size, multiples of 32 (default 640x352)")
        command.add_argument("--precision", choices=("fp32", "fp16"), default=precision,
                             help=f"fp16 is the graph TensorRT builds its FP16 engine from (default {precision})")
    onnx.add_argument("--out", type=Path, help="the .onnx file to write (default: the user cache, used by the engine)")
    onnx.set_defaults(func=run_onnx)
    tensorrt.add_argument("--max-batch", type=int, default=4, help="largest batch the engine accepts (default 4)")
    tensorrt.set_defaults(func=run_tensorrt)
    return parser


def _failed(exc: Exception) -> int:
    Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return 2


def run_onnx(args: argparse.Namespace) -> int:
    console = Console()
    try:
        if args.out is None:
            path = cached_export(args.weights, args.size, args.precision)
        else:
            path = export_onnx(args.weights, args.out, args.size, args.precision)
        differences = max_difference(args.weights, path)
    except (ExportError, CheckpointError, ValueError) as exc:
        return _failed(exc)
    console.print(f"wrote {path} (checked with onnx.checker)", highlight=False, soft_wrap=True)
    console.print("largest |ONNX Runtime - torch| on a random batch of 2: "
                  + ", ".join(f"{name} {value:.1e}" for name, value in differences.items()), highlight=False)
    if args.precision == "fp32" and max(differences.values()) > PARITY:
        console.print(f"[red]the export differs from torch by more than {PARITY:g}[/red]")
        return 1
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    from livematte.engine.tensorrt import cached_plan

    try:
        path = cached_plan(args.weights, args.size, args.max_batch, args.precision)
    except (ExportError, CheckpointError, ValueError) as exc:
        return _failed(exc)
    Console().print(f"TensorRT engine: {path}", highlight=False, soft_wrap=True)
    return 0
