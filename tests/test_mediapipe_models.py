"""The learned engine's model files: where they come from, their checks, and the errors a user sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from livematte.config import load_config
from livematte.engine.base import EngineError
from livematte.engine.choose import open_engine
from livematte.mediapipe.litert import LiteModel
from livematte.mediapipe.models import MODELS, POSE_LANDMARKS, ModelError, fetch_models, missing_models, model_path


def wheel_with(path, files: dict[str, bytes]):
    """A wheel-shaped zip holding `files` (member -> bytes)."""
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def test_models_are_taken_from_a_wheel_and_checked(models, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEMATTE_MODELS_DIR", str(tmp_path / "models"))
    assert missing_models() == list(MODELS)
    wheel = wheel_with(tmp_path / "mediapipe.whl", {m.member: models[m.name].read_bytes() for m in MODELS}
                       | {"mediapipe/other/big.bin": b"not wanted"})
    paths = fetch_models(wheel)
    assert missing_models() == [] and sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        m.name for m in MODELS)  # only the model files are kept
    assert all(model_path(m) == p for m, p in zip(MODELS, paths))


def test_a_wheel_with_other_files_is_refused_and_nothing_is_written(models, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEMATTE_MODELS_DIR", str(tmp_path / "models"))
    wrong = {m.member: models[m.name].read_bytes() for m in MODELS} | {POSE_LANDMARKS.member: b"tampered"}
    with pytest.raises(ModelError, match="fails its sha256 check"):
        fetch_models(wheel_with(tmp_path / "wrong.whl", wrong))
    assert not (tmp_path / "models" / POSE_LANDMARKS.name).exists()
    (tmp_path / "junk.whl").write_bytes(b"no zip")
    with pytest.raises(ModelError, match="not a readable wheel"):
        fetch_models(tmp_path / "junk.whl")


def test_missing_and_damaged_models_name_the_command_that_fixes_them(models, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEMATTE_MODELS_DIR", str(tmp_path))
    cfg = load_config(overrides=["engine.kind=mediapipe"]).engine
    with pytest.raises(EngineError, match=r"pose_detection.tflite is missing: run `livematte models fetch`"):
        open_engine(cfg)
    for model in MODELS:
        shutil.copy(models[model.name], tmp_path / model.name)
    data = bytearray((tmp_path / POSE_LANDMARKS.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / POSE_LANDMARKS.name).write_bytes(bytes(data))
    with pytest.raises(EngineError, match=r"pose_landmark_full.tflite is damaged .*run `livematte models fetch`"):
        open_engine(cfg)
    with pytest.raises(ModelError, match="damaged"):
        LiteModel(POSE_LANDMARKS, threads=1)


def test_a_run_on_real_footage_without_models_exits_2_with_the_fix_and_no_traceback(tmp_path):
    env = os.environ | {"LIVEMATTE_MODELS_DIR": str(tmp_path / "none")}
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), np.full((64, 64, 3), 128, np.uint8))
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "run", "--set", "source.kind=images", "--set",
                             "source.path=photos", "--set", "sinks.0.kind=null"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "livematte models fetch" in result.stderr and "Traceback" not in result.stderr


def test_models_list_reports_each_file(models):
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "models", "list"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.count(" ok ") == len(MODELS)
