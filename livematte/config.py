"""Typed configuration: YAML presets under configs/ plus `--set key.path=value` overrides.

Every model forbids unknown keys, so a typo fails loudly with the file, the key and the keys that
are allowed there, instead of being silently ignored.
"""

from __future__ import annotations

import re
from enum import Enum
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _YamlLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true/false, so `mode: off` or `--set temporal.mode=off` stay words."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and what to change."""


def preset_path(name: str) -> Path:
    """A preset livematte ships (configs/<name>), found through the installed package `configs`, so a plain
    `pip install .` has its presets as much as a source checkout. It must be a file on disk, not only a
    resource: a preset names its inputs (backgrounds/studio.png) relative to its own folder (_anchor_inputs).
    importlib.resources.files() gives that Path for a regular package installed as files (a wheel, an
    editable install, the source tree); presets inside a zip are not supported."""
    folder = files("configs")
    if not isinstance(folder, Path):
        raise ConfigError(f"livematte's presets are not files on disk ({folder}); install livematte unzipped")
    return folder / name


DEFAULT_CONFIG = preset_path("default.yaml")


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
    motion: float = Field(1.0, ge=0, le=4, description="1 = walking and crossing, 0.05 = a video call, 0 = still")
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
    timeout_s: float = Field(5.0, gt=0, description="open/read timeout before reconnecting; a stream silent this "
                             "long is shown as awaited (a card) even before PyAV gives up")
    reconnect_min_s: float = Field(0.25, gt=0)
    reconnect_max_s: float = Field(8.0, gt=0)


class ImageFolderSourceConfig(Strict):
    """The images of a folder in name order, as a stream."""

    kind: Literal["images"] = "images"
    path: Path
    stills: bool = Field(True, description="each image is a photo of its own: its people are found and numbered "
                                           "(left to right) afresh; false: the images are the frames of one video")
    fps: float = Field(30.0, gt=0, le=240)
    loop: bool = False
    realtime: bool = False


SourceConfig = Annotated[
    Union[SyntheticSourceConfig, WebcamSourceConfig, FileSourceConfig, RtspSourceConfig, ImageFolderSourceConfig],
    Field(discriminator="kind"),
]


# --- sinks ---------------------------------------------------------------------------------------


VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")


class FileSinkConfig(Strict):
    """An H.264 video file (mp4/mkv/mov) written with PyAV, playable after a crash up to its last keyframe."""

    kind: Literal["file"] = "file"
    path: Path = Path("out/livematte.mp4")
    crf: int = Field(20, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"
    keyframe_s: float = Field(1.0, gt=0, le=10, description="seconds between keyframes: after a crash or a full "
                                                            "disk the file plays up to the last one")

    @field_validator("path")
    @classmethod
    def _video_suffix(cls, path: Path) -> Path:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"a video file ends in {', '.join(VIDEO_SUFFIXES)} (H.264), got {path.name!r}; "
                             "a PNG sequence is sinks kind png")
        return path


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
    isolate: list[int] = Field(default_factory=list, description="track ids also written alone as RGBA PNGs")
    isolate_path: Path = Field(Path("out/people"), description="folder of the isolated layers: person_<id>/frame_*.png")


# --- engine, tracking, fusion --------------------------------------------------------------------


class KeyingConfig(Strict):
    """The CPU keying engine: a green/blue screen (chroma) or a captured empty scene (difference)."""

    mode: Literal["chroma", "difference"] = "chroma"
    key_colour: HexColour | None = Field(None, description="the screen colour; null = estimate from the frame border")
    plate_frames: int = Field(10, ge=1, description="frames averaged into the clean plate (difference mode)")
    scale: float = Field(0.5, gt=0, le=1, description="working resolution as a fraction of the frame")
    min_area: float = Field(0.002, ge=0, lt=1, description="smallest person, as a fraction of the frame area")


