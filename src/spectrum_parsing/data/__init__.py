"""Datasets: the common :class:`Sample` format, the canonical vocabulary and one reader per dataset format.

Open a dataset with ``open_dataset("FORMAT:PATH", split=...)``, e.g. ``open_dataset("ccp:../shared/datasets/ccp")``
or ``open_dataset("coco:annotations/val.json::images", split="all")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import ParsingDataset, split_ids
from .formats import FORMATS
from .formats.coco import split_coco_path
from .sample import IGNORE_ID, Sample, Segment


def open_dataset(spec: str, split: str = "all", **options: Any) -> ParsingDataset:
    """Open ``FORMAT:PATH`` (FORMAT in :data:`FORMATS`) for ``split`` (train, val or all).

    ``options`` go to the reader (e.g. ``val_fraction``, CCP's ``image_level``, COCO's ``category_map``).
    Raises ValueError for a malformed spec, an unknown format or a PATH without a recognised layout, and
    FileNotFoundError when PATH does not exist.
    """
    known = ", ".join(FORMATS)
    fmt, sep, path = spec.partition(":")
    fmt = fmt.strip().lower()
    if not sep or not path:
        raise ValueError(f"dataset spec must be FORMAT:PATH with FORMAT one of {known}; got {spec!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r} in {spec!r}; known formats: {known}")
    path = path.strip()
    target = split_coco_path(path)[0] if fmt == "coco" else Path(path)
    target = target.expanduser()
    if not target.exists():
        raise FileNotFoundError(f"{fmt} dataset path does not exist: {target}")
    if fmt != "coco":
        path = str(target)
    return FORMATS[fmt](path, split=split, **options)


__all__ = ["FORMATS", "IGNORE_ID", "ParsingDataset", "Sample", "Segment", "open_dataset", "split_ids"]
