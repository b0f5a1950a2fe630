"""The camera of the WebRTC tests: a still synthetic scene (two people on a green screen), as frames, as a
.y4m file for Chromium's fake capture device, and with points inside each person and on the background."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from livematte.synthetic import SyntheticScene

WIDTH, HEIGHT, PEOPLE, SEED, FPS = 640, 360, 2, 0, 30
INSET = 6  # pixels a person point keeps from that person's edge (codec blur, keying ramps)


@dataclass(frozen=True)
class ScenePoints:
    """Fractions of (width, height): one point deep inside each person (left to right) and background points."""

    people: list[tuple[float, float]]
    background: list[tuple[float, float]]


def still_frame() -> tuple[np.ndarray, np.ndarray]:
    """The scene's picture (BGR) and its people's alphas; the scene stands still, so every frame is this one."""
    return SyntheticScene(WIDTH, HEIGHT, PEOPLE, seed=SEED, fps=FPS, motion=0).render(0)


def scene_points() -> ScenePoints:
    _, alphas = still_frame()
    people = []
    for alpha in alphas:
        inside = cv2.distanceTransform((alpha >= 0.999).astype(np.uint8), cv2.DIST_L2, 5)
        inside[int(HEIGHT * 0.7):] = 0  # the shirt, not the legs (thin, and close together)
        y, x = np.unravel_index(int(inside.argmax()), inside.shape)
        assert inside[y, x] >= INSET, "the scene's people are too thin for pixel checks"
        people.append((float(x + 0.5) / WIDTH, float(y + 0.5) / HEIGHT))
    people.sort()
    background = [(0.1, 0.15), (0.5, 0.2), (0.9, 0.15), (0.5, 0.85)]
    free = cv2.distanceTransform((alphas.max(axis=0) == 0).astype(np.uint8), cv2.DIST_L2, 5)
    assert all(free[int(fy * HEIGHT), int(fx * WIDTH)] > 20 for fx, fy in background)
    return ScenePoints(people, background)


def write_y4m(path: Path, frames: int = FPS, image: np.ndarray | None = None) -> Path:
    """A one-second .y4m of a still picture (default: the still scene); Chromium loops it as its fake camera."""
    image = still_frame()[0] if image is None else image
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=FPS)
        stream.height, stream.width = image.shape[:2]
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")))
        container.mux(stream.encode())
    return path


def sample(image: np.ndarray, points: list[tuple[float, float]]) -> list[list[int]]:
    """The mean BGR of a 5 x 5 patch at each point (fractions of the image's width and height)."""
    height, width = image.shape[:2]
    centres = [(int(fy * height), int(fx * width)) for fx, fy in points]
    patches = [image[y - 2:y + 3, x - 2:x + 3] for y, x in centres]
    return [[round(float(c)) for c in patch.reshape(-1, image.shape[2])[:, :3].mean(axis=0)] for patch in patches]


def near(bgr: list[int], colour: tuple[int, int, int], tolerance: int = 48) -> bool:
    """Whether a sampled colour is `colour` after a lossy video codec (4:2:0, low bitrate)."""
    return max(abs(int(a) - int(b)) for a, b in zip(bgr, colour)) <= tolerance