class MediaPipeConfig(Strict):
    """The learned CPU engine: MediaPipe's pose detector finds people, its pose landmark model masks each
    one in their own square and follows them from frame to frame (models: `livematte models fetch`)."""

    threads: int = Field(2, ge=1, le=64, description="LiteRT threads per model")
    people_per_frame: int = Field(1, ge=1, le=20, description="people whose mask is renewed on each frame; the "
                                  "others' masks are carried by the picture's motion (optical flow) until their turn")
    detect_every: int = Field(2, ge=1, description="frames between two runs of the person detector on squares of "
                              "the frame where the picture changed away from the people followed (a newcomer)")
    sweep_every: int = Field(8, ge=1, description="frames between two runs of the person detector on the next "
                             "square in turn, changed or not (finds someone missed who keeps still; every frame "
                             "while nobody is followed); a 16:9 frame has 30 turns, near squares every other turn")
    max_people: int = Field(10, ge=1, le=64, description="most people followed at once")
    min_score: float = Field(0.5, gt=0, lt=1, description="detector score for a new person")
    min_presence: float = Field(0.5, gt=0, lt=1, description="landmark model's p(person) below which one is let go")
    matte_side: int = Field(640, ge=64, description="longest side of the mattes (the masks, 256 pixels a person, carry "
                            "no finer detail): tracking and fusion work at this size, the compositor brings the "
                            "mattes to the frame's")


class E2EHIMConfig(Strict):
    """The E2E-HIM network (installed with `livematte weights import`)."""

    weights: str = Field("e2ehim-swin-tiny", description="installed weights name, or a .safetensors path")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    input_size: tuple[int, int] | None = Field(
        None, description="(height, width), multiples of 32; null = follow the source aspect")
    fp16: bool = True
    cuda_graphs: bool = Field(False, description="on CUDA, replay the forward as a CUDA graph (fixed shapes)")


class OnnxRuntimeConfig(Strict):
    """E2E-HIM through ONNX Runtime (the `export` extra): a graph from `livematte export onnx`, or the
    weights of engine.e2ehim.weights exported on first use (about a minute, cached)."""

    model: Path | None = Field(None, description="an exported .onnx graph; null = export engine.e2ehim.weights")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="cuda needs onnxruntime-gpu")
    input_size: tuple[int, int] | None = Field(None, description="(height, width) of an export on first use; "
                                               "null = follow the source aspect")


class TensorRTConfig(Strict):
    """E2E-HIM as a TensorRT engine built from the ONNX export of engine.e2ehim.weights on first use
    (minutes, cached; `livematte export tensorrt` builds it ahead of time). Needs a CUDA GPU."""

    precision: Literal["fp16", "fp32"] = "fp16"
    input_size: tuple[int, int] | None = Field(
        None, description="(height, width), multiples of 32; null = follow the source aspect")
    max_batch: int = Field(4, ge=1, le=64, description="largest batch the engine accepts")


class BatchConfig(Strict):
    """Streams that share one network (`livematte serve`'s peers, a run's `streams`) have the frames they
    hand in together inferred as one batch (livematte/engine/batching.py)."""

    window_ms: float = Field(2.0, ge=0, le=50, description="how long the first frame waits for other streams' "
                             "frames to join its batch")
    max_batch: int | None = Field(None, ge=1, le=64, description="most frames in one inference (1 = one frame at a "
                                  "time); null: 8 on a GPU, 2 on a CPU, where a larger batch gains little and a frame "
                                  "that just misses one waits for all of it (bench/results/streams_cpu_*)")


