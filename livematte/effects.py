"""Who gets which effect: per-person assignments from the config, changed while running (a click in
the demo page), and picking the person under a click."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from kernels import Effect
from kernels._arrays import host
from livematte.config import EffectsConfig, PersonEffectConfig

EFFECT_CODES = {
    "keep": Effect.KEEP,
    "hide": Effect.HIDE,
    "tint": Effect.TINT,
    "blur": Effect.BLUR,
    "pixelate": Effect.PIXELATE,
    "spotlight": Effect.SPOTLIGHT,
}


class EffectAssignments:
    """Effects per track id; ids without an entry (everyone new) get the default."""

    def __init__(self, cfg: EffectsConfig):
        self.default = cfg.default
        self._people: dict[int, PersonEffectConfig] = dict(cfg.people)

    def get(self, track_id: int) -> PersonEffectConfig:
        return self._people.get(track_id, self.default)

    def set(self, track_id: int, spec: PersonEffectConfig) -> None:
        self._people[track_id] = spec

    def clear(self, track_id: int) -> None:
        """Back to the default effect."""
        self._people.pop(track_id, None)

    def assigned(self) -> dict[int, PersonEffectConfig]:
        return dict(self._people)

    def backgrounds(self) -> set[Path]:
        """The own backgrounds the default and the assignments show."""
        return {s.background for s in (self.default, *self._people.values()) if s.background is not None}


def select(mattes, track_ids: Sequence[int], x: int, y: int, threshold: float = 0.5) -> int | None:
    """The person whose alpha is highest at pixel (x, y), if it is at least `threshold`; else None.

    mattes: (N, H, W) on any device (one column of N values is read back).
    """
    if not len(track_ids):
        return None
    height, width = mattes.shape[1:]
    if not (0 <= x < width and 0 <= y < height):
        return None
    values = host(mattes[:, y, x])
    best = int(values.argmax())
    return int(track_ids[best]) if values[best] >= threshold else None
