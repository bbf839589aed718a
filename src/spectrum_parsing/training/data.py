"""Training data: the seeded dataset mixture (every view a function of ``(seed, index)``), the resumable
sampler and the batch collator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from ..configs import ConfigError
from ..data import open_dataset
from ..data.sample import Sample
from ..data.targets import TargetConfig, TrainingExample, collate, make_example
from ..data.transforms import (
    ColorJitter,
    CopyPasteComposite,
    RandomHFlip,
    RandomScaleCrop,
    RealPhotoLook,
    ResizeLongestSide,
)
from .config import AugmentConfig, DatasetEntry


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


def open_sources(entries: Sequence[DatasetEntry]) -> list[Any]:
    return [open_dataset(e.dataset, split=e.split, **e.options) for e in entries]
