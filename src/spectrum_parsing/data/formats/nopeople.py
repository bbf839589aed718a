"""Photos with no person in them (e.g. garments nobody wears): negatives and backgrounds for training.

Layout (ROOT)::

    images/*.jpg            # or the photos directly in ROOT
    images.csv              # optional: columns ``image`` (file stem) and ``label`` (the garment shown)

Every pixel is background and every category is known to be absent, so a model trained on these learns that
a garment lying on a bed is not "t-shirt" unless someone wears it. The ``label`` column becomes the sample's
``tags`` (canonical names): the phrase most likely to be wrongly matched, offered as a negative in training.
Split: the deterministic rule of :mod:`..base` (``val_fraction``, default 1/3 so a third stays for measuring).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...vocab import categories as vocabulary
from ..base import IMAGE_EXTENSIONS, ParsingDataset, files_by_stem, lookup_canonical, read_image
from ..sample import Sample


class NoPersonDataset(ParsingDataset):
    """Reader for folders of person-free photos (format ``no-person``)."""

    name = "no-person"

    def __init__(self, root: str | Path, split: str = "all", val_fraction: float = 1 / 3) -> None:
        super().__init__(root, split, val_fraction)
        folder = self.root / "images" if (self.root / "images").is_dir() else self.root
        self._files = files_by_stem(folder, IMAGE_EXTENSIONS)
        if not self._files:
            raise ValueError(f"{self.root}: no photos found (expected images/*.jpg or photos in the folder)")
        self._tags: dict[str, list[str]] = {}
        table = self.root / "images.csv"
        if table.is_file():
            with table.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    name = lookup_canonical(row.get("label") or "")
                    if row.get("image") and name is not None:
                        self._tags[row["image"]] = [name]
        # Every canonical category is annotated (as absent): the label space is the whole vocabulary.
        self.classes = ["background", *vocabulary.BY_NAME]
        self.canonical = [None, *vocabulary.BY_NAME]
        self.image_ids = self.select(self._files)

    def _load(self, image_id: str) -> Sample:
        image = read_image(self._files[image_id])
        return Sample(image=image, segments=[], semantic=np.zeros(image.shape[:2], dtype=np.int32),
                      classes=list(self.classes), image_id=image_id, dataset=self.name,
                      tags=list(self._tags.get(image_id, [])))
