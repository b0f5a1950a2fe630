"""The JSON messages on a peer's data channel: what the page asks for and what the server tells it.

Incoming text is untrusted: every message is validated against these models (unknown keys and types
refused), and nothing in them names a server file (backgrounds arrive only as validated uploads).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError

from livematte.config import HexColour, PersonEffectConfig, Strict

EffectName = Literal["keep", "hide", "blur", "pixelate", "tint", "spotlight"]


class MessageError(ValueError):
    """A data-channel message that cannot be used; the text is sent back to the page."""


class Select(Strict):
    """A click on the processed video, in its pixels: who is there?"""

    type: Literal["select"]
    x: int = Field(ge=0)
    y: int = Field(ge=0)


class ChangeEffect(Strict):
    """Change one person's effect (track) or everyone else's (track null); unset fields stay as they are."""

    type: Literal["effect"]
    track: int | None = Field(None, ge=1)
    effect: EffectName | None = None
    tint: HexColour | None = None
    strength: float | None = Field(None, ge=0, le=1)

    def apply_to(self, current: PersonEffectConfig) -> PersonEffectConfig:
        changes = self.model_dump(include={"effect", "tint", "strength"}, exclude_none=True)
        return current.model_copy(update=changes)


class CapturePlate(Strict):
    """Take the next frames as the empty scene (the keying engine's difference key)."""

    type: Literal["plate"]


Request = Annotated[Union[Select, ChangeEffect, CapturePlate], Field(discriminator="type")]
_requests = TypeAdapter(Request)


def parse_request(text: str | bytes) -> Select | ChangeEffect | CapturePlate:
    try:
        return _requests.validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors())
        raise MessageError(f"unusable message ({problems}); send JSON with type select, effect or plate") from None


class PersonState(Strict):
    """One effect as the page shows it (an own background is only flagged: its file stays on the server)."""

    effect: EffectName
    tint: str
    strength: float
    own_background: bool

    @classmethod
    def of(cls, spec: PersonEffectConfig) -> "PersonState":
        return cls(effect=spec.effect, tint=spec.tint, strength=spec.strength,
                   own_background=spec.background is not None)


class Selected(Strict):
    type: Literal["selected"] = "selected"
    track: int | None  # None: nobody at that pixel
    state: PersonState | None


class EffectSet(Strict):
    type: Literal["effect"] = "effect"
    track: int | None  # None: everyone else
    state: PersonState


class PlateCapturing(Strict):
    type: Literal["plate"] = "plate"
    frames: int


class Stats(Strict):
    """Live figures of one peer over the last stats interval."""

    type: Literal["stats"] = "stats"
    fps: float
    frames: int  # processed since the peer connected
    dropped: int  # stale frames replaced before they were processed or sent
    people: int
    width: int
    height: int
    stages_ms: dict[str, float]  # median per stage
    server_ms: float | None  # median from a frame's arrival to its processed frame leaving for the encoder


class Failure(Strict):
    type: Literal["error"] = "error"
    message: str
