"""The training loop on accelerate (one CPU, one GPU, or ``accelerate launch`` on many): exact resume,
logging to CSV / TensorBoard, checkpoints every ``checkpoint_every`` steps."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..configs import ConfigError
from ..losses import LossConfig, SpectrumCriterion
from ..modeling import SpectrumModel
from .checkpoints import _checkpoint_step, _restore_rng, checkpoint_dirs, save_checkpoint
from .config import ExperimentConfig
from .data import BatchCollator, MixtureDataset, OffsetSampler, open_sources
from .model_init import build_model
from .schedules import build_scheduler
from .stages import withheld_after

logger = logging.getLogger(__name__)


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
        from ..feature_cache import FeatureCacheDataset

        if model.backbone_trainable:
            raise ConfigError("train.feature_cache needs a frozen backbone; this one is fine-tuned (trainable)")
        cache = FeatureCacheDataset(tc.feature_cache, model.backbone.config, config.data.targets)
        dataset: Dataset = cache.cycled(tc.max_steps * samples_per_step)
        collator = cache.collate
    else:
        sources = open_sources(config.data.train)
        dataset = MixtureDataset(sources, [e.weight for e in config.data.train], tc.max_steps * samples_per_step,
                                 config.data.image_size, config.data.augment, config.data.targets, tc.seed)
        collator = BatchCollator(config.data.targets, tc.seed)

    params = [{"params": [p for p in model.decoder.parameters() if p.requires_grad], "lr": tc.lr}]
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone_params:
        params.append({"params": backbone_params, "lr": tc.backbone_lr})
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = build_scheduler(optimizer, tc)

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
