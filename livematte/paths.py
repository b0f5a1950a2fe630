"""Where livematte keeps per-user files (installed weights, engine caches, model files), and their checks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The user cache directory (XDG on Linux); LIVEMATTE_CACHE_DIR overrides it (tests use that)."""
    override = os.environ.get("LIVEMATTE_CACHE_DIR")
    path = Path(override) if override else Path(platformdirs.user_cache_dir("livematte"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Where `livematte models fetch` keeps the learned engine's model files: the user cache (not
    LIVEMATTE_CACHE_DIR, which tests point at empty folders); LIVEMATTE_MODELS_DIR overrides it."""
    override = os.environ.get("LIVEMATTE_MODELS_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("livematte")) / "models"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (weights and models are hundreds of MB at most)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
