"""Typed configuration: YAML presets under configs/ plus `--set key.path=value` overrides.

Every model forbids unknown keys, so a typo fails loudly with the file, the key and the keys that
are allowed there, instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and what to change."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sources -------------------------------------------------------------------------------------


class SyntheticSourceConfig(Strict):
    """Moving person-like figures on a chroma-green background, with ground-truth alphas."""

    kind: Literal["synthetic"] = "synthetic"
    width: int = Field(1280, ge=16, le=8192)
    height: int = Field(720, ge=16, le=8192)
    fps: float = Field(30.0, gt=0, le=240)
    people: int = Field(4, ge=0, le=20)
    seed: int = 0
    frames: int | None = Field(150, ge=1, description="frames to produce; null = endless")
    realtime: bool = Field(False, description="pace frames at fps (live-like, newest frame wins)")


class WebcamSourceConfig(Strict):
    """A local camera through OpenCV: an index (0) or a device path (/dev/video2)."""

    kind: Literal["webcam"] = "webcam"
    device: int | str = 0
    width: int = Field(1280, ge=16, le=8192)
    height: int = Field(720, ge=16, le=8192)
    fps: float = Field(30.0, gt=0, le=240)
    reconnect_max_s: float = Field(5.0, gt=0)


class FileSourceConfig(Strict):
    """A video file decoded with PyAV."""

    kind: Literal["file"] = "file"
    path: Path
    loop: bool = False
    realtime: bool = Field(False, description="pace frames at their timestamps (live-like)")


class RtspSourceConfig(Strict):
    """An RTSP stream decoded with PyAV; reconnects with backoff when the server goes away.

    By default livematte pulls from a camera or server at `url`. With `listen: true` livematte is
    the server end instead: it waits at `url` (e.g. rtsp://0.0.0.0:8554/live) for an encoder such as
    OBS or `ffmpeg -f rtsp` to publish to it.
    """

    kind: Literal["rtsp"] = "rtsp"
    url: str = Field(pattern=r"^rtsps?://")
    transport: Literal["tcp", "udp"] = "tcp"
    listen: bool = False
    timeout_s: float = Field(5.0, gt=0, description="open/read timeout before reconnecting")
    reconnect_min_s: float = Field(0.25, gt=0)
    reconnect_max_s: float = Field(8.0, gt=0)


class ImageFolderSourceConfig(Strict):
    """The images of a folder in name order, as a stream."""

    kind: Literal["images"] = "images"
    path: Path
    fps: float = Field(30.0, gt=0, le=240)
    loop: bool = False
    realtime: bool = False


SourceConfig = Annotated[
    Union[SyntheticSourceConfig, WebcamSourceConfig, FileSourceConfig, RtspSourceConfig, ImageFolderSourceConfig],
    Field(discriminator="kind"),
]


# --- sinks ---------------------------------------------------------------------------------------


class FileSinkConfig(Strict):
    """An H.264 video file (mp4/mkv/mov) written with PyAV."""

    kind: Literal["file"] = "file"
    path: Path = Path("out/livematte.mp4")
    crf: int = Field(20, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"


class PngSinkConfig(Strict):
    """A numbered PNG per frame; keeps the alpha channel when the output has one."""

    kind: Literal["png"] = "png"
    path: Path = Path("out/frames")


class VirtualCameraSinkConfig(Strict):
    """A virtual camera (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS)."""

    kind: Literal["vcam"] = "vcam"
    device: str | None = None
    backend: str | None = None
    pixel_format: Literal["rgb", "i420"] = "i420"
    fps: float | None = Field(None, gt=0, le=240, description="null = the source's fps")


class PreviewSinkConfig(Strict):
    """An OpenCV window; silently absent where there is no display or GUI support."""

    kind: Literal["preview"] = "preview"
    title: str = "livematte"


class NullSinkConfig(Strict):
    """Discards frames (benchmarks)."""

    kind: Literal["null"] = "null"


SinkConfig = Annotated[
    Union[FileSinkConfig, PngSinkConfig, VirtualCameraSinkConfig, PreviewSinkConfig, NullSinkConfig],
    Field(discriminator="kind"),
]


# --- effects -------------------------------------------------------------------------------------

HexColour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="#RRGGBB")]


def bgr(colour: str) -> tuple[int, int, int]:
    """'#RRGGBB' as OpenCV's (B, G, R)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


class PersonEffectConfig(Strict):
    """What one person looks like in the output.

    effect: keep (as filmed), hide (removed: the background shows through), blur / pixelate
    (privacy), tint (colour wash), spotlight (everyone else is dimmed). background: an own
    background image; the part of the frame nearest this person shows it.
    """

    effect: Literal["keep", "hide", "blur", "pixelate", "tint", "spotlight"] = "keep"
    tint: HexColour = "#3070ff"
    strength: float = Field(0.5, ge=0, le=1, description="tint strength")
    background: Path | None = None


class BackgroundConfig(Strict):
    """The layer behind everyone: original, blur (halo-free), color, image, video (looped) or transparent."""

    kind: Literal["original", "blur", "color", "image", "video", "transparent"] = "original"
    color: HexColour = "#00b140"
    path: Path | None = None
    blur_radius: int = Field(21, ge=1, le=200)

    @model_validator(mode="after")
    def _needs_path(self) -> "BackgroundConfig":
        if self.kind in ("image", "video") and self.path is None:
            raise ValueError(f"background kind {self.kind} needs path: the file to show")
        return self


class EffectsConfig(Strict):
    """Per-person effects: `people` maps a track id (as shown by the tracker) to its effect;
    everyone else, including people who appear later, gets `default`."""

    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    default: PersonEffectConfig = Field(default_factory=PersonEffectConfig)
    people: dict[int, PersonEffectConfig] = Field(default_factory=dict)
    feather: int = Field(0, ge=0, le=64, description="outward feather of every matte, pixels")
    spotlight_dim: float = Field(0.3, ge=0, le=1)
    privacy_radius: int = Field(12, ge=1, le=100, description="blur radius of the blur effect")
    pixel_block: int = Field(16, ge=2, le=256, description="block size of the pixelate effect")
    region_feather: float = Field(32.0, gt=0, description="cross-fade width between own-background regions, pixels")
    isolate: list[int] = Field(default_factory=list, description="track ids also rendered alone as RGBA layers")


# --- the whole job -------------------------------------------------------------------------------


class RunConfig(Strict):
    max_frames: int | None = Field(None, ge=1, description="stop after this many frames; null = until the source ends")
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class Config(Strict):
    source: SourceConfig = Field(default_factory=SyntheticSourceConfig)
    sinks: list[SinkConfig] = Field(default_factory=lambda: [FileSinkConfig()])
    effects: EffectsConfig = Field(default_factory=EffectsConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _one_window(self) -> "Config":
        if sum(isinstance(s, PreviewSinkConfig) for s in self.sinks) > 1:
            raise ValueError("at most one preview sink")
        return self


# --- loading -------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a YAML preset (default: configs/default.yaml), apply `key.path=value` overrides, validate."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    data = _read_yaml(path)
    for item in overrides:
        _apply_override(data, item)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, overrides)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; pass an existing file to --config") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); fix the syntax there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (source, sinks, run), got {type(data).__name__}")
    return data


