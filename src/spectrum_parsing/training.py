"""Training on accelerate: dataset mixtures, augmentation, exact resume, checkpoints, logs, feature cache.

``spectrum train --config CONFIG.yaml`` runs :func:`train`. The same code runs on one CPU, one GPU, or many
GPUs/nodes under ``accelerate launch`` with no change. Every batch is a pure function of
``(seed, sample index)``: which dataset and image, the augmentation, the copy-paste partners and the negative
phrases all come from a generator seeded by the index. Resuming from a checkpoint therefore continues with
exactly the batches an uninterrupted run would have seen, and with the saved optimizer/scheduler/RNG state.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .backbones import backbone_config_from_dict
from .configs import (
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    ConfigBase,
    ConfigError,
    DecoderConfig,
    TextEncoderConfig,
    check_range,
    read_config_file,
)
from .data import open_dataset
from .data.sample import Sample
from .data.targets import TargetConfig, TrainingExample, collate, make_example
from .data.transforms import (
    ColorJitter,
    CopyPasteComposite,
    RandomHFlip,
    RandomScaleCrop,
    RealPhotoLook,
    ResizeLongestSide,
)
from .losses import LossConfig, SpectrumCriterion
from .modeling import SpectrumConfig, SpectrumModel

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ configs
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
                raise ConfigError(f"augment.{name} must be a probability in [0, 1], got {value!r}")
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
            from .backbones import load_backbone_config

            backbone_cfg = load_backbone_config(backbone)
        else:
            backbone_cfg = backbone_config_from_dict(backbone)
        return SpectrumConfig(backbone=backbone_cfg, text_encoder=TextEncoderConfig.from_dict(self.model.text_encoder),
                              decoder=DecoderConfig.from_dict(self.model.decoder),
                              withheld=list(self.data.targets.withheld),
                              ebp_prompts=self.model.ebp_prompts, default_prompts=self.model.default_prompts,
                              input_size=self.data.image_size)


# ------------------------------------------------------------------------------------------------ data
class MixtureDataset(Dataset):
    """Index -> (index, TrainingExample); everything random is drawn from ``default_rng([seed, index])``.

    Sources are drawn by weight; with probability ``copy_paste`` the example is a composite of 2 to
    ``max_people`` people cut from samples of the same source.
    """

    def __init__(self, sources: Sequence[Any], weights: Sequence[float], length: int, image_size: int,
                 augment: AugmentConfig, targets: TargetConfig, seed: int = 0, train: bool = True) -> None:
        if not sources:
            raise ConfigError("no training datasets configured (data.train is empty)")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError("dataset weights must be >= 0 with a positive sum")
        self.sources, self.probs, self.length = list(sources), w / w.sum(), length
        self.seed, self.train, self.targets, self.augment = seed, train, targets, augment
        self.resize = ResizeLongestSide(image_size)
        self.crop = RandomScaleCrop(augment.scale[0], augment.scale[1], (image_size, image_size))
        self.flip = RandomHFlip(augment.hflip)
        self.jitter = ColorJitter(augment.color_jitter, augment.color_jitter, augment.color_jitter,
                                  augment.color_jitter / 4)
        self.composite = CopyPasteComposite(num_people=(2, max(2, augment.max_people)))
        backgrounds = open_dataset(augment.backgrounds, split="train") if augment.backgrounds else None
        self.look = RealPhotoLook(rotate=augment.rotate, max_degrees=augment.max_degrees,
                                  background=augment.background, occlude=augment.occlude, blur=augment.blur,
                                  backgrounds=backgrounds, canvas=image_size)

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> Sample:
        """The augmented Sample for ``index`` (deterministic)."""
        rng = np.random.default_rng([self.seed, index])
        source = self.sources[int(rng.choice(len(self.sources), p=self.probs))]
        sample = source[int(rng.integers(len(source)))]
        people = bool(sample.segments)  # person-free photos (negatives) are neither composited nor pasted
        if people and self.train and self.augment.copy_paste > 0 and rng.random() < self.augment.copy_paste:
            extra = int(rng.integers(1, max(2, self.augment.max_people)))
            partners = [source[int(rng.integers(len(source)))] for _ in range(extra)]
            sample = self.composite([self.resize(sample, rng), *(self.resize(p, rng) for p in partners)], rng)
        sample = self.resize(sample, rng)
        if self.train:
            sample = self.flip(sample, rng)
            if people:
                sample = self.look(sample, rng)
            sample = self.jitter(self.crop(sample, rng), rng)
        return sample

    def __getitem__(self, index: int) -> tuple[int, TrainingExample]:
        return index, make_example(self.sample(index), self.targets)


class OffsetSampler(Sampler[int]):
    """Global indices ``start, start + 1, ..., length - 1``, dealt round-robin to ``world`` processes.

    Resuming sets ``start`` past the samples already consumed, so the run continues where it stopped.
    """

    def __init__(self, start: int, length: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.length, self.rank, self.world = start, length, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start + self.rank, self.length, self.world))

    def __len__(self) -> int:
        return len(range(self.start + self.rank, self.length, self.world))


class BatchCollator:
    """Collate (index, example) pairs; negative phrases are drawn from a generator seeded by the first index."""

    def __init__(self, targets: TargetConfig, seed: int) -> None:
        self.targets, self.seed = targets, seed

    def __call__(self, items: list[tuple[int, TrainingExample]]) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, 1_000_003, items[0][0]])
        return collate([ex for _, ex in items], self.targets, rng)


# ------------------------------------------------------------------------------------------------ schedule
def lr_lambda(step: int, total: int, warmup: int, schedule: str, power: float = 0.9, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up, then cosine/poly/constant decay."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else (1 - progress) ** power
    return floor + (1 - floor) * decay


# ------------------------------------------------------------------------------------------------ training
def continue_after(config: ExperimentConfig, progress: bool = True) -> ExperimentConfig:
    """``config`` with ``init_from`` set to the final model of its ``init_from_experiment``, training that earlier
    stage first (resuming its newest checkpoint) if its model does not exist yet."""
    earlier = ExperimentConfig.from_yaml(config.model.init_from_experiment)
    out = Path(earlier.train.output_dir)
    final = out / "model"
    recorded = out / "experiment.json"
    if recorded.is_file():
        previous = ExperimentConfig.from_dict(json.loads(recorded.read_text()))
        if previous.model.init_from_experiment:  # recorded after its own earlier stage was resolved
            previous = dataclasses.replace(previous, model=dataclasses.replace(previous.model, init_from=None))
        if previous.to_json_string() != earlier.to_json_string():
            raise ConfigError(f"{out} holds a run of another config than {config.model.init_from_experiment}; "
                              "move it away or change that config's train.output_dir")
    if not (final / "model.safetensors").is_file():
        logger.warning("training the earlier stage %s first (into %s)", config.model.init_from_experiment, out)
        train(earlier, resume="auto", progress=progress)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, init_from=str(final)))


def build_model(config: ExperimentConfig) -> SpectrumModel:
    """The model to train: ``init_from`` a saved model, else fresh from the config (loads frozen parts)."""
    if config.model.init_from_experiment and not config.model.init_from:
        raise ConfigError("model.init_from_experiment is resolved by train(); call continue_after(config) first")
    if config.model.init_from:
        if config.model.init_decoder_from:
            raise ConfigError("model.init_decoder_from is for fresh models; init_from already loads a decoder")
        return SpectrumModel.from_pretrained(config.model.init_from)
    model = SpectrumModel.from_config(config.spectrum_config())
    if config.model.init_decoder_from:
        copied, fresh = warm_start_decoder(model, config.model.init_decoder_from)
        logger.warning("decoder warm start from %s: %d tensors copied, %d fresh (%s)", config.model.init_decoder_from,
                       len(copied), len(fresh), ", ".join(fresh[:6]) + (" ..." if len(fresh) > 6 else ""))
    return model


def warm_start_decoder(model: SpectrumModel, source: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Copy the decoder tensors of the saved model ``source`` whose name and shape match ``model``'s decoder.

    When ``model``'s backbone is a fusion with a member whose channels per stride equal the source model's
    backbone, the source's input projections are copied into that member's input channels and the other
    members' weights start at zero: the warm-started model begins as the source model (up to the member's own
    weights) and learns what the added members bring.

    Returns (copied names, names left freshly initialised). A source sharing no tensor is an error.
    """
    from safetensors.torch import load_file

    from .backbones import FusionBackbone
    from .hub import resolve_dir
    from .modeling import SpectrumConfig

    directory = resolve_dir(str(source), allow_patterns=["config.json", "model.safetensors"])
    state = load_file(str(directory / "model.safetensors"))
    src_channels = SpectrumConfig.from_json_file(directory / "config.json").decoder.in_channels
    offsets: dict[tuple[int, int], int] = {}  # (source channels, own channels) -> offset of the matching member
    if isinstance(model.backbone, FusionBackbone):
        per_member = [m.feature_channels() for m in model.backbone.members]
        for j, channels in enumerate(per_member):
            if all(channels[s] == int(src_channels.get(str(s), -1)) for s in channels):
                for s in channels:
                    before = sum(p[s] for p in per_member[:j])
                    offsets[(channels[s], sum(p[s] for p in per_member))] = before
                break
    own = model.decoder.state_dict()
    take: dict[str, torch.Tensor] = {}
    for k, v in own.items():
        src = state.get(f"decoder.{k}")
        if src is None:
            continue
        if src.shape == v.shape:
            take[k] = src
        elif (src.ndim == 4 and src.shape[0] == v.shape[0] and src.shape[2:] == v.shape[2:]
              and (src.shape[1], v.shape[1]) in offsets):
            off = offsets[(src.shape[1], v.shape[1])]
            embedded = torch.zeros_like(v)
            embedded[:, off:off + src.shape[1]] = src
            take[k] = embedded
    if not take:
        raise ConfigError(f"model.init_decoder_from {source}: no decoder tensor matches this model's decoder")
    model.decoder.load_state_dict({**own, **take}, strict=True)
    return sorted(take), sorted(set(own) - set(take))