class EngineConfig(Strict):
    """kind auto: E2E-HIM (torch) when weights are installed, else the learned CPU engine (mediapipe), or
    for the synthetic scene of drawn figures the keying engine. keying (a green screen, or a captured
    empty room) for real footage only when asked for."""

    kind: Literal["auto", "mediapipe", "keying", "e2ehim", "onnxruntime", "tensorrt"] = "auto"
    mediapipe: MediaPipeConfig = Field(default_factory=MediaPipeConfig)
    keying: KeyingConfig = Field(default_factory=KeyingConfig)
    e2ehim: E2EHIMConfig = Field(default_factory=E2EHIMConfig)
    onnxruntime: OnnxRuntimeConfig = Field(default_factory=OnnxRuntimeConfig)
    tensorrt: TensorRTConfig = Field(default_factory=TensorRTConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    every: int = Field(1, ge=1, description="the longest run of frames between two inferences (1 = every frame)")
    min_change: float | None = Field(None, ge=0,
                                     description="also infer when the image changed this much (grey levels)")
    max_failures: int = Field(30, ge=1, description="frames in a row the engine may reject (each skipped with the "
                                                    "people held) before the run stops")


class TrackingConfig(Strict):
    enter_threshold: float = Field(0.6, ge=0, le=1, description="p(human) for a new person")
    exit_threshold: float = Field(0.4, ge=0, le=1, description="p(human) below which a known person is dropped")
    confirm_frames: int = Field(2, ge=1)
    max_missing: int = Field(60, ge=0, description="frames a person may stay unseen and keep their id")
    max_people: int = Field(20, ge=1, le=64)


class TemporalConfig(Strict):
    """Causal fusion (livematte/temporal.py); exact adds one frame of latency for MaGGIe's two-sided rule."""

    mode: Literal["off", "causal", "exact"] = "causal"
    tau_y: float = Field(12.0, ge=0, description="grey-level change that marks the image as changed")
    eps: float = Field(8 / 255, ge=0, le=1, description="largest matte difference still called agreement (larger "
                                                       "ones wait until they persist, where the picture is still)")
    blend: float = Field(0.15, ge=0, le=1, description="how far an agreeing matte moves towards the engine's each "
                                                        "frame where the picture did not change (0 = hold)")
    max_age: int = Field(30, ge=0, le=255, description="frames a held value may be carried")
    cell: int = Field(1, ge=1, le=64, description="side of the change cells in pixels (1: per pixel)")
    rho: float = Field(0.5, gt=0, le=1, description="fraction of changed cells that means a scene cut")
    motion: bool = Field(True, description="causal mode follows each person's translation, so that people who "
                                           "walk are held like people who stand still")
    max_shift: int = Field(16, ge=1, le=64, description="largest move per frame and axis (pixels) that motion follows")
    hold_frames: int = Field(1, ge=0, description="frames a vanished person's matte may be held")


# --- the whole job -------------------------------------------------------------------------------


class RunConfig(Strict):
    max_frames: int | None = Field(None, ge=1, description="stop after this many frames; null = until the source ends")
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class ServeConfig(Strict):
    """`livematte serve`: the WebRTC demo server. Loopback by default: a page served on another address
    needs https (browsers give the camera only to secure pages) and opens the machine to the network."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_peers: int = Field(4, ge=1, le=64, description="browsers served at once; more are refused with a message")
    connect_timeout_s: float = Field(30.0, gt=0, le=600, description="a peer whose connection is not up this long "
                                     "after its offer was answered is closed and its slot given back")
    upload_limit_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024,
                                    description="largest background upload")
    upload_limit_pixels: int = Field(40_000_000, ge=1, le=500_000_000, description="largest background upload in "
                                     "pixels, read from the image's header before anything is decoded")
    upload_decodes: int = Field(2, ge=1, le=16, description="uploads decoded at once over all peers (one per peer)")
    disk_limit_bytes_per_peer: int = Field(32 * 1024 * 1024, ge=1024, description="a peer's stored backgrounds")
    disk_limit_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="all peers' stored backgrounds")
    stats_interval_s: float = Field(1.0, gt=0, le=60, description="how often each page gets live stats")
    ice_servers: list[str] = Field(
        default_factory=list, description="STUN/TURN URLs; empty = direct host candidates only (same machine or LAN)")


class ClusterConfig(Strict):
    """Streams on a Ray cluster (the `cluster` extra, pipelines/cluster.py): each stream a Ray actor running
    the same pipeline, a network engine a Ray Serve deployment whose replicas batch every stream's frames."""

    address: str | None = Field(None, description="null: everything in this process; local: start a Ray instance "
                                "here; auto or HOST:PORT: join the cluster `ray start` made")
    replicas: int = Field(1, ge=1, le=256, description="model replicas (a network engine); the learned and keying "
                          "engines run inside each stream's actor")
    cpus_per_stream: float = Field(0.5, ge=0, description="CPUs Ray reserves for each stream's actor")
    cpus_per_replica: float = Field(1.0, ge=0, description="CPUs Ray reserves for each model replica")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs for each model replica (0.5: two share one)")


class Footage(Enum):
    """What a source's frames show; it decides what engine.kind auto picks without E2E-HIM weights."""

    PEOPLE = "people"  # a camera, a file, a stream: real people, followed from frame to frame (learned engine)
    PHOTOS = "photos"  # unrelated photos: each read on its own, nobody tracked or fused across them
    DRAWN = "drawn"  # the synthetic scene: drawn figures on a green screen (keying engine)


class StreamConfig(Strict):
    """One of several sources in one run, with its own outputs; everything else is the run's."""

    source: SourceConfig
    sinks: list[SinkConfig] = Field(min_length=1)


class Config(Strict):
    source: SourceConfig = Field(default_factory=SyntheticSourceConfig)
    sinks: list[SinkConfig] = Field(default_factory=lambda: [FileSinkConfig()])
    streams: list[StreamConfig] = Field(default_factory=list, description="several sources in one run, each with its "
                                        "own sinks, sharing one engine (a network's frames batched across them); "
                                        "given, it replaces source and sinks")
    engine: EngineConfig = Field(default_factory=EngineConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    temporal: TemporalConfig = Field(default_factory=TemporalConfig)
    effects: EffectsConfig = Field(default_factory=EffectsConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

    @property
    def footage(self) -> Footage:
        """What the source's frames show."""
        if isinstance(self.source, SyntheticSourceConfig):
            return Footage.DRAWN
        if isinstance(self.source, ImageFolderSourceConfig) and self.source.stills:
            return Footage.PHOTOS
        return Footage.PEOPLE

    @model_validator(mode="after")
    def _one_window(self) -> "Config":
        sinks = [sink for stream in self.streams for sink in stream.sinks] if self.streams else self.sinks
        if sum(isinstance(s, PreviewSinkConfig) for s in sinks) > 1:
            raise ValueError("at most one preview sink")
        if self.streams and {"source", "sinks"} & self.model_fields_set:
            raise ValueError("streams replaces source and sinks: give each stream its source and sinks, and "
                             "remove the top-level source and sinks")
        paths = [s.path.resolve() for s in sinks if isinstance(s, (FileSinkConfig, PngSinkConfig))]
        twice = sorted({str(p) for p in paths if paths.count(p) > 1})
        if twice:
            raise ValueError(f"two sinks write to {twice[0]}: give each file or PNG sink a path of its own")
        return self

    def stream_configs(self) -> list["Config"]:
        """The run as one config per source: each stream's source and sinks, its people's isolated layers in
        a folder of its own; this config alone where no streams are given."""
        if not self.streams:
            return [self]
        return [self.model_copy(update={
            "source": stream.source, "sinks": stream.sinks, "streams": [],
            "effects": self.effects.model_copy(update={"isolate_path": self.effects.isolate_path / f"stream_{i}"})})
            for i, stream in enumerate(self.streams)]


# --- loading -------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a YAML preset (default: configs/default.yaml), apply `key.path=value` overrides, validate."""
    return load_model(Config, Path(path) if path is not None else DEFAULT_CONFIG, overrides, INPUT_PATHS)


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_model(model: type[ModelT], path: Path, overrides: list[str] = (),
               input_paths: tuple[tuple[str, ...], ...] = ()) -> ModelT:
    """Any config model (the run config, the train config) from YAML + overrides, with the same messages."""
    data = _read_yaml(path)
    _kinds_as_names(data)
    _anchor_inputs(data, path.resolve().parent, input_paths)
    for item in overrides:
        _apply_override(data, item)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, overrides, model)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; "
                          "pass an existing file to --config") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); pass a YAML preset "
                          "to --config") from None
    try:
        data = _yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); fix the syntax there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (source, sinks, run), "
                          f"got {type(data).__name__}")
    return data


