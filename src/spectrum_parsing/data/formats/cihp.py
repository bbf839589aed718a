"""CIHP / MHP-style multi-person parsing: per-pixel category ids plus per-pixel person ids.

Layout (ROOT itself, or split folders such as ``Training/`` and ``Validation/`` up to two levels below it)::

    Images/*.jpg
    Category_ids/*.png   # 20 part ids (CIHP's: LIP's set with id 10 = torso-skin instead of jumpsuits)
    Instance_ids/*.png   # part-instance ids (not needed: persons come from Human_ids)
    Human_ids/*.png      # person ids, 0 = background
    train_id.txt / val_id.txt   # optional id lists (in the split folder or in ROOT)

A folder named Training/train or Validation/val decides the split of its files; otherwise the id lists do; other
files follow the deterministic rule of :mod:`..base`. Samples without a ``Human_ids`` map fall back to one
person (person 0) with ``has_instances=False``. Persons are renumbered 0..N-1 in the order of their raw ids.
"""

from __future__ import annotations

from pathlib import Path

from ...vocab.labels import CIHP_CANONICAL_OVERRIDES as _CANONICAL_OVERRIDES
from ...vocab.labels import CIHP_LABEL_SETS as LABEL_SETS
from ..base import (
    IMAGE_EXTENSIONS,
    ParsingDataset,
    check_same_size,
    clean_label_map,
    files_by_stem,
    find_dirs,
    read_id_list,
    read_image,
    read_label_png,
)
from ..sample import Sample
from .lip import official_split


def _is_cihp_dir(d: Path) -> bool:
    return (d / "Images").is_dir() and (d / "Category_ids").is_dir()


class CIHPDataset(ParsingDataset):
    """CIHP / MHP-style multi-person reader. ``label_set``: ``"cihp"`` (default) or ``"lip"`` (id 10 =
    jumpsuits, for LIP-labelled data in this layout)."""

    name = "cihp"

    def __init__(
        self, root: str | Path, split: str = "all", val_fraction: float = 0.1, label_set: str = "cihp"
    ) -> None:
        super().__init__(root, split, val_fraction)
        if label_set not in LABEL_SETS:
            raise ValueError(f"label_set must be one of {sorted(LABEL_SETS)}; got {label_set!r}")
        self.set_labels(LABEL_SETS[label_set], _CANONICAL_OVERRIDES)
        dirs = find_dirs(self.root, _is_cihp_dir, max_depth=2)
        if not dirs:
            raise ValueError(
                f"{self.root}: no CIHP layout found (expected Images/ and Category_ids/, optionally Human_ids/ "
                "and Instance_ids/, in ROOT or in split folders such as Training/ and Validation/)"
            )
        root_lists = self._id_lists(self.root)
        self._images: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._humans: dict[str, str] = {}
        official: dict[str, str] = {}
        for d in dirs:
            split_of_dir = official_split(d.name) if d != self.root else None
            lists = self._id_lists(d) or root_lists
            labels = files_by_stem(d / "Category_ids", (".png",))
            humans = files_by_stem(d / "Human_ids", (".png",))
            for stem, img in files_by_stem(d / "Images", IMAGE_EXTENSIONS).items():
                if stem not in labels:
                    continue
                image_id = stem if stem not in self._images else f"{d.name}/{stem}"
                self._images[image_id] = str(img)
                self._labels[image_id] = str(labels[stem])
                if stem in humans:
                    self._humans[image_id] = str(humans[stem])
                split = split_of_dir or lists.get(stem)
                if split is not None:
                    official[image_id] = split
        if not self._images:
            raise ValueError(f"{self.root}: CIHP layout found but no image has a Category_ids PNG with the same stem")
        self.image_ids = self.select(self._images, official)

    @staticmethod
    def _id_lists(d: Path) -> dict[str, str]:
        """id -> split from ``train_id.txt``/``val_id.txt`` in ``d`` (empty when absent)."""
        out: dict[str, str] = {}
        for split in ("train", "val"):
            path = d / f"{split}_id.txt"
            if path.is_file():
                out.update((i, split) for i in read_id_list(path))
        return out

    def _load(self, image_id: str) -> Sample:
        image = read_image(self._images[image_id])
        path = self._labels[image_id]
        label = read_label_png(path)
        check_same_size(image, label, path)
        persons = None
        if image_id in self._humans:
            persons = read_label_png(self._humans[image_id])
            check_same_size(image, persons, self._humans[image_id])
        return self._sample(image_id, image, clean_label_map(label, len(self.classes), path), persons)