def withheld_after(config: ExperimentConfig, before: Sequence[str]) -> list[str]:
    """Categories still never trained on after this run: those this run withholds, and - for a model that
    continues from ``init_from`` - only those its earlier training withheld too (``before``)."""
    now = list(config.data.targets.withheld)
    if not config.model.init_from:
        return now
    still = set(now)
    kept = [c for c in before if c in still]
    dropped = sorted(set(before) - set(kept))
    if dropped:
        logger.warning("init_from model had withheld %s; this run trains on them, so they are no longer unseen",
                       dropped)
    return kept


def _open_sources(entries: Sequence[DatasetEntry]) -> list[Any]:
    return [open_dataset(e.dataset, split=e.split, **e.options) for e in entries]


class CSVLogger:
    """Appends metric rows to ``metrics.csv`` (header written once; columns fixed by the first row)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with path.open() as f:
                header = f.readline().strip()
            self.fields = header.split(",") if header else None

    def log(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    # Only step-<number>: a user's backup copy (step-2.bak, step-2 copy) is neither resumed from nor rotated away.
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"step-\d+", p.name)
             and (p / "trainer.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def train(config: ExperimentConfig, resume: str | None = None, progress: bool = True) -> Path:
    """Run training; returns the directory of the final model (``output_dir/model``).

    ``resume``: a checkpoint directory, or ``"auto"`` for the newest checkpoint in ``output_dir``.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    if config.model.init_from_experiment and not config.model.init_from:
        config = continue_after(config, progress)
    tc = config.train
    output_dir = Path(tc.output_dir)
    cpu = tc.device == "cpu" or (tc.device == "auto" and not torch.cuda.is_available())
    accelerator = Accelerator(mixed_precision=tc.mixed_precision, gradient_accumulation_steps=tc.grad_accum,
                              cpu=cpu)
    set_seed(tc.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "experiment.json").write_text(config.to_json_string())

    model = build_model(config)
    model.config = dataclasses.replace(model.config, withheld=withheld_after(config, model.config.withheld))
    criterion = SpectrumCriterion(LossConfig.from_dict(config.model.loss))
    samples_per_step = tc.batch_size * tc.grad_accum * accelerator.num_processes
    cache = None
    if tc.feature_cache:
        from .feature_cache import FeatureCacheDataset

        if model.backbone_trainable:
            raise ConfigError("train.feature_cache needs a frozen backbone; this one is fine-tuned (trainable)")
        cache = FeatureCacheDataset(tc.feature_cache, model.backbone.config, config.data.targets)
        dataset: Dataset = cache.cycled(tc.max_steps * samples_per_step)
        collator = cache.collate
    else:
        sources = _open_sources(config.data.train)
        dataset = MixtureDataset(sources, [e.weight for e in config.data.train], tc.max_steps * samples_per_step,
                                 config.data.image_size, config.data.augment, config.data.targets, tc.seed)
        collator = BatchCollator(config.data.targets, tc.seed)

    params = [{"params": [p for p in model.decoder.parameters() if p.requires_grad], "lr": tc.lr}]
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone_params:
        params.append({"params": backbone_params, "lr": tc.backbone_lr})
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, tc.max_steps, tc.warmup_steps, tc.schedule, tc.poly_power, tc.min_lr_ratio))

    start_step = 0
    checkpoint = None
    if resume:
        checkpoint = checkpoint_dirs(output_dir)[-1] if resume == "auto" and checkpoint_dirs(output_dir) else (
            None if resume == "auto" else Path(resume))
        if checkpoint is not None:
            start_step = _checkpoint_step(checkpoint)

    sampler = OffsetSampler(start_step * samples_per_step, len(dataset), accelerator.process_index,
                            accelerator.num_processes)
    loader = DataLoader(dataset, batch_size=tc.batch_size, sampler=sampler, collate_fn=collator,
                        num_workers=config.data.num_workers, drop_last=True)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if checkpoint is not None:
        try:
            accelerator.load_state(str(checkpoint / "state"))
        except Exception as err:  # safetensors/pickle/size errors from accelerate, torch or the optimizer
            raise ConfigError(f"{checkpoint / 'state'}: damaged or incompatible checkpoint state "
                              f"({type(err).__name__}: {str(err)[:200]}); resume from an earlier checkpoint "
                              "or start afresh") from None
    raw = accelerator.unwrap_model(model)

    logger = CSVLogger(output_dir / "metrics.csv") if accelerator.is_main_process and "csv" in tc.log_with else None
    writer = None
    if accelerator.is_main_process and "tensorboard" in tc.log_with:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(output_dir / "tensorboard"))

    step, micro = start_step, 0
    bar = tqdm(total=tc.max_steps, initial=start_step, desc="train", unit="step",
               disable=not (progress and accelerator.is_main_process))
    window: list[float] = []
    t0 = time.perf_counter()
    raw.decoder.train()
    batches = iter(loader)  # draws the loader's base seed from the torch RNG: restore the RNG after this
    if checkpoint is not None:
        _restore_rng(checkpoint / f"rng-{accelerator.process_index}.safetensors")
    for batch in batches:
        if step >= tc.max_steps:
            break
        with accelerator.accumulate(model):
            losses = training_step(raw, model, criterion, batch, accelerator.device)
            accelerator.backward(losses["loss"])
            if accelerator.sync_gradients and tc.clip_grad > 0:
                accelerator.clip_grad_norm_([p for g in params for p in g["params"]], tc.clip_grad)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        micro += 1
        window.append(float(losses["loss"].detach()))
        if not accelerator.sync_gradients:
            continue
        step += 1
        bar.update(1)
        if step % tc.log_every == 0 or step == tc.max_steps:
            row = {"step": step, "loss": sum(window) / len(window), "lr": scheduler.get_last_lr()[0],
                   "seconds_per_step": (time.perf_counter() - t0) / max(1, len(window) / tc.grad_accum)}
            row.update({k: float(v.detach()) for k, v in losses.items() if k in (
                "loss_grounding", "loss_bce", "loss_dice")})
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if logger:
                logger.log(row)
            if writer:
                for k, v in row.items():
                    if k != "step":
                        writer.add_scalar(k, v, step)
            window, t0 = [], time.perf_counter()
        if step % tc.checkpoint_every == 0 and step < tc.max_steps:
            save_checkpoint(accelerator, raw, output_dir, step, tc.keep_checkpoints)
    bar.close()
    if writer:
        writer.close()
    final = output_dir / "model"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        raw.save_pretrained(final)
    return final