def _apply_override(data: dict[str, Any], item: str) -> None:
    """Set one `a.b.c=value` in place; the value is parsed as YAML (numbers, booleans, null, lists)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key.path=value, e.g. --set source.people=6")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    if value is None and raw.strip() not in ("null", "Null", "NULL", "~"):
        value = raw  # e.g. "#ff0000", which YAML reads as a comment
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:i]) or 'the list'} has {len(node)} entries; use an index 0..{len(node) - 1}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                if part == "kind" and node.get("kind") != value:
                    node.clear()  # another kind is another section type: its old keys do not apply
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"--set {item!r}: {'.'.join(parts[:i])} is a value, not a section")


def _describe(exc: ValidationError, path: Path, overrides: list[str]) -> str:
    origin = f"{path}" + (f" with --set {' '.join(overrides)}" if overrides else "")
    lines = [f"invalid configuration in {origin}:"]
    for err in exc.errors():
        key, model = _resolve(err["loc"])
        if err["type"] == "extra_forbidden":
            _, parent = _resolve(err["loc"][:-1])
            allowed = ", ".join(getattr(parent, "model_fields", {}))
            lines.append(f"  {key}: unknown key; allowed here: {allowed}")
        elif err["type"] == "union_tag_invalid":
            lines.append(f"  {key}: {err['msg']}")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def _resolve(loc: tuple) -> tuple[str, Any]:
    """The dotted key a user wrote for an error location (union tags dropped) and the model found there."""
    parts: list[str] = []
    candidates: list[Any] = [Config]
    for part in loc:
        if len(candidates) > 1 and not isinstance(part, int):
            candidates = [m for m in candidates if _kind_of(m) == part]
            continue
        parts.append(str(part))
        if isinstance(part, int):
            continue
        field = candidates[0].model_fields.get(part) if len(candidates) == 1 else None
        candidates = _union_members(field.annotation) if field is not None else []
    return ".".join(parts), candidates[0] if len(candidates) == 1 else None


def _union_members(annotation: Any) -> list[Any]:
    """The BaseModel classes inside an annotation such as list[Annotated[Union[...], ...]]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[Any] = []
    for arg in getattr(annotation, "__args__", ()) + getattr(annotation, "__metadata__", ()):
        found.extend(_union_members(arg))
    if hasattr(annotation, "__origin__") and not found:
        found.extend(_union_members(annotation.__origin__))
    return found


def _kind_of(model: Any) -> str | None:
    field = model.model_fields.get("kind")
    return field.default if field is not None else None
