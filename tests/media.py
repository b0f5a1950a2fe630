"""Real media files the tests make with ffmpeg (installed by scripts/setup.sh --test)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg is not installed; run scripts/setup.sh --test")
    return path


def make_clip(path: Path, frames: int = 40, size: str = "160x120", rate: int = 25, codec: str = "libx264") -> Path:
    """A test-pattern clip (H.264 by default; pick ffv1 in .mkv for odd sizes)."""
    pix = ["-pix_fmt", "yuv420p"] if codec == "libx264" else []
    subprocess.run([ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}",
                    "-frames:v", str(frames), "-c:v", codec, *pix, "-g", "10", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
