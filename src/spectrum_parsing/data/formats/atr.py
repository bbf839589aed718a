"""ATR: single-person fashion photos with 18-label id PNGs.

Layout (ROOT, or ``humanparsing/`` or another folder up to two levels below it)::

    JPEGImages/*.jpg
    SegmentationClassAug/*.png   # ids 0-17

ATR has no official split: the deterministic rule of :mod:`..base` applies.
"""

from __future__ import annotations

from pathlib import Path

from ...vocab.labels import ATR_LABELS
from ..base import find_dirs
from .lip import PairedPNGDataset


def _is_atr_dir(d: Path) -> bool:
    return (d / "JPEGImages").is_dir() and (d / "SegmentationClassAug").is_dir()


class ATRDataset(PairedPNGDataset):
    """ATR reader."""

    name = "atr"
    labels = ATR_LABELS

    def __init__(self, root: str | Path, split: str = "all", val_fraction: float = 0.1) -> None:
        super().__init__(root, split, val_fraction)
        dirs = find_dirs(self.root, _is_atr_dir, max_depth=2)
        if not dirs:
            raise ValueError(
                f"{self.root}: no ATR layout found (expected JPEGImages/ + SegmentationClassAug/, possibly under "
                "humanparsing/)"
            )
        self.data_root = dirs[0]
        self._add_pairs([(self.data_root / "JPEGImages", self.data_root / "SegmentationClassAug", None)])
        if not self._images:
            raise ValueError(f"{self.data_root}: no JPEGImages photo has a SegmentationClassAug PNG with the same stem")
