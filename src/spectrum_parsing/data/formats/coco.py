"""COCO-format JSON annotations (Fashionpedia, ModaNet, DeepFashion2 converted to COCO, ...).

PATH is the JSON file, or ``JSON::IMAGES_DIR`` to name the images folder. Without it, an image's ``file_name``
is looked up in ``images/`` beside the JSON, then relative to the JSON's folder (whichever holds the first
image). Segmentations may be polygons, uncompressed RLE or compressed RLE (decoded with ``pycocotools.mask``).

* Classes: ``background`` + the JSON's category names, ids = COCO category ids remapped to 1..K in sorted order.
  Names map to canonical categories (see :func:`..base.lookup_canonical`, or pass ``category_map``); a name with
  no canonical home is kept lowercased as an open-vocabulary phrase (warned once).
* ``semantic``: the annotations painted in order of decreasing area (so small items stay on top); crowd
  annotations (``iscrowd=1``) mark ignore pixels not covered by another annotation and give no segment.
* Persons: if annotations carry one of :data:`PERSON_KEYS` (first found in the file wins), it groups them into
  persons (renumbered 0..N-1 per image, ``has_instances=True``); otherwise everything is person 0. Masks of a
  ``person`` category become that person's ``person`` segment; without one, a person's ``person`` segment is the
  union of their items.
* A JSON carries no split: ``split="train"/"val"`` apply the deterministic rule of :mod:`..base` to its images
  (use ``split="all"`` on an official val JSON). Images without annotations are skipped unless
  ``skip_empty=False``. Image ids are the file-name stems when unique in the JSON, the COCO ids otherwise.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..base import ParsingDataset, ignore_mask, map_to_canonical, read_image, warn_once
from ..sample import IGNORE_ID, Sample, Segment

PERSON_KEYS: tuple[str, ...] = ("person_id", "human_id", "instance_person", "person", "pair_id")
"""Annotation fields that name the person an item belongs to, in order of preference."""

_KEEP = ("segmentation", "category_id", "area", "iscrowd")


def split_coco_path(path: str | Path) -> tuple[Path, Path | None]:
    """``JSON`` or ``JSON::IMAGES_DIR`` -> (json path, images dir or None)."""
    text = str(path)
    if "::" in text:
        json_part, images_part = text.split("::", 1)
        return Path(json_part), Path(images_part)
    return Path(text), None


def decode_segmentation(segmentation: Any, height: int, width: int, source: str = "annotation") -> np.ndarray:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as a bool (height, width) mask."""
    if isinstance(segmentation, list):
        polygons = [list(map(float, p)) for p in segmentation if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation:
        size = [int(v) for v in segmentation.get("size", (height, width))]
        if size != [height, width]:
            raise ValueError(f"{source}: RLE size {size} does not match the image {[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"{source}: unsupported segmentation of type {type(segmentation).__name__}")
    with warnings.catch_warnings():  # pycocotools vs NumPy 2 "copy keyword" deprecation, harmless here
        warnings.simplefilter("ignore", DeprecationWarning)
        mask = mask_utils.decode(rle)
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    return mask.astype(bool)


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


class COCODataset(ParsingDataset):
    """COCO-format reader. ``root`` is the JSON path (or ``JSON::IMAGES_DIR``); ``images_dir`` overrides the
    images folder; ``category_map`` maps raw category names to canonical names."""

    name = "coco"

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        val_fraction: float = 0.1,
        images_dir: str | Path | None = None,
        category_map: dict[str, str] | None = None,
        skip_empty: bool = True,
    ) -> None:
        json_path, images_from_path = split_coco_path(root)
        super().__init__(json_path, split, val_fraction)
        if not json_path.is_file():
            raise ValueError(f"{json_path}: the coco format needs a COCO JSON file (PATH or PATH::IMAGES_DIR)")
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "images" not in data or "categories" not in data:
            raise ValueError(f"{json_path}: not a COCO JSON (needs 'images', 'annotations' and 'categories')")

        cats = sorted(data["categories"], key=lambda c: int(c["id"]))
        self._cat_index = {int(c["id"]): k + 1 for k, c in enumerate(cats)}
        self.classes = ["background", *(str(c["name"]) for c in cats)]
        self.canonical = map_to_canonical(self.classes, category_map, source=f"coco {json_path.name}")

        anns_by_image: dict[Any, list[dict[str, Any]]] = {}
        person_key: str | None = None
        annotations = data.get("annotations") or []
        for key in PERSON_KEYS:
            if any(a.get(key) is not None for a in annotations):
                person_key = key
                break
        self.person_key = person_key
        keep = (*_KEEP, person_key) if person_key else _KEEP
        for ann in annotations:
            if "segmentation" not in ann or int(ann.get("category_id", -1)) not in self._cat_index:
                continue
            anns_by_image.setdefault(ann["image_id"], []).append({k: ann[k] for k in keep if k in ann})

        images = [im for im in data["images"] if not skip_empty or anns_by_image.get(im["id"])]
        stems = [Path(str(im["file_name"])).stem for im in images]
        use_stems = len(set(stems)) == len(stems)
        self._records: dict[str, dict[str, Any]] = {}
        for im, stem in zip(images, stems):
            image_id = stem if use_stems else str(im["id"])
            self._records[image_id] = {
                "file_name": str(im["file_name"]),
                "height": int(im["height"]) if "height" in im else None,
                "width": int(im["width"]) if "width" in im else None,
                "anns": anns_by_image.get(im["id"], []),
            }
        self.images_dir = self._resolve_images_dir(json_path, images_dir or images_from_path, images)
        self.image_ids = self.select(self._records)

    @staticmethod
    def _resolve_images_dir(json_path: Path, explicit: str | Path | None, images: list[dict[str, Any]]) -> Path:
        if explicit is not None:
            if not Path(explicit).is_dir():
                raise ValueError(f"{explicit}: images directory does not exist")
            return Path(explicit)
        candidates = [json_path.parent / "images", json_path.parent]
        if images:
            first = str(images[0]["file_name"])
            for c in candidates:
                if (c / first).is_file():
                    return c
        return candidates[0] if candidates[0].is_dir() else candidates[1]

    def _load(self, image_id: str) -> Sample:
        rec = self._records[image_id]
        path = self.images_dir / rec["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image of {image_id!r} not found (pass PATH as JSON::IMAGES_DIR)")
        image = read_image(path)
        h, w = image.shape[:2]
        if rec["height"] is not None and (rec["height"], rec["width"]) != (h, w):
            raise ValueError(f"{path}: image size {(h, w)} does not match the JSON's {(rec['height'], rec['width'])}")

        items: list[tuple[float, int, dict[str, Any], np.ndarray]] = []
        for order, ann in enumerate(rec["anns"]):
            mask = decode_segmentation(ann["segmentation"], h, w, source=f"{path} annotation {order}")
            area = float(ann["area"]) if ann.get("area") is not None else float(mask.sum())
            items.append((area, order, ann, mask))
        items.sort(key=lambda t: (-t[0], t[1]))

        semantic = np.zeros((h, w), dtype=np.int32)
        painted = np.zeros((h, w), dtype=bool)
        crowd = np.zeros((h, w), dtype=bool)
        for _, _, ann, mask in items:
            if ann.get("iscrowd"):
                crowd |= mask
            else:
                semantic[mask] = self._cat_index[int(ann["category_id"])]
                painted |= mask
        semantic[crowd & ~painted] = IGNORE_ID
        return Sample(
            image=image,
            segments=self._segments(items, image_id),
            semantic=semantic,
            classes=list(self.classes),
            image_id=image_id,
            dataset=self.name,
            ignore=ignore_mask(semantic),
            has_instances=self.person_key is not None,
        )

    def _segments(self, items: list[tuple[float, int, dict[str, Any], np.ndarray]], image_id: str) -> list[Segment]:
        """Per-person segments: one per (person, category) (union of its masks), plus one ``person`` each."""
        key = self.person_key
        raw_persons: list[Any] = []
        for _, _, ann, _ in items:
            if key is not None and ann.get(key) is not None and ann[key] not in raw_persons:
                raw_persons.append(ann[key])
        index = {raw: k for k, raw in enumerate(sorted(raw_persons, key=_sort_key))} if key else {}
        bodies: dict[int, np.ndarray] = {}
        parts: dict[int, dict[int, np.ndarray]] = {}
        for _, _, ann, mask in sorted(items, key=lambda t: t[1]):
            if ann.get("iscrowd"):
                continue
            if key is None:
                person = 0
            elif ann.get(key) is None:
                warn_once(f"coco {self.root.name}: annotations without {key!r} (e.g. in {image_id}) get no segment")
                continue
            else:
                person = index[ann[key]]
            cid = self._cat_index[int(ann["category_id"])]
            if self.canonical[cid] == "person":
                bodies[person] = bodies[person] | mask if person in bodies else mask.copy()
            else:
                by_cid = parts.setdefault(person, {})
                by_cid[cid] = by_cid[cid] | mask if cid in by_cid else mask.copy()
        segments: list[Segment] = []
        for person in sorted(set(bodies) | set(parts)):
            merged: dict[str, np.ndarray] = {}
            for cid in sorted(parts.get(person, {})):
                name = str(self.canonical[cid])
                mask = parts[person][cid]
                merged[name] = merged[name] | mask if name in merged else mask
            body = bodies.get(person)
            if body is None:
                body = np.zeros_like(next(iter(merged.values())))
                for mask in merged.values():
                    body |= mask
            if body.any():
                segments.append(Segment("person", body, person))
            segments.extend(Segment(name, mask, person) for name, mask in merged.items() if mask.any())
        return segments