def _kinds_as_names(node: Any) -> None:
    """`kind: null` in YAML is the null sink, not a missing kind."""
    if isinstance(node, dict):
        if "kind" in node and node["kind"] is None:
            node["kind"] = "null"
        for child in node.values():
            _kinds_as_names(child)
    elif isinstance(node, list):
        for child in node:
            _kinds_as_names(child)


INPUT_PATHS = (("source", "path"), ("streams", "*", "source", "path"), ("effects", "background", "path"),
               ("effects", "default", "background"), ("effects", "people", "*", "background"),
               ("engine", "onnxruntime", "model"))


def _anchor_inputs(data: dict[str, Any], base: Path, input_paths: tuple[tuple[str, ...], ...]) -> None:
    """Relative input files named in a config file are relative to that file's folder, so a preset
    finds its own background images wherever it is run from. Outputs and --set values stay
    relative to the current directory."""

    def visit(node: Any, keys: tuple[str, ...]) -> None:
        if not keys or not isinstance(node, dict) and not (isinstance(node, list) and keys[0] == "*"):
            return
        head, rest = keys[0], keys[1:]
        children = ((node.items() if isinstance(node, dict) else enumerate(node)) if head == "*"
                    else [(head, node.get(head))])
        for key, child in children:
            if not rest and isinstance(child, str) and not Path(child).is_absolute():
                node[key] = str(base / child)
            else:
                visit(child, rest)

    for keys in input_paths:
        visit(data, keys)


