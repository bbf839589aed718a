"""Training on accelerate (a package: ``config``, ``data``, ``schedules``, ``model_init``, ``stages``,
``checkpoints``, ``loop``): dataset mixtures, augmentation, exact resume, checkpoints, logs, feature cache.

``spectrum train --config CONFIG.yaml`` runs :func:`train`. The same code runs on one CPU, one GPU, or many
GPUs/nodes under ``accelerate launch`` with no change. Every batch is a pure function of
``(seed, sample index)``: which dataset and image, the augmentation, the copy-paste partners and the negative
phrases all come from a generator seeded by the index. Resuming from a checkpoint therefore continues with
exactly the batches an uninterrupted run would have seen, and with the saved optimizer/scheduler/RNG state.
"""

from .checkpoints import checkpoint_dirs, save_checkpoint
from .config import AugmentConfig, DataConfig, DatasetEntry, ExperimentConfig, ModelSection, TrainConfig
from .data import BatchCollator, MixtureDataset, OffsetSampler, open_sources
from .loop import CSVLogger, continue_after, train, training_step
from .model_init import build_model, warm_start_decoder
from .schedules import build_scheduler
from .stages import withheld_after

__all__ = ["AugmentConfig", "BatchCollator", "CSVLogger", "DataConfig", "DatasetEntry", "ExperimentConfig",
           "MixtureDataset", "ModelSection", "OffsetSampler", "TrainConfig", "build_model", "build_scheduler",
           "checkpoint_dirs", "continue_after", "open_sources", "save_checkpoint", "train", "training_step",
           "warm_start_decoder", "withheld_after"]