def training_step(raw: SpectrumModel, model: Any, criterion: SpectrumCriterion, batch: dict[str, Any],
                  device: torch.device) -> dict[str, torch.Tensor]:
    """Forward + loss for one collated batch (images, or cached ``features``)."""
    text = raw.encode_prompts(batch["phrases"]).to(device)
    if "features" in batch:
        outputs = model(features={s: f.to(device) for s, f in batch["features"].items()}, text_embeds=text)
    else:
        outputs = model(batch["images"].to(device), text_embeds=text)
    targets = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()}
               for t in batch["targets"]]
    return criterion(outputs, targets)


def save_checkpoint(accelerator: Any, model: SpectrumModel, output_dir: Path, step: int, keep: int) -> Path:
    """Save model weights (``save_pretrained``), optimizer/scheduler/RNG state and the step counter."""
    directory = output_dir / "checkpoints" / f"step-{step}"
    accelerator.save_state(str(directory / "state"))
    _save_rng(directory / f"rng-{accelerator.process_index}.safetensors")
    if accelerator.is_main_process:
        model.save_pretrained(directory / "model")
        (directory / "trainer.json").write_text(json.dumps({"step": step}))
        for old in checkpoint_dirs(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return directory


def _save_rng(path: Path) -> None:
    """Torch RNG states (CPU and CUDA) as tensors: restorable without unpickling anything.

    Data randomness does not need saving (it is a function of the sample index); the torch generators drive
    the loss's point sampling, so they must be restored for an exact resume.
    """
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(states, str(path))


def _checkpoint_step(checkpoint: Path) -> int:
    """The step a checkpoint was saved at (its ``trainer.json``); a missing or damaged file is a ConfigError."""
    path = checkpoint / "trainer.json"
    if not path.is_file():
        raise ConfigError(f"{checkpoint}: not a training checkpoint (no trainer.json)")
    try:
        step = json.loads(path.read_text())["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step {step!r} is not a non-negative integer")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: damaged checkpoint file ({type(err).__name__}: {err})") from None
    return step


def _restore_rng(path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ConfigError(f"checkpoint is missing its RNG state {path.name}: cannot resume exactly")
    try:
        states = load_file(str(path))
        torch.set_rng_state(states["cpu"])
    except Exception as err:
        raise ConfigError(f"{path}: damaged RNG state ({type(err).__name__}: {str(err)[:200]})") from None
    cuda = [states[k] for k in sorted((k for k in states if k.startswith("cuda")), key=lambda k: int(k[4:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
