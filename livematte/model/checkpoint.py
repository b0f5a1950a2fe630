"""Import of the official E2E-HIM checkpoint and loading of installed weights.

Importing reads the official .pth once, checks every tensor against the manifest of the official
layout (official_manifest.tsv, shipped with the package), renames to our modules and stores a
safetensors file plus a JSON record in <cache>/weights/. Loading is strict: a model never runs with
a tensor missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from livematte.model.official_names import MAPPING_VERSION, is_unused, our_name
from livematte.paths import cache_dir, file_sha256

DEFAULT_NAME = "e2ehim-swin-tiny"
FORMAT = "livematte-e2ehim-swin-tiny"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHOWN = 20  # names listed per category in an error message
_IMPORT_HINT = ("Use the official E2E-HIM Swin-Tiny release checkpoint, unmodified, and run "
                "`livematte weights import PATH` again.")


class CheckpointError(Exception):
    """A checkpoint or installed weights file that cannot be used, and why."""


class CheckpointMismatch(CheckpointError):
    """Tensors missing, unexpected or of the wrong shape/dtype compared with the expected layout."""

    def __init__(self, what: str, missing: list[str], extra: list[str], mismatched: list[str], hint: str) -> None:
        self.missing, self.extra, self.mismatched = missing, extra, mismatched
        lines = [f"{what} does not have the expected layout:"]
        for title, names in (("missing", missing), ("unexpected", extra), ("wrong shape or dtype", mismatched)):
            if names:
                lines.append(f"  {len(names)} {title}:")
                lines += [f"    {n}" for n in names[:_SHOWN]]
                if len(names) > _SHOWN:
                    lines.append(f"    ... and {len(names) - _SHOWN} more")
        lines.append(hint)
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: torch.dtype

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.shape)) or 'scalar'} {str(self.dtype).removeprefix('torch.')}"


@dataclass(frozen=True)
class InstalledWeights:
    """One imported checkpoint in the cache: the safetensors file and where it came from."""

    name: str
    path: Path
    source: str
    source_sha256: str
    mapping_version: int
    imported: str  # ISO 8601, UTC
    tensors: int


def official_manifest() -> dict[str, TensorSpec]:
    """Every tensor of the official checkpoint: name -> shape and dtype."""
    text = resources.files("livematte.model").joinpath("official_manifest.tsv").read_text()
    manifest = {}
    for line in text.splitlines()[1:]:
        name, shape, dtype = line.split("\t")
        manifest[name] = TensorSpec(tuple(int(s) for s in shape.split("x")), getattr(torch, dtype))
    return manifest


def _spec(tensor: Tensor) -> TensorSpec:
    return TensorSpec(tuple(tensor.shape), tensor.dtype)


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state dict inside an official .pth: plain, or under "state_dict"/"model"; "module." stripped."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for damaged or foreign files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (damaged, truncated or another "
                              f"format): {exc}. {_IMPORT_HINT}") from exc
    for key in ("state_dict", "model"):
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
    if not isinstance(content, dict) or not all(isinstance(v, Tensor) for v in content.values()):
        raise CheckpointError(f"{path}: holds no state dict of tensors. {_IMPORT_HINT}")
    return {k.removeprefix("module."): v for k, v in content.items()}


def convert(official: Mapping[str, Tensor], what: str = "checkpoint") -> dict[str, Tensor]:
    """Verify an official-layout state dict against the manifest and rename it to our modules.

    Only the tensors the official network never uses may be absent; they are dropped.
    """
    manifest = official_manifest()
    missing = sorted(n for n in manifest.keys() - official.keys() if not is_unused(n))
    extra = sorted(official.keys() - manifest.keys())
    mismatched = sorted(f"{n}: expected {manifest[n].describe()}, got {_spec(official[n]).describe()}"
                        for n in manifest.keys() & official.keys() if _spec(official[n]) != manifest[n])
    if missing or extra or mismatched:
        raise CheckpointMismatch(what, missing, extra, mismatched, _IMPORT_HINT)
    broken = sorted(n for n, t in official.items() if t.is_floating_point() and not torch.isfinite(t).all())
    if broken:
        shown = ", ".join(broken[:_SHOWN]) + (f" and {len(broken) - _SHOWN} more" if len(broken) > _SHOWN else "")
        raise CheckpointError(f"{what}: {len(broken)} tensors hold NaN or infinite values ({shown}): the file is "
                              f"damaged or not a trained checkpoint. {_IMPORT_HINT}")
    return {our_name(n): t.contiguous() for n, t in official.items() if not is_unused(n)}


def weights_dir() -> Path:
    path = cache_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path



def import_checkpoint(path: Path, name: str = DEFAULT_NAME) -> InstalledWeights:
    """Read, verify and convert an official checkpoint; install it under `name` (replacing one)."""
    check_name(name)
    path = Path(path).expanduser().resolve()
    return install_weights(convert(read_checkpoint(path), what=str(path)), path, name)


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise CheckpointError(f"invalid weights name {name!r}: use letters, digits, '.', '_' or '-'")


def install_weights(tensors: Mapping[str, Tensor], source: Path, name: str) -> InstalledWeights:
    """Store a state dict with our names under `name` (replacing one): the safetensors file and its JSON
    record; `source` is the file it came from (an official checkpoint, a training checkpoint)."""
    check_name(name)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    record = InstalledWeights(name=name, path=weights_dir() / f"{name}.safetensors", source=str(source),
                              source_sha256=file_sha256(source), mapping_version=MAPPING_VERSION,
                              imported=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              tensors=len(tensors))
    weights, meta = record.path.with_suffix(".partial"), record.path.with_suffix(".json.partial")
    save_file(tensors, str(weights), metadata={"format": FORMAT, "mapping_version": str(MAPPING_VERSION),
                                               "source_sha256": record.source_sha256})
    meta.write_text(json.dumps(asdict(record) | {"path": record.path.name, "format": FORMAT}, indent=2) + "\n")
    weights.replace(record.path)  # both files are complete before either replaces an installed one
    meta.replace(record.path.with_suffix(".json"))
    return record


def remove_weights(name: str) -> Path:
    """Delete the installed weights called `name` (its file and record); the path it had."""
    path = find_weights(name)
    path.with_suffix(".json").unlink()
    path.unlink()
    return path


def installed_weights() -> list[InstalledWeights]:
    """All imported weights in the cache, by name."""
    found = []
    for meta in sorted(weights_dir().glob("*.json")):
        info = json.loads(meta.read_text())
        if info.get("format") != FORMAT:
            continue
        found.append(InstalledWeights(name=info["name"], path=meta.with_name(info["path"]), source=info["source"],
                                      source_sha256=info["source_sha256"],
                                      mapping_version=info["mapping_version"], imported=info["imported"],
                                      tensors=info["tensors"]))
    return found


def find_weights(name: str = DEFAULT_NAME) -> Path:
    """Path of the installed weights called `name`."""
    for weights in installed_weights():
        if weights.name == name and weights.path.is_file():
            return weights.path
    names = ", ".join(w.name for w in installed_weights()) or "none"
    raise CheckpointError(f"no installed weights named {name!r} (installed: {names}). Import the official "
                          "checkpoint with `livematte weights import PATH`.")


def read_weights(path: Path) -> dict[str, Tensor]:
    """Our state dict from an installed safetensors file."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable weights file ({exc}). Import the checkpoint again with "
                              "`livematte weights import PATH`.") from exc


def load_into(model: nn.Module, state: Mapping[str, Tensor], what: str = "weights") -> None:
    """Strict load: every tensor of the model must be present with its shape, and nothing else."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    extra = sorted(state.keys() - expected.keys())
    mismatched = sorted(f"{n}: expected {'x'.join(map(str, expected[n].shape))}, got "
                        f"{'x'.join(map(str, state[n].shape))}"
                        for n in expected.keys() & state.keys() if expected[n].shape != state[n].shape)
    if missing or extra or mismatched:
        raise CheckpointMismatch(what, missing, extra, mismatched,
                                 "Re-import the official checkpoint with `livematte weights import PATH`.")
    model.load_state_dict(state, strict=True)
