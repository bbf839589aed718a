"""PASCAL-Person-Part: VOC photos with 6 body-part labels (people may be several, but no person ids).

Layout (ROOT or a folder up to two levels below it)::

    JPEGImages/*.jpg
    SegmentationPart/*.png     # ids 0-6 (mode P/L: the stored values) or the VOC colour palette (RGB)
    train_id.txt, val_id.txt   # optional; or ImageSets/Person/{train,val}.txt, ImageSets/Segmentation/...

Samples are the photos with a SegmentationPart PNG. The id lists decide the split when present, the
deterministic rule of :mod:`..base` otherwise. Colour labels are mapped back to ids through the standard PASCAL
VOC colormap (id 255, the VOC boundary colour, and unknown colours become IGNORE_ID).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ...vocab.labels import PASCAL_PERSON_PART_LABELS, voc_colormap
from ..base import (
    IMAGE_EXTENSIONS,
    ParsingDataset,
    check_same_size,
    clean_label_map,
    files_by_stem,
    find_dirs,
    read_id_list,
    read_image,
    warn_once,
)
from ..sample import IGNORE_ID, Sample

_LIST_CANDIDATES: dict[str, tuple[str, ...]] = {
    split: (
        f"{split}_id.txt",
        f"ImageSets/Person/{split}.txt",
        f"ImageSets/Segmentation/{split}.txt",
        f"ImageSets/{split}.txt",
        f"list/{split}_id.txt",
    )
    for split in ("train", "val")
}


COLOUR_TOLERANCE = 3
"""Public copies of PASCAL-Person-Part store some palette colours a level or two off (126/127 for 128): a colour
within this many levels (each channel) of a palette colour is read as it."""


def colors_to_ids(rgb: np.ndarray, num_classes: int, source: str | Path = "label") -> np.ndarray:
    """Map an (H, W, 3) VOC-palette colour label map to ids 0..num_classes-1 (the boundary colour -> IGNORE_ID).

    Colours within :data:`COLOUR_TOLERANCE` levels of a palette colour are read as that colour (a warning says
    how many pixels moved); a colour farther from every palette colour is a ValueError naming the file."""
    cmap = voc_colormap(256).astype(np.int64)
    palette = np.concatenate([cmap[:num_classes], cmap[255:256]])  # the classes, then the boundary
    palette_ids = np.array([*range(num_classes), IGNORE_ID], dtype=np.int32)
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    uniq, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    colours = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=-1)
    diff = np.abs(colours[:, None, :] - palette[None, :, :]).max(-1)  # (U, K) worst channel difference
    nearest = diff.argmin(1)
    distance = diff[np.arange(len(uniq)), nearest]
    far = distance > COLOUR_TOLERANCE
    if far.any():
        shown = [tuple(int(v) for v in c) for c in colours[far][:5]]
        raise ValueError(f"{source}: colours {shown} are not PASCAL-Person-Part palette colours (nor within "
                         f"{COLOUR_TOLERANCE} levels of one); is this a label map of this dataset?")
    moved = int(counts[distance > 0].sum())
    if moved:
        warn_once(f"{source}: {moved} pixel(s) of colours up to {int(distance.max())} level(s) off the palette "
                  "read as their nearest palette colour")
    ids = palette_ids[nearest]
    return ids[inverse.reshape(codes.shape)]


def read_part_png(path: str | Path, num_classes: int) -> np.ndarray:
    """A PASCAL-Person-Part label PNG as ids: stored values for mode P/L, VOC colours mapped back for RGB."""
    with Image.open(path) as im:
        if im.mode in ("RGB", "RGBA"):
            return colors_to_ids(np.array(im.convert("RGB")), num_classes, path)
        return np.array(im).astype(np.int32)


def _is_ppp_dir(d: Path) -> bool:
    return (d / "JPEGImages").is_dir() and (d / "SegmentationPart").is_dir()


class PascalPersonPartDataset(ParsingDataset):
    """PASCAL-Person-Part reader (head, torso, upper/lower arms, upper/lower legs)."""

    name = "pascal-person-part"

    labels = PASCAL_PERSON_PART_LABELS

    def __init__(self, root: str | Path, split: str = "all", val_fraction: float = 0.1) -> None:
        super().__init__(root, split, val_fraction)
        dirs = find_dirs(self.root, _is_ppp_dir, max_depth=2)
        if not dirs:
            raise ValueError(
                f"{self.root}: no PASCAL-Person-Part layout found (expected JPEGImages/ + SegmentationPart/)"
            )
        self.data_root = dirs[0]
        labels = files_by_stem(self.data_root / "SegmentationPart", (".png",))
        images = files_by_stem(self.data_root / "JPEGImages", IMAGE_EXTENSIONS)
        self._images = {k: str(v) for k, v in images.items() if k in labels}
        self._labels = {k: str(labels[k]) for k in self._images}
        if not self._images:
            raise ValueError(f"{self.data_root}: no JPEGImages photo has a SegmentationPart PNG with the same stem")
        official: dict[str, str] = {}
        for split_name, candidates in _LIST_CANDIDATES.items():
            for base in dict.fromkeys((self.data_root, self.root)):
                path = next((base / c for c in candidates if (base / c).is_file()), None)
                if path is not None:
                    official.update((i, split_name) for i in read_id_list(path) if i in self._images)
                    break
        self.image_ids = self.select(self._images, official)

    def _load(self, image_id: str) -> Sample:
        image = read_image(self._images[image_id])
        path = self._labels[image_id]
        label = read_part_png(path, len(self.classes))
        check_same_size(image, label, path)
        return self._sample(image_id, image, clean_label_map(label, len(self.classes), path))
