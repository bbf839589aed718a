"""The training config (``spectrum train --config``): model, data and train sections, strictly typed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..backbones import backbone_config_from_dict
from ..configs import (
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    ConfigBase,
    ConfigError,
    DecoderConfig,
    TextEncoderConfig,
    check_range,
    read_config_file,
)
from ..data.targets import TargetConfig
from ..modeling import SpectrumConfig


@dataclass
class DatasetEntry(ConfigBase):
    """One training/validation source: ``FORMAT:PATH``, its split and its sampling weight."""

    dataset: str
    split: str = "train"
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class AugmentConfig(ConfigBase):
    """Training augmentation (all probabilities in [0, 1])."""

    hflip: float = 0.5
    scale: list[float] = field(default_factory=lambda: [0.75, 1.25])
    color_jitter: float = 0.2
    copy_paste: float = 0.5  # probability that a training image is a multi-person composite
    max_people: int = 4
    # Real-photo look (data.transforms.RealPhotoLook), each a probability; 0 turns a step off.
    rotate: float = 0.0
    max_degrees: float = 15.0
    background: float = 0.0  # paste the people onto a person-free photo from `backgrounds`
    occlude: float = 0.0
    blur: float = 0.0
    backgrounds: str | None = None  # FORMAT:PATH of person-free photos (its train split), e.g. no-person:...

    def __post_init__(self) -> None:
        for name in ("hflip", "color_jitter", "copy_paste", "rotate", "background", "occlude", "blur"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"augment.{name} must be a probability in [0, 1], got {value!r:.40}")
        check_range("augment", "max_degrees", self.max_degrees, 0, 180, integer=False)
        check_range("augment", "max_people", self.max_people, 1, 64)
        scale = self.scale
        if (not isinstance(scale, list) or len(scale) != 2 or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.05 <= v <= 10 for v in scale)
                or scale[0] > scale[1]):
            raise ConfigError(f"augment.scale must be [low, high] with 0.05 <= low <= high <= 10, got {scale!r:.40}")
        if self.background > 0 and not self.backgrounds:
            raise ConfigError("augment.background > 0 needs augment.backgrounds (FORMAT:PATH of person-free photos)")


@dataclass
class DataConfig(ConfigBase):
    """Datasets, resolution, augmentation and target construction."""

    train: list[DatasetEntry] = field(default_factory=list)
    val: list[DatasetEntry] = field(default_factory=list)
    image_size: int = 512  # longest side after resizing; training crops are image_size x image_size
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_range("data", "image_size", self.image_size, MIN_IMAGE_SIDE, MAX_IMAGE_SIDE)
        check_range("data", "num_workers", self.num_workers, 0, 256)


@dataclass
class TrainConfig(ConfigBase):
    """Optimisation, precision, logging and checkpointing."""

    output_dir: str = "runs/spectrum"
    max_steps: int = 1000
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-4
    backbone_lr: float = 1e-5  # for backbones that are fine-tuned (trainable parameters)
    weight_decay: float = 0.05
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | poly | constant
    poly_power: float = 0.9
    min_lr_ratio: float = 0.0
    clip_grad: float = 0.01  # Mask2Former clips the full gradient norm at 0.01 with AdamW; 0 disables
    mixed_precision: str = "no"  # no | fp16 | bf16
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_with: list[str] = field(default_factory=lambda: ["csv"])  # csv, tensorboard
    feature_cache: str | None = None  # directory of a feature cache to train the decoder from
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "poly", "constant"):
            raise ConfigError(f"schedule must be cosine, poly or constant, got {self.schedule!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        unknown = sorted(set(self.log_with) - {"csv", "tensorboard"})
        if unknown:
            raise ConfigError(f"log_with: unknown logger(s) {unknown}")
        check_range("train", "max_steps", self.max_steps, 1, 100_000_000)
        check_range("train", "batch_size", self.batch_size, 1, 4096)
        check_range("train", "grad_accum", self.grad_accum, 1, 4096)
        check_range("train", "log_every", self.log_every, 1, 100_000_000)
        check_range("train", "checkpoint_every", self.checkpoint_every, 1, 100_000_000)
        check_range("train", "keep_checkpoints", self.keep_checkpoints, 1, 10_000)
        check_range("train", "warmup_steps", self.warmup_steps, 0, 100_000_000)
        check_range("train", "seed", self.seed, 0, 2**32 - 1)
        for name, high in (("lr", 10.0), ("backbone_lr", 10.0), ("weight_decay", 10.0), ("clip_grad", 1e6),
                           ("poly_power", 100.0), ("min_lr_ratio", 1.0)):
            check_range("train", name, getattr(self, name), 0, high, integer=False)
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,2})?", self.device):
            raise ConfigError(f"train.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r:.40}")


@dataclass
class ModelSection(ConfigBase):
    """The model to train: a fresh one from components, or ``init_from`` a saved Spectrum model."""

    backbone: dict[str, Any] | str | None = None  # backbone config dict, or a path to its JSON
    text_encoder: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    # A training config (YAML) whose final model this run continues from; `train` runs that earlier stage
    # first (resuming it if interrupted) when its model does not exist yet. Exclusive with ``init_from``.
    init_from_experiment: str | None = None
    ebp_prompts: list[str] | None = None  # recorded in the saved model: body parts it was trained on
    default_prompts: list[str] | None = None  # recorded in the saved model: prompts used when none are given
    # Warm start of a fresh model's decoder: a saved Spectrum model whose decoder tensors of the same name and
    # shape are copied (e.g. all but the input projections when the backbone changed); the rest stays fresh.
    init_decoder_from: str | None = None
    # Fine-tune the backbone too (every member of a fusion; those whose type can be fine-tuned), at
    # train.backbone_lr, BatchNorm statistics kept: e.g. continuing a model trained on frozen, cached features.
    unfreeze_backbone: bool = False


@dataclass
class ExperimentConfig(ConfigBase):
    """A whole training run, as read from ``spectrum train --config CONFIG.yaml``."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        unknown = sorted(set(data) - {"model", "data", "train"})
        if unknown:
            raise ConfigError(f"training config: unknown section(s) {unknown}; allowed: model, data, train")
        model = data.get("model", {})
        if isinstance(model, dict) and model.get("init_from") and model.get("init_from_experiment"):
            raise ConfigError("model.init_from and model.init_from_experiment are exclusive: give one")
        return super().from_dict(data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Read a YAML (or JSON) training config."""
        return cls.from_dict(read_config_file(path, yaml_ok=True) or {})

    def spectrum_config(self) -> SpectrumConfig:
        """The model config this experiment trains (frozen parts named, decoder sizes as given)."""
        backbone = self.model.backbone
        if backbone is None:
            raise ConfigError("model.backbone is required unless model.init_from is given")
        if isinstance(backbone, str):
            from ..backbones import load_backbone_config

            backbone_cfg = load_backbone_config(backbone)
        else:
            backbone_cfg = backbone_config_from_dict(backbone)
        return SpectrumConfig(backbone=backbone_cfg, text_encoder=TextEncoderConfig.from_dict(self.model.text_encoder),
                              decoder=DecoderConfig.from_dict(self.model.decoder),
                              withheld=list(self.data.targets.withheld),
                              ebp_prompts=self.model.ebp_prompts, default_prompts=self.model.default_prompts,
                              input_size=self.data.image_size)
