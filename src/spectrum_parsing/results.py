"""The one result type of parsing: :class:`ParsingResult` (persons with their parts, a label map rendered from
them, and their JSON / COCO / PNG forms). Every path that parses returns it: the pipeline (top-down and
bottom-up), ``SpectrumModel.parse``, video, the server and the Ray engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from . import rendering
from .images import as_rgb_image
from .rendering import label_colours, label_map_image, overlay
from .rle import encode_rle_cropped

__all__ = ["ImageInput", "ParsingResult", "PartInstance", "PersonInstance", "mask_box", "region_mask"]

ImageInput = str | os.PathLike | Image.Image | np.ndarray


def region_mask(local: Tensor, x0: int, y0: int, size: tuple[int, int]) -> dict[str, Any]:
    """Constructor arguments (``box``, ``crop``, ``size``) of a mask given inside a region at ``(x0, y0)`` of an
    image of ``size`` (H, W), without building the full-size mask."""
    bx0, by0, bx1, by1 = mask_box(local)
    x0, y0 = int(x0), int(y0)
    return {"box": (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1), "crop": local[by0:by1, bx0:bx1].bool().clone(),
            "size": (int(size[0]), int(size[1]))}


class _BoxedMask:
    """Mask storage shared by :class:`PartInstance` and :class:`PersonInstance`: only the crop inside the mask's
    box is kept (``box``, ``crop``, ``size`` fields), so a result's memory grows with the area its parts cover,
    not with (number of parts) x (image pixels). ``mask`` gives the full-size bool tensor, built on access."""

    def __post_init__(self, mask: Tensor | None) -> None:
        if mask is not None:  # a full-size mask given: keep its box only
            for key, value in region_mask(mask, 0, 0, tuple(mask.shape)).items():
                setattr(self, key, value)
            return
        if self.crop is None:
            raise ValueError(f"{type(self).__name__} needs a mask (or its crop, box and size)")
        x0, y0, x1, y1 = self.box
        if tuple(self.crop.shape) != (y1 - y0, x1 - x0) or not (0 <= x0 <= x1 <= self.size[1]
                                                                 and 0 <= y0 <= y1 <= self.size[0]):
            raise ValueError(f"crop of shape {tuple(self.crop.shape)} does not fit box {self.box} in {self.size}")

    def _full_mask(self) -> Tensor:
        """The full-size bool ``(H, W)`` mask, rebuilt from the stored crop (a new tensor on every access)."""
        out = torch.zeros(self.size, dtype=torch.bool, device=self.crop.device)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.crop
        return out

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (use this, not ``dataclasses.replace``, which would rebuild the full mask)."""
        from dataclasses import fields

        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        if "mask" in changes:  # a new full-size mask replaces the stored crop
            kwargs.pop("crop")
        kwargs.update(changes)
        return type(self)(**kwargs)

    @property
    def area(self) -> int:
        """Number of mask pixels."""
        return int(self.crop.sum())


@dataclass(eq=False)
class PartInstance(_BoxedMask):
    """A body part or garment instance attached to a person.

    ``score``: the mean score of the part's pixels times its person's score; ``mask``: bool ``(H, W)``
    at the image size (built from ``crop`` on each access); ``box``: tight ``x0, y0, x1, y1`` (end-exclusive);
    ``crop``: the mask inside ``box``; ``size``: ``(H, W)``."""

    label: str
    prompt_index: int
    score: float
    mask: InitVar[Tensor | None] = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    crop: Tensor | None = field(default=None, repr=False)
    size: tuple[int, int] = (0, 0)


@dataclass(eq=False)
class PersonInstance(_BoxedMask):
    """A person instance with its parts sorted by descending score (mask storage as :class:`PartInstance`).

    ``keypoints``: ``(17, 3)`` x, y, score in pixels (COCO order) when a pose detector found the person."""

    id: int
    score: float
    mask: InitVar[Tensor | None] = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    parts: list[PartInstance] = field(default_factory=list)
    keypoints: Any = None
    crop: Tensor | None = field(default=None, repr=False)
    size: tuple[int, int] = (0, 0)


# Set after the dataclasses are built (their ``mask = None`` default would hide an inherited property), so
# ``mask`` stays an init-only constructor argument and reads as the full-size tensor.
PartInstance.mask = PersonInstance.mask = property(  # type: ignore[assignment]
    _BoxedMask._full_mask, doc="Full-size bool (H, W) mask, built from the crop on access.")


def mask_box(mask: Tensor) -> tuple[int, int, int, int]:
    """Tight ``(x0, y0, x1, y1)`` box of a 2-D mask, end-exclusive; ``(0, 0, 0, 0)`` if empty."""
    if mask.dim() != 2:
        raise ValueError(f"mask_box expects a 2-D mask, got shape {tuple(mask.shape)}")
    m = mask.bool()
    rows = torch.nonzero(m.any(dim=1)).flatten()
    if rows.numel() == 0:
        return (0, 0, 0, 0)
    cols = torch.nonzero(m.any(dim=0)).flatten()
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


