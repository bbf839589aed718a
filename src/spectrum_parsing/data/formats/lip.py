"""LIP (Look Into Person) and LIP-labelled data such as VITON: single-person images with 20-label id PNGs.

Recognised layouts (searched up to three levels below ROOT; images and labels are paired by file stem)::

    TrainVal_images/train_images/*.jpg  +  TrainVal_parsing_annotations/train_segmentations/*.png   (LIP's own)
    train_images/  + train_segmentations/,  val_images/ + val_segmentations/   (any X_images with X_segmentations)
    image/XXXXXX_0.jpg  +  image-parse/XXXXXX_0.png                             (VITON; palette PNG, value = id)

Official split: an ``X_images`` directory whose X is train/val (or an ``image/`` directory inside a
``train``/``val``/``test`` folder; test counts as val) decides the split of its files; other files follow the
deterministic rule of :mod:`..base`. Left/right are the person's own sides (LIP's convention).
"""

from __future__ import annotations

from pathlib import Path

from ...vocab.labels import LIP_LABELS
from ..base import (
    IMAGE_EXTENSIONS,
    ParsingDataset,
    check_same_size,
    clean_label_map,
    files_by_stem,
    find_dirs,
    read_image,
    read_label_png,
    warn_once,
)
from ..sample import Sample

_SPLIT_NAMES = {
    "train": "train", "training": "train", "trainval": None,
    "val": "val", "validation": "val", "test": "val", "testing": "val",
}


def official_split(name: str) -> str | None:
    """``train``/``val`` for a directory (or prefix) named after an official split, else None."""
    return _SPLIT_NAMES.get(name.lower())


def find_lip_pairs(root: Path) -> list[tuple[Path, Path, str | None]]:
    """(images dir, labels dir, official split or None) for every LIP/VITON-style pair found under ``root``."""
    pairs: list[tuple[Path, Path, str | None]] = []
    seg_dirs = {d.name.lower(): d for d in find_dirs(root, lambda d: d.name.lower().endswith("_segmentations"))}
    for img_dir in find_dirs(root, lambda d: d.name.lower().endswith("_images")):
        prefix = img_dir.name[: -len("_images")]
        sibling = img_dir.parent / f"{prefix}_segmentations"
        seg = sibling if sibling.is_dir() else seg_dirs.get(f"{prefix.lower()}_segmentations")
        if seg is not None:
            pairs.append((img_dir, seg, official_split(prefix)))
    for img_dir in find_dirs(root, lambda d: d.name == "image" and (d.parent / "image-parse").is_dir()):
        split = official_split(img_dir.parent.name) if img_dir.parent != root else None
        pairs.append((img_dir, img_dir.parent / "image-parse", split))
    return pairs


class PairedPNGDataset(ParsingDataset):
    """Images paired by stem with single-person id PNGs (shared by the LIP and ATR readers)."""

    def _add_pairs(self, pairs: list[tuple[Path, Path, str | None]]) -> None:
        """Index the matched files of ``pairs`` and select this split's ids."""
        self._images: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        official: dict[str, str] = {}
        unlabelled: list[str] = []
        for img_dir, lbl_dir, split in pairs:
            labels = files_by_stem(lbl_dir, (".png",))
            for stem, img in files_by_stem(img_dir, IMAGE_EXTENSIONS).items():
                if stem not in labels:
                    unlabelled.append(img.name)
                    continue
                image_id = stem if stem not in self._images else f"{img_dir.name}/{stem}"
                self._images[image_id] = str(img)
                self._labels[image_id] = str(labels[stem])
                if split is not None:
                    official[image_id] = split
        self.unlabelled = sorted(unlabelled)
        """Photos left out because no label map has their name (reported, never silently dropped)."""
        if unlabelled:
            warn_once(f"{self.root}: {len(unlabelled)} photo(s) have no label map and are left out "
                      f"(e.g. {', '.join(self.unlabelled[:3])})")
        self.image_ids = self.select(self._images, official)

    def _load(self, image_id: str) -> Sample:
        image = read_image(self._images[image_id])
        path = self._labels[image_id]
        label = read_label_png(path)
        check_same_size(image, label, path)
        return self._sample(image_id, image, clean_label_map(label, len(self.classes), path))


class LIPDataset(PairedPNGDataset):
    """LIP / VITON reader (LIP's 20 labels)."""

    name = "lip"

    labels = LIP_LABELS

    def __init__(self, root: str | Path, split: str = "all", val_fraction: float = 0.1) -> None:
        super().__init__(root, split, val_fraction)
        pairs = find_lip_pairs(self.root)
        if not pairs:
            raise ValueError(
                f"{self.root}: no LIP layout found (expected X_images/ with X_segmentations/, e.g. "
                "TrainVal_images/train_images + TrainVal_parsing_annotations/train_segmentations, or VITON's "
                "image/ + image-parse/)"
            )
        self._add_pairs(pairs)
        if not self._images:
            raise ValueError(f"{self.root}: LIP layout found but no image has a label PNG with the same stem")
