"""The `livematte train` configuration: a YAML preset (configs/train_*.yaml) plus `--set` overrides.

Defaults follow the paper's recipe (AdamW lr 8e-5, weight decay 5e-4, cosine schedule, 640x640
crops, background class weight 0.1). Unknown keys fail with the allowed ones listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from livematte.config import Strict, load_model

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class InstancesData(Strict):
    """Images with one alpha per person: root/images/NAME.jpg + root/alphas/NAME/00.png, 01.png ...
    (the I-HIM50K layout)."""

    kind: Literal["instances"] = "instances"
    root: Path


class CompositeData(Strict):
    """People cut out of an image-instance dataset and pasted, 2 to 5 at a time, onto backgrounds."""

    kind: Literal["composite"] = "composite"
    foregrounds: Path = Field(description="an image-instance dataset whose people are cut out")
    backgrounds: Path = Field(description="a folder of background images without people")
    people: tuple[int, int] = Field((2, 5), description="fewest and most people per composite")
    samples: int = Field(10000, ge=1, description="composites per epoch")
    person_height: tuple[float, float] = Field((0.35, 0.9), description="pasted height, fraction of the canvas")

    @model_validator(mode="after")
    def _ranges(self) -> "CompositeData":
        if not 1 <= self.people[0] <= self.people[1] <= 20:
            raise ValueError(f"people must be [fewest, most] within 1..20, got {list(self.people)}")
        if not 0 < self.person_height[0] <= self.person_height[1] <= 2:
            raise ValueError(f"person_height must be [low, high] within (0, 2], got {list(self.person_height)}")
        return self


class SyntheticData(Strict):
    """Generated figures with exact alphas (livematte.synthetic), written once in the image-instance
    layout to `write_to` (relative to the current directory) and read like `kind: instances`."""

    kind: Literal["synthetic"] = "synthetic"
    write_to: Path
    samples: int = Field(8, ge=1)
    width: int = Field(96, ge=32, le=4096)
    height: int = Field(64, ge=32, le=4096)
    people: tuple[int, int] = Field((2, 3), description="fewest and most people per image")
    seed: int = 0

    @model_validator(mode="after")
    def _people(self) -> "SyntheticData":
        if not 1 <= self.people[0] <= self.people[1] <= 10:
            raise ValueError(f"people must be [fewest, most] within 1..10, got {list(self.people)}")
        return self


DataConfig = Annotated[Union[InstancesData, CompositeData, SyntheticData], Field(discriminator="kind")]


class AugmentConfig(Strict):
    """The paper's augmentations; ranges are symmetric around no change."""

    flip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    affine: float = Field(0.5, ge=0, le=1, description="probability of a random affine warp")
    rotate_deg: float = Field(15.0, ge=0, le=180)
    shear_deg: float = Field(5.0, ge=0, le=45)
    scale: float = Field(0.2, ge=0, lt=1, description="affine scale in [1 - scale, 1 + scale]")
    zoom: float = Field(1.5, ge=1, description="crop: short side scaled to size x U(1, zoom) before cropping")
    contrast: float = Field(0.3, ge=0, lt=1, description="contrast factor in [1 - c, 1 + c]")
    gamma: float = Field(1.4, ge=1, description="gamma in [1 / g, g]")
    saturation: float = Field(0.3, ge=0, lt=1, description="saturation factor in [1 - s, 1 + s]")


class TargetConfig(Strict):
    trimap_width: int = Field(10, ge=0, le=100, description="unknown band around soft edges, pixels at training size")
    min_area: float = Field(16.0, ge=0,
                            description="people with less alpha area (pixels) after augmentation are dropped")


class ModelConfig(Strict):
    init: str | None = Field(None, description="installed weights name (e.g. the imported official checkpoint), "
                                               ".safetensors file or training checkpoint (.pt); null = from scratch")
    freeze_backbone: bool = Field(False,
                                  description="keep the stem and Swin backbone fixed (fine-tuning on little data)")


class OptimConfig(Strict):
    lr: float = Field(8e-5, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    min_lr: float = Field(0.0, ge=0, description="learning rate at the end of the cosine schedule")
    clip_grad: float | None = Field(0.1, gt=0, description="largest gradient norm; null = no clipping")


class LossConfig(Strict):
    """Weights of the loss terms; `background` is the class weight of unmatched queries."""

    classification: float = Field(1.0, ge=0)
    background: float = Field(0.1, ge=0)
    seg_focal: float = Field(1.0, ge=0)
    seg_dice: float = Field(1.0, ge=0)
    trimap: float = Field(1.0, ge=0)
    alpha: float = Field(1.0, ge=0)
    focal_alpha: float = Field(0.25, ge=0, le=1)
    focal_gamma: float = Field(2.0, ge=0)


class MatcherConfig(Strict):
    """Weights of the Hungarian matching cost between queries and people."""

    classification: float = Field(1.0, ge=0)
    focal: float = Field(1.0, ge=0)
    dice: float = Field(1.0, ge=0)


class RunConfig(Strict):
    steps: int = Field(100000, ge=1)
    batch_size: int = Field(8, ge=1)
    workers: int = Field(4, ge=0, description="data loader processes (0 = in the training process)")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="fp16 autocast with loss scaling on CUDA (ignored on CPU)")
    log_every: int = Field(10, ge=1, description="steps between JSONL log records")
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept in out/checkpoints")
    out: Path = Field(Path("out/train/run"), description="run folder: checkpoints, log.jsonl, loss.png")
    install_as: str | None = Field(None, pattern=NAME_PATTERN,
                                   description="install the final weights under this name (for `livematte run`)")


class TrainConfig(Strict):
    data: DataConfig
    size: int = Field(640, ge=32, le=2048, multiple_of=32, description="square training crop, pixels")
    targets: TargetConfig = Field(default_factory=TargetConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    matcher: MatcherConfig = Field(default_factory=MatcherConfig)
    run: RunConfig = Field(default_factory=RunConfig)


INPUT_PATHS = (("data", "root"), ("data", "foregrounds"), ("data", "backgrounds"))


def load_train_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Dataset folders named in the file are relative to it; outputs stay relative to the current directory."""
    return load_model(TrainConfig, Path(path), overrides, INPUT_PATHS)