def _apply_override(data: dict[str, Any], item: str) -> None:
    """Set one `a.b.c=value` in place; the value is parsed as YAML (numbers, booleans, null, lists)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key.path=value, e.g. --set source.people=6")
    try:
        value = _yaml(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    if value is None and raw.strip() not in ("null", "Null", "NULL", "~"):
        value = raw  # e.g. "#ff0000", which YAML reads as a comment
    parts = key.split(".")
    if parts[-1] == "kind":
        value = raw  # kinds are names: `--set sinks.0.kind=null` means the null sink
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:i]) or 'the list'} has {len(node)} entries; "
                                  f"use an index 0..{len(node) - 1}")
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


def _describe(exc: ValidationError, path: Path, overrides: list[str], root: type[BaseModel]) -> str:
    origin = f"{path}" + (f" with --set {' '.join(overrides)}" if overrides else "")
    lines = [f"invalid configuration in {origin}:"]
    for err in exc.errors():
        key, model = _resolve(err["loc"], root)
        if err["type"] == "extra_forbidden":
            _, parent = _resolve(err["loc"][:-1], root)
            allowed = ", ".join(getattr(parent, "model_fields", {}))
            lines.append(f"  {key}: unknown key; allowed here: {allowed}")
        elif err["type"] == "union_tag_invalid":
            lines.append(f"  {key}: {err['msg']}")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def _resolve(loc: tuple, root: type[BaseModel]) -> tuple[str, Any]:
    """The dotted key a user wrote for an error location (union tags dropped) and the model found there."""
    parts: list[str] = []
    candidates: list[Any] = [root]
    keyed = False  # the last key named a mapping (effects.people): this part is one of its keys
    for part in loc:
        if len(candidates) > 1 and not isinstance(part, int):
            candidates = [m for m in candidates if _kind_of(m) == part]
            continue
        parts.append(str(part))
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = candidates[0].model_fields.get(part) if len(candidates) == 1 else None
        candidates = _union_members(field.annotation) if field is not None else []
        keyed = field is not None and get_origin(field.annotation) is dict
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
