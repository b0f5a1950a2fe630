"""Where livematte keeps per-user files (installed weights, engine caches)."""

from __future__ import annotations

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