@dataclass
class ParsingResult:
    """The parsing of one image.

    ``persons``: each with id, full-body mask, box, score and parts (label, score, mask, box).
    ``label_map``: (H, W) int32, 0 = background, ``ids[i]`` = ``labels[i]`` (``i + 1`` unless a preset or label
    map set ``label_ids``); restricted to detected persons. ``prompts``: every prompt scored (the user's, EBP
    additions, and the ``person`` prompt). ``palette``: colours by id (a preset's; None = each label its category's
    distinct colour, :meth:`colours`).
    """

    persons: list[PersonInstance]
    label_map: np.ndarray
    labels: list[str]
    prompts: list[str]
    height: int
    width: int
    label_ids: list[int] | None = None
    palette: np.ndarray | None = None
    preset: str | None = None

    @property
    def ids(self) -> list[int]:
        """The label-map id of each of ``labels``."""
        return list(self.label_ids) if self.label_ids is not None else list(range(1, len(self.labels) + 1))

    @property
    def id_to_label(self) -> dict[int, str]:
        """Label-map id -> label name, with ``0: "background"`` (the JSON's ``labels`` block, with int keys):
        ``result.id_to_label[result.label_map[y, x]]`` names any pixel."""
        return {0: "background", **dict(zip(self.ids, self.labels))}

    def colours(self) -> np.ndarray:
        """(256, 3) uint8 colours by id: a preset's ``palette`` where given, else each label its category's
        distinct colour (:func:`~spectrum_parsing.rendering.label_colours`; labels never share one)."""
        out = np.zeros((256, 3), dtype=np.uint8)
        if self.palette is not None:
            own = np.asarray(self.palette, dtype=np.uint8)[:256]
            out[: len(own)] = own
            return out
        for i, colour in zip(self.ids, label_colours(self.labels)):
            if 0 < i < 256:
                out[i] = colour
        return out

    def to_dict(self, image_name: str | None = None) -> dict[str, Any]:
        """JSON-ready dict: persons -> parts with label, label id, score, box [x0, y0, x1, y1) and COCO RLE mask,
        plus ``coco``: the same as a COCO instance-segmentation file (see :meth:`coco`)."""
        rles = _rles(self.persons)
        ids = dict(zip(self.labels, self.ids))

        def part(p: Any) -> dict[str, Any]:
            return {"label": p.label, "label_id": ids.get(p.label, 0), "score": round(float(p.score), 4),
                    "box": list(p.box), "segmentation": rles[id(p)]}

        return {
            "image": image_name, "height": self.height, "width": self.width, "prompts": list(self.prompts),
            "preset": self.preset,
            "labels": {str(i): name for i, name in zip(self.ids, self.labels)},
            "persons": [{"id": person.id, "score": round(float(person.score), 4), "box": list(person.box),
                         "segmentation": rles[id(person)],
                         **({"keypoints": np.round(person.keypoints, 2).tolist()}
                            if person.keypoints is not None else {}),
                         "parts": [part(p) for p in person.parts]} for person in self.persons],
            "coco": self.coco(image_name, rles=rles),
        }

    def coco(self, image_name: str | None = None, image_id: int = 1,
             rles: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        """A COCO instance-segmentation dict (``images``, ``annotations``, ``categories``) loadable by pycocotools.

        Every person and every part is an annotation with RLE ``segmentation`` (``counts`` a str), ``bbox``
        [x, y, w, h], ``area``, ``score``, ``category_id`` and ``person_id``. Part categories use the label ids;
        the ``person`` category has id ``max(label ids) + 1``.
        """
        rles = rles if rles is not None else _rles(self.persons)
        ids = dict(zip(self.labels, self.ids))
        person_category = max(self.ids, default=0) + 1
        categories = [{"id": i, "name": name, "supercategory": "person"} for i, name in zip(self.ids, self.labels)]
        categories.append({"id": person_category, "name": "person", "supercategory": "person"})
        annotations: list[dict[str, Any]] = []

        def add(item: Any, category_id: int, person_id: int) -> None:
            x0, y0, x1, y1 = (int(v) for v in item.box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "segmentation": rles[id(item)], "area": item.area,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0,
                                "score": round(float(item.score), 4), "person_id": person_id})

        for person in self.persons:
            add(person, person_category, person.id)
            for p in person.parts:
                add(p, ids.get(p.label, 0), person.id)
        return {"images": [{"id": image_id, "file_name": image_name or "", "height": self.height,
                            "width": self.width}],
                "annotations": annotations, "categories": categories}

    def label_map_image(self) -> Image.Image:
        """The label map as a palette PNG image (pixel value = label id; colours = :meth:`colours`)."""
        return label_map_image(self.label_map, self.colours())

    def overlay(self, image: ImageInput, side_by_side: bool = False) -> Image.Image:
        """``image`` with the label map blended in (:meth:`colours`), person boxes, and a legend; with
        ``side_by_side``, the photo and the overlay next to each other."""
        pil = as_rgb_image(image)
        by_id = [""] * max(self.ids, default=0)  # rendering.overlay colours value v with labels[v - 1]
        for i, name in zip(self.ids, self.labels):
            by_id[i - 1] = name
        out = overlay(pil, self.label_map, by_id, colours=self.colours()[: len(by_id) + 1],
                      boxes=[(p.id, p.box) for p in self.persons])
        return rendering.side_by_side(pil, out) if side_by_side else out


def _rles(persons: Sequence[PersonInstance]) -> dict[int, dict[str, Any]]:
    """COCO RLE of every person and part mask, by ``id()`` of the instance (each mask encoded once)."""
    out: dict[int, dict[str, Any]] = {}
    for person in persons:
        for item in (person, *person.parts):
            out[id(item)] = encode_rle_cropped(item.crop.cpu().numpy(), item.box, item.size)
    return out
