"""The learned engine's model files for tests: `make test` fetches them (scripts/setup.sh)."""

from __future__ import annotations

import pytest

from livematte.mediapipe.models import FETCH_COMMAND, MODELS, missing_models
from livematte.paths import models_dir


@pytest.fixture
def models():
    """The folder holding the model files; the suite fails (not skips) without them: they are part of the set-up."""
    missing = missing_models()
    if missing:
        pytest.fail(f"model files missing in {models_dir()}: {', '.join(m.name for m in missing)}; run `{FETCH_COMMAND}`")
    return {m.name: models_dir() / m.name for m in MODELS}
