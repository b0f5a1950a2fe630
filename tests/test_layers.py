"""The package graph: every import goes down the layers below, and no two parts import each other.

The network (livematte/model) imports nothing of the engines, export, training or evaluation, as in
Robust Video Matting's model/; the library never imports pipelines/. Command-line entry points (cli.py
files) sit above everything and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kernels", "livematte", "pipelines")
LAYERS = (  # bottom first; a part imports only parts of lower layers, or of its own layer without a cycle
    {"kernels"},
    {"livematte.paths", "livematte.frame", "livematte.mailbox", "livematte.memory", "livematte.signals",
     "livematte.synthetic"},
    {"livematte.config"},
    {"livematte.model", "livematte.mediapipe"},
    {"livematte.export"},
    {"livematte.engine"},
    {"livematte.tracking", "livematte.temporal", "livematte.stabilize", "livematte.skipping", "livematte.effects",
     "livematte.compositor", "livematte.sources", "livematte.sinks", "livematte.cli_args"},
    {"livematte.processor"},
    {"livematte.train"},
    {"livematte.eval"},
    {"livematte.webrtc"},
    {"pipelines"},
)
RANK = {part: rank for rank, layer in enumerate(LAYERS) for part in layer}


def part_of(module: str) -> str:
    """The layer unit of a module: livematte's subpackages and top-level modules, or a top-level package."""
    names = module.split(".")
    if names[0] == "livematte" and len(names) > 1:
        return f"livematte.{names[1]}"
    return names[0]


def is_entry_point(path: Path) -> bool:
    return path.name.endswith("cli.py") or path.name == "__main__.py"


def imports() -> dict[str, set[tuple[str, str]]]:
    """part -> {(imported part, importing file)}, entry points and the livematte/__init__.py apart."""
    edges: dict[str, set[tuple[str, str]]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if is_entry_point(path) or relative == Path("livematte/__init__.py"):
                continue
            source = part_of(".".join(relative.with_suffix("").parts))
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in PACKAGES and part_of(name) != source:
                        edges.setdefault(source, set()).add((part_of(name), str(relative)))
    return edges


def test_every_part_has_a_layer():
    parts = set(imports()) | {target for edges in imports().values() for target, _ in edges}
    assert parts - set(RANK) == set(), "add new parts to LAYERS"


def test_imports_go_down_the_layers():
    upward = sorted(f"{where} imports {target}" for source, edges in imports().items() for target, where in edges
                    if RANK[target] > RANK[source])
    assert upward == []


def test_no_two_parts_import_each_other():
    graph = {source: {target for target, _ in edges} for source, edges in imports().items()}
    visiting, done = set(), set()

    def visit(part: str, trail: tuple[str, ...]) -> None:
        if part in visiting:
            pytest.fail("import cycle: " + " -> ".join((*trail, part)))
        if part in done:
            return
        visiting.add(part)
        for target in sorted(graph.get(part, ())):
            visit(target, (*trail, part))
        visiting.discard(part)
        done.add(part)

    for part in sorted(graph):
        visit(part, ())


def test_the_network_imports_nothing_above_it():
    edges = imports()["livematte.model"]
    assert {target for target, _ in edges} <= {"kernels", "livematte.paths"}
