"""The one in-memory format every dataset reader produces and every transform consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE_ID = 255
"""Value of ``Sample.semantic`` for unlabelled pixels."""


@dataclass
class Segment:
    """One ground-truth segment: a canonical category worn by / part of one person."""

    category: str  # canonical name (see vocabulary.py); "person" = that person's full-body mask
    mask: np.ndarray  # bool (H, W)
    person: int = 0  # person instance id within the image; -1 when the dataset has no instances


@dataclass
class Sample:
    """An image with its per-person, per-category segments and its dataset-space label map.

    ``semantic`` keeps the dataset's own ids (``classes[i]`` names id i, ``IGNORE_ID`` = unlabelled) for
    evaluation in the dataset's protocol; ``segments`` is what training uses. ``ignore`` marks pixels that no
    loss or metric may count (unlabelled, or withheld categories during training).
    """

    image: np.ndarray  # (H, W, 3) uint8 RGB
    segments: list[Segment]
    semantic: np.ndarray  # (H, W) int32 dataset ids
    classes: list[str]  # dataset class names, index = id (0 is background)
    image_id: str
    dataset: str
    ignore: np.ndarray | None = None  # bool (H, W)
    tags: list[str] = field(default_factory=list)  # image-level weak labels (canonical names)
    has_instances: bool = False  # True when person ids are real (multi-person annotations)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    def validate(self) -> Sample:
        """Check shapes and dtypes; returns self (raises ValueError naming the problem)."""
        h, w = self.size
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"{self.image_id}: image must be (H, W, 3) uint8, got {self.image.shape} {self.image.dtype}")
        if self.semantic.shape != (h, w):
            raise ValueError(f"{self.image_id}: semantic map {self.semantic.shape} != image {(h, w)}")
        for seg in self.segments:
            if seg.mask.shape != (h, w) or seg.mask.dtype != bool:
                raise ValueError(f"{self.image_id}: segment {seg.category!r} mask must be bool {(h, w)}")
        if self.ignore is not None and self.ignore.shape != (h, w):
            raise ValueError(f"{self.image_id}: ignore mask {self.ignore.shape} != image {(h, w)}")
        return self
