"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from livematte.mediapipe.models import FETCH_COMMAND, MODELS, missing_models
from livematte.paths import models_dir

SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture
def shared_media() -> Path:
    """../shared/media (real multi-person footage); tests using it skip where it is absent."""
    if not (SHARED_MEDIA / "video_test2.mp4").exists():
        pytest.skip(f"shared media not found at {SHARED_MEDIA}")
    return SHARED_MEDIA


@pytest.fixture
def optional_media() -> Path | None:
    """../shared/media where present, else None: for tests that also run on frames of their own."""
    return SHARED_MEDIA if (SHARED_MEDIA / "video_test2.mp4").exists() else None


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own user cache directory, so installed weights never leak between tests."""
    monkeypatch.setenv("LIVEMATTE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def models() -> dict[str, Path]:
    """The learned engine's model files by name; the test fails (not skips) without them: `make test`
    fetches them (scripts/setup.sh), they are part of the set-up."""
    missing = missing_models()
    if missing:
        pytest.fail(f"model files missing in {models_dir()}: {', '.join(m.name for m in missing)}; "
                    f"run `{FETCH_COMMAND}`")
    return {m.name: models_dir() / m.name for m in MODELS}
