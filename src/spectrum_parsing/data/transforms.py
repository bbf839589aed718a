"""Augmentations on :class:`~spectrum_parsing.data.sample.Sample`.

Every transform returns a new Sample that shares no array with its input (which is never mutated); all
randomness comes from an explicit ``numpy.random.Generator`` passed at call time (``transform(sample, rng)``),
so a seeded generator makes a whole pipeline reproducible. Images are resized with Pillow (bilinear,
antialiased when shrinking); label maps, ignore masks and segment masks with nearest-neighbour sampling on the
same pixel-centre grid, so labels stay aligned with the image.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..vocab import categories as vocabulary
from .sample import IGNORE_ID, Sample, Segment

__all__ = [
    "Transform",
    "Compose",
    "hflip",
    "semantic_swap_pairs",
    "remap_semantic",
    "RandomHFlip",
    "RandomScaleCrop",
    "ColorJitter",
    "ResizeLongestSide",
    "CopyPasteComposite",
    "resize_sample",
    "RealPhotoLook",
    "paste_on_background",
    "rotate_sample",
]

Transform = Callable[[Sample, np.random.Generator], Sample]
"""A sample transform: ``transform(sample, rng) -> new sample``."""


# --------------------------------------------------------------------------------------------
# Low-level helpers
# --------------------------------------------------------------------------------------------


def _nearest_index(src: int, dst: int) -> np.ndarray:
    """Source index of every destination pixel for a nearest resize (pixel-centre aligned)."""
    idx = np.floor((np.arange(dst) + 0.5) * (src / dst)).astype(np.int64)
    return np.clip(idx, 0, src - 1)


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D (or HWC) array to ``size`` = (h, w); keeps the dtype."""
    h, w = size
    if array.shape[:2] == (h, w):
        return array.copy()
    rows = _nearest_index(array.shape[0], h)
    cols = _nearest_index(array.shape[1], w)
    return array[rows[:, None], cols[None, :]]


def _resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of an (H, W, 3) uint8 image to ``size`` = (h, w)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image.copy()
    resized = Image.fromarray(image).resize((w, h), resample=Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).copy()


def _replace(sample: Sample, **changes: object) -> Sample:
    """A new Sample with ``changes``; every field not changed is copied, so nothing is shared with the input."""
    if "image" not in changes:
        changes["image"] = sample.image.copy()
    if "semantic" not in changes:
        changes["semantic"] = sample.semantic.copy()
    if "ignore" not in changes:
        changes["ignore"] = None if sample.ignore is None else sample.ignore.copy()
    if "segments" not in changes:
        changes["segments"] = [Segment(s.category, s.mask.copy(), s.person) for s in sample.segments]
    changes.setdefault("tags", list(sample.tags))
    changes.setdefault("classes", list(sample.classes))
    return dataclasses.replace(sample, **changes)


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    """Resize image (bilinear) and labels (nearest) to ``size`` = (h, w); segments that vanish are dropped."""
    h, w = max(1, int(size[0])), max(1, int(size[1]))
    segments = []
    for seg in sample.segments:
        mask = _resize_nearest(seg.mask, (h, w))
        if mask.any():
            segments.append(Segment(seg.category, mask, seg.person))
    return _replace(
        sample,
        image=_resize_image(sample.image, (h, w)),
        semantic=_resize_nearest(sample.semantic, (h, w)),
        ignore=None if sample.ignore is None else _resize_nearest(sample.ignore, (h, w)),
        segments=segments,
    )


class Compose:
    """Apply transforms in order, threading the same generator through them."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


# --------------------------------------------------------------------------------------------
# Horizontal flip
# --------------------------------------------------------------------------------------------

_LEFT = re.compile("left", re.IGNORECASE)


def _to_right(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.isupper():
        return "RIGHT"
    return "Right" if text[0].isupper() else "right"


@functools.lru_cache(maxsize=256)
def _swap_pairs(classes: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    lower = {name.lower(): i for i, name in enumerate(classes)}
    pairs = []
    for i, name in enumerate(classes):
        if not _LEFT.search(name):
            continue
        counterpart = _LEFT.sub(_to_right, name)
        j = classes.index(counterpart) if counterpart in classes else lower.get(counterpart.lower())
        if j is not None and j != i:
            pairs.append((i, j))
    return tuple(pairs)


def semantic_swap_pairs(classes: Sequence[str]) -> list[tuple[int, int]]:
    """(left id, right id) pairs of a dataset's class list, derived by name.

    A class whose name contains "left" (any case, e.g. "Left-arm", "left_shoe", "leftLeg") pairs with the class
    named the same with "right" in its place (exact match first, then case-insensitive). Classes without a
    counterpart are not swapped.
    """
    return list(_swap_pairs(tuple(classes)))


def _swap_semantic(semantic: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    out = semantic.copy()
    for left, right in _swap_pairs(tuple(classes)):
        out[semantic == left] = right
        out[semantic == right] = left
    return out


def _mirror(category: str) -> str:
    return vocabulary.get(category).mirror or category


def hflip(sample: Sample) -> Sample:
    """Mirror a sample left-right, swapping left/right categories, semantic ids and tags."""
    semantic = np.ascontiguousarray(sample.semantic[:, ::-1])
    return _replace(
        sample,
        image=np.ascontiguousarray(sample.image[:, ::-1]),
        semantic=_swap_semantic(semantic, sample.classes),
        ignore=None if sample.ignore is None else np.ascontiguousarray(sample.ignore[:, ::-1]),
        segments=[Segment(_mirror(s.category), np.ascontiguousarray(s.mask[:, ::-1]), s.person)
                  for s in sample.segments],
        tags=[_mirror(t) if t in vocabulary.BY_NAME else t for t in sample.tags],
    )


@dataclass
class RandomHFlip:
    """:func:`hflip` with probability ``p``."""

    p: float = 0.5

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return hflip(sample) if rng.random() < self.p else _replace(sample)


# --------------------------------------------------------------------------------------------
# Scale + crop, resize
# --------------------------------------------------------------------------------------------


def _person_masks(sample: Sample) -> list[np.ndarray]:
    """Full-body mask of every person: its ``person`` segments, else the union of its segments."""
    by_person: dict[int, list[Segment]] = {}
    for seg in sample.segments:
        by_person.setdefault(seg.person, []).append(seg)
    masks = []
    for segs in by_person.values():
        chosen = [s for s in segs if s.category == "person"] or segs
        masks.append(np.logical_or.reduce([s.mask for s in chosen]))
    return masks


def _pad_to(sample: Sample, size: tuple[int, int]) -> Sample:
    """Pad right/bottom to at least ``size``: image 0, semantic IGNORE_ID, ignore True, masks False."""
    h, w = sample.size
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph == 0 and pw == 0:
        return sample
    ignore = np.zeros((h, w), bool) if sample.ignore is None else sample.ignore
    return _replace(
        sample,
        image=np.pad(sample.image, ((0, ph), (0, pw), (0, 0))),
        semantic=np.pad(sample.semantic, ((0, ph), (0, pw)), constant_values=IGNORE_ID),
        ignore=np.pad(ignore, ((0, ph), (0, pw)), constant_values=True),
        segments=[Segment(s.category, np.pad(s.mask, ((0, ph), (0, pw))), s.person) for s in sample.segments],
    )


def _crop(sample: Sample, y0: int, x0: int, h: int, w: int) -> Sample:
    """Crop a window (segments left empty are dropped)."""
    ys, xs = slice(y0, y0 + h), slice(x0, x0 + w)
    segments = [Segment(s.category, s.mask[ys, xs].copy(), s.person) for s in sample.segments]
    return _replace(
        sample,
        image=sample.image[ys, xs].copy(),
        semantic=sample.semantic[ys, xs].copy(),
        ignore=None if sample.ignore is None else sample.ignore[ys, xs].copy(),
        segments=[s for s in segments if s.mask.any()],
    )


def _window_sum(integral: np.ndarray, y0: int, x0: int, h: int, w: int) -> int:
    return int(integral[y0 + h, x0 + w] - integral[y0, x0 + w] - integral[y0 + h, x0] + integral[y0, x0])


@dataclass
class RandomScaleCrop:
    """Random rescale by a factor in [min_scale, max_scale], then a random ``crop_size`` (h, w) window.

    Inputs smaller than the crop are padded right/bottom (image 0, semantic ``IGNORE_ID``, ignore True).
    Up to ``max_tries`` windows are drawn; the first that keeps at least ``keep_person_fraction`` of some
    person's pixels (and at least one of them) is used, else the window keeping the largest fraction.
    ``crop_size=None`` only rescales. Segments that end up empty are dropped.
    """

    min_scale: float = 0.5
    max_scale: float = 2.0
    crop_size: tuple[int, int] | None = None
    keep_person_fraction: float = 0.25
    max_tries: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}")
        if self.crop_size is not None:
            self.crop_size = (int(self.crop_size[0]), int(self.crop_size[1]))
            if min(self.crop_size) < 1:
                raise ValueError(f"crop_size must be positive, got {self.crop_size}")
        if not 0.0 <= self.keep_person_fraction <= 1.0:
            raise ValueError(f"keep_person_fraction must be in [0, 1], got {self.keep_person_fraction}")

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        scale = float(rng.uniform(self.min_scale, self.max_scale))
        h, w = sample.size
        sample = resize_sample(sample, (max(1, round(h * scale)), max(1, round(w * scale))))
        if self.crop_size is None:
            return sample
        ch, cw = self.crop_size
        sample = _pad_to(sample, (ch, cw))
        h, w = sample.size
        persons = [(np.pad(m.cumsum(0).cumsum(1), ((1, 0), (1, 0))), int(m.sum())) for m in _person_masks(sample)]
        persons = [(integral, total) for integral, total in persons if total > 0]
        best, best_fraction = (0, 0), -1.0
        for _ in range(max(1, self.max_tries)):
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            if not persons:
                best = (y0, x0)
                break
            kept = [(_window_sum(integral, y0, x0, ch, cw), total) for integral, total in persons]
            fraction = max(k / total for k, total in kept)
            if fraction > best_fraction:
                best, best_fraction = (y0, x0), fraction
            if fraction > 0 and fraction >= self.keep_person_fraction:
                break
        return _crop(sample, best[0], best[1], ch, cw)


@dataclass
class ResizeLongestSide:
    """Resize so that the longer side equals ``size`` (aspect ratio kept)."""

    size: int

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        h, w = sample.size
        scale = self.size / max(h, w)
        return resize_sample(sample, (max(1, round(h * scale)), max(1, round(w * scale))))


# --------------------------------------------------------------------------------------------
# Colour jitter
# --------------------------------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


@dataclass
class ColorJitter:
    """Random brightness, contrast, saturation and hue changes of the image only (labels untouched).

    Factors follow torchvision: brightness/contrast/saturation ``x`` draws a factor in [max(0, 1 - x), 1 + x]
    (contrast blends with the mean grey level, saturation with the greyscale image); ``hue`` in [0, 0.5]
    rotates the chroma plane of YIQ space by a fraction in [-hue, hue] of a full turn (luma is preserved).
    The four operations run in random order; with probability ``1 - p`` the image is left as is.
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    p: float = 1.0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")

    @staticmethod
    def _factor(rng: np.random.Generator, amount: float) -> float:
        return float(rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return _replace(sample)
        img = sample.image.astype(np.float32)
        for op in rng.permutation(4):
            if op == 0 and self.brightness > 0:
                img = img * self._factor(rng, self.brightness)
            elif op == 1 and self.contrast > 0:
                mean = float((np.clip(img, 0, 255) @ _LUMA).mean())
                img = mean + (img - mean) * self._factor(rng, self.contrast)
            elif op == 2 and self.saturation > 0:
                grey = (img @ _LUMA)[..., None]
                img = grey + (img - grey) * self._factor(rng, self.saturation)
            elif op == 3 and self.hue > 0:
                angle = 2.0 * np.pi * float(rng.uniform(-self.hue, self.hue))
                cos, sin = np.cos(angle), np.sin(angle)
                rotate = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
                matrix = (_YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ).astype(np.float32)
                img = img @ matrix.T
            img = np.clip(img, 0.0, 255.0)
        return _replace(sample, image=np.rint(img).astype(np.uint8))


# --------------------------------------------------------------------------------------------
# Copy-paste multi-person composites
# --------------------------------------------------------------------------------------------


def _canonical_or_lower(name: str) -> str:
    return vocabulary.canonical_name(name) or name.strip().lower()


def _class_lut(src: Sequence[str], dst: Sequence[str]) -> np.ndarray:
    """Lookup table src id -> dst id by canonical name (then by lower-cased name); 0 -> 0; else IGNORE_ID."""
    size = max(len(src), IGNORE_ID + 1)
    lut = np.full(size, IGNORE_ID, dtype=np.int64)
    if list(src) == list(dst):
        lut[: len(src)] = np.arange(len(src))
        return lut
    index: dict[str, int] = {}
    for j, name in enumerate(dst):
        index.setdefault(_canonical_or_lower(name), j)
    for i, name in enumerate(src):
        lut[i] = index.get(_canonical_or_lower(name), IGNORE_ID)
    lut[0] = 0  # class 0 is background in every dataset
    lut[IGNORE_ID] = IGNORE_ID
    return lut


def remap_semantic(semantic: np.ndarray, src_classes: Sequence[str], dst_classes: Sequence[str]) -> np.ndarray:
    """Map dataset ids of ``src_classes`` to ids of ``dst_classes`` by canonical name.

    Id 0 (background) stays 0, ``IGNORE_ID`` stays; ids with no equivalent (or out of range) become
    ``IGNORE_ID``. Returns int32.
    """
    lut = _class_lut(src_classes, dst_classes)
    sem = semantic.astype(np.int64)
    out = np.full(sem.shape, IGNORE_ID, dtype=np.int32)
    valid = (sem >= 0) & (sem < lut.shape[0])
    out[valid] = lut[sem[valid]]
    return out


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) end-exclusive, None if empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


@dataclass
class _Person:
    mask: np.ndarray  # bool (H, W) on the canvas: visible full-body mask
    parts: list[Segment]
    area: int  # visible pixels when placed (reference for min_visible)


@dataclass
class CopyPasteComposite:
    """Copy-paste multi-person composites built from single-person samples.

    ``composite(samples, rng)``: the first sample is the canvas (its person(s) come first); every further
    sample's person - its ``person`` segment mask (the largest one when there are several; the union of its
    segments when there is none) - is cut out, optionally mirrored (``flip_p``), scaled so that its height is
    ``scale`` x the canvas people's height, and placed at a random position such that at least ``min_inside``
    of its box lies inside the canvas along each axis (and at least one of its pixels). People are pasted in
    depth order (later = in front): the pixels of a pasted person are removed from everyone behind. A person
    whose visible area falls below ``min_visible`` of its area when placed is dropped with its segments, and
    its remaining pixels become ignored (``ignore`` True, semantic ``IGNORE_ID``).

    The composite has between ``num_people[0]`` and ``num_people[1]`` people (canvas included) drawn from the
    first samples given (as many as there are, at most). Pasted semantic ids are remapped to the canvas's
    class list by canonical name (no equivalent -> ``IGNORE_ID``). The result has instance ids 0..n-1 in depth
    order, ``has_instances=True`` and the image ids joined with "+".
    """

    num_people: tuple[int, int] = (1, 4)
    scale: tuple[float, float] = (0.5, 1.0)
    min_inside: float = 0.5
    min_visible: float = 0.1
    flip_p: float = 0.5
    max_tries: int = 10

    def __post_init__(self) -> None:
        lo, hi = int(self.num_people[0]), int(self.num_people[1])
        if not 1 <= lo <= hi:
            raise ValueError(f"num_people must satisfy 1 <= min <= max, got {self.num_people}")
        self.num_people = (lo, hi)
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must satisfy 0 < min <= max, got {self.scale}")
        if not 0.0 < self.min_inside <= 1.0:
            raise ValueError(f"min_inside must be in (0, 1], got {self.min_inside}")
        if not 0.0 <= self.min_visible <= 1.0:
            raise ValueError(f"min_visible must be in [0, 1], got {self.min_visible}")

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _canvas_people(sample: Sample) -> list[_Person]:
        groups: dict[int, list[Segment]] = {}
        for seg in sample.segments:
            key = seg.person if sample.has_instances and seg.person >= 0 else 0
            groups.setdefault(key, []).append(seg)
        people = []
        for key in sorted(groups):
            segs = groups[key]
            bodies = [s.mask for s in segs if s.category == "person"]
            mask = np.logical_or.reduce(bodies or [s.mask for s in segs]).copy()
            parts = [Segment(s.category, s.mask.copy(), 0) for s in segs if s.category != "person"]
            people.append(_Person(mask, parts, int(mask.sum())))
        return [p for p in people if p.area > 0]

    @staticmethod
    def _cutout(sample: Sample) -> tuple[np.ndarray, list[Segment]] | None:
        """The person to paste: (full-body mask, part segments clipped to it)."""
        persons = [s for s in sample.segments if s.category == "person" and s.mask.any()]
        if persons:
            chosen = max(persons, key=lambda s: int(s.mask.sum()))
            pid = chosen.person
            same = [s for s in sample.segments if not sample.has_instances or s.person == pid]
            body = np.logical_or.reduce([s.mask for s in same if s.category == "person"])
        else:
            same = list(sample.segments)
            if not same:
                return None
            body = np.logical_or.reduce([s.mask for s in same])
        if not body.any():
            return None
        parts = [Segment(s.category, s.mask & body, 0) for s in same if s.category != "person"]
        return body, [p for p in parts if p.mask.any()]

    def _place(self, size: tuple[int, int], box: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
        """Random top-left corner keeping at least ``min_inside`` of the box inside along each axis."""
        corner = []
        for extent, inner in zip(size, box):
            lo = int(np.floor(-(1.0 - self.min_inside) * inner))
            hi = int(np.ceil(extent - self.min_inside * inner))
            corner.append(int(rng.integers(lo, hi + 1)) if lo <= hi else (extent - inner) // 2)
        return corner[0], corner[1]

    # ---- main -------------------------------------------------------------------------------

    def __call__(self, samples: Sequence[Sample], rng: np.random.Generator) -> Sample:
        if not samples:
            raise ValueError("CopyPasteComposite needs at least one sample")
        lo, hi = min(self.num_people[0], len(samples)), min(self.num_people[1], len(samples))
        count = int(rng.integers(lo, hi + 1))
        canvas = samples[0]
        height, width = canvas.size
        image = canvas.image.copy()
        semantic = canvas.semantic.astype(np.int32, copy=True)
        ignore = None if canvas.ignore is None else canvas.ignore.copy()
        people = self._canvas_people(canvas)
        tags = list(canvas.tags)
        image_ids = [canvas.image_id]
        box = _bbox(np.logical_or.reduce([p.mask for p in people])) if people else None
        ref_height = (box[1] - box[0]) if box else height

        for source in samples[1:count]:
            if rng.random() < self.flip_p:
                source = hflip(source)
            cut = self._cutout(source)
            if cut is None:
                continue
            body, parts = cut
            y0, y1, x0, x1 = _bbox(body)  # type: ignore[misc]
            factor = float(rng.uniform(*self.scale)) * ref_height / (y1 - y0)
            th, tw = max(1, round((y1 - y0) * factor)), max(1, round((x1 - x0) * factor))
            crop = (slice(y0, y1), slice(x0, x1))
            src_body = _resize_nearest(body[crop], (th, tw))
            for _ in range(max(1, self.max_tries)):
                ty, tx = self._place((height, width), (th, tw), rng)
                cy0, cy1, cx0, cx1 = max(ty, 0), min(ty + th, height), max(tx, 0), min(tx + tw, width)
                if cy0 < cy1 and cx0 < cx1 and src_body[cy0 - ty : cy1 - ty, cx0 - tx : cx1 - tx].any():
                    break
            else:
                continue  # never landed on the canvas
            dst = (slice(cy0, cy1), slice(cx0, cx1))
            src = (slice(cy0 - ty, cy1 - ty), slice(cx0 - tx, cx1 - tx))
            paste = np.zeros((height, width), dtype=bool)
            paste[dst] = src_body[src]

            src_image = _resize_image(source.image[crop], (th, tw))[src]
            src_sem = _resize_nearest(remap_semantic(source.semantic[crop], source.classes, canvas.classes), (th, tw))
            image[dst][paste[dst]] = src_image[paste[dst]]
            region = semantic[dst]
            region[paste[dst]] = src_sem[src][paste[dst]]
            if source.ignore is not None or ignore is not None:
                if ignore is None:
                    ignore = np.zeros((height, width), dtype=bool)
                src_ignore = (np.zeros((th, tw), bool) if source.ignore is None
                              else _resize_nearest(source.ignore[crop], (th, tw)))
                ignore[dst][paste[dst]] = src_ignore[src][paste[dst]]

            for person in people:  # everyone so far is behind the new person
                person.mask &= ~paste
                for part in person.parts:
                    part.mask &= ~paste
            new_parts = []
            for part in parts:
                mask = np.zeros((height, width), dtype=bool)
                mask[dst] = _resize_nearest(part.mask[crop], (th, tw))[src]
                mask &= paste
                new_parts.append(Segment(part.category, mask, 0))
            people.append(_Person(paste, new_parts, int(paste.sum())))
            tags.extend(t for t in source.tags if t not in tags)
            image_ids.append(source.image_id)

        segments: list[Segment] = []
        pid = 0
        for person in people:
            visible = int(person.mask.sum())
            if visible == 0 or visible < self.min_visible * person.area:
                if visible:
                    if ignore is None:
                        ignore = np.zeros((height, width), dtype=bool)
                    ignore |= person.mask
                    semantic[person.mask] = IGNORE_ID
                continue
            segments.append(Segment("person", person.mask, pid))
            segments.extend(Segment(p.category, p.mask, pid) for p in person.parts if p.mask.any())
            pid += 1
        return Sample(
            image=image, segments=segments, semantic=semantic, classes=list(canvas.classes),
            image_id="+".join(image_ids),
            dataset=canvas.dataset, ignore=ignore, tags=tags, has_instances=True,
        )


# --------------------------------------------------------------------------------------------
# Real-photo look: people on person-free backgrounds, rotation, blur, occluders
# --------------------------------------------------------------------------------------------


def _person_region(sample: Sample) -> np.ndarray:
    """Union of every person's full-body mask (False everywhere when the sample has no person)."""
    masks = _person_masks(sample)
    return np.logical_or.reduce(masks) if masks else np.zeros(sample.size, dtype=bool)


def _cover(background: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random window of ``background``, scaled to cover ``size`` = (h, w) (up to 1.5x more), as (h, w, 3)."""
    h, w = size
    bh, bw = background.shape[:2]
    scale = max(h / bh, w / bw) * float(rng.uniform(1.0, 1.5))
    sh, sw = max(h, round(bh * scale)), max(w, round(bw * scale))
    big = _resize_image(background, (sh, sw))
    y0, x0 = int(rng.integers(0, sh - h + 1)), int(rng.integers(0, sw - w + 1))
    return big[y0:y0 + h, x0:x0 + w]


def _place_on_canvas(sample: Sample, size: tuple[int, int], rng: np.random.Generator) -> Sample:
    """Pad the sample to at least ``size`` at a random offset; the new pixels are background (0), not ignored."""
    h, w = sample.size
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph == 0 and pw == 0:
        return sample
    top, left = int(rng.integers(0, ph + 1)), int(rng.integers(0, pw + 1))
    pad = ((top, ph - top), (left, pw - left))
    return _replace(
        sample,
        image=np.pad(sample.image, (*pad, (0, 0))),
        semantic=np.pad(sample.semantic, pad),
        ignore=None if sample.ignore is None else np.pad(sample.ignore, pad),
        segments=[Segment(s.category, np.pad(s.mask, pad), s.person) for s in sample.segments],
    )


def paste_on_background(sample: Sample, background: np.ndarray, rng: np.random.Generator,
                        feather: float = 1.0, canvas: tuple[int, int] | None = None) -> Sample:
    """Put the sample's people onto a person-free photo: every pixel outside them becomes that photo.

    Labels outside the people become background (0) and known (not ignored): the new background holds no person,
    so whatever it shows (garments on a bed, a door) is what the model must learn to leave unlabelled. The
    image is blended through the person mask blurred by ``feather`` pixels so the seam is not a hard cut-out edge.
    ``canvas``: first place the sample at a random position on a canvas of at least this (h, w).
    """
    from PIL import ImageFilter

    region = _person_region(sample)
    if not region.any():
        return _replace(sample)
    if canvas is not None:
        sample = _place_on_canvas(sample, canvas, rng)
        region = _person_region(sample)
    back = _cover(background, sample.size, rng).astype(np.float32)
    alpha = Image.fromarray(region.astype(np.uint8) * 255)
    if feather > 0:
        alpha = alpha.filter(ImageFilter.GaussianBlur(feather))
    a = np.asarray(alpha, dtype=np.float32)[..., None] / 255.0
    image = np.rint(sample.image.astype(np.float32) * a + back * (1 - a)).astype(np.uint8)
    semantic = np.where(region, sample.semantic, 0).astype(sample.semantic.dtype)
    ignore = None if sample.ignore is None else sample.ignore & region
    return _replace(sample, image=image, semantic=semantic, ignore=ignore)


def rotate_sample(sample: Sample, degrees: float) -> Sample:
    """Rotate about the centre by ``degrees`` (counter-clockwise), same size; corners outside the source are
    black and ignored (a later :func:`paste_on_background` makes them known background)."""
    if degrees == 0:
        return _replace(sample)

    def rot(array: np.ndarray, resample: Image.Resampling, fill: int) -> np.ndarray:
        return np.asarray(Image.fromarray(array).rotate(degrees, resample=resample, fillcolor=fill))

    h, w = sample.size
    inside = rot(np.ones((h, w), np.uint8), Image.Resampling.NEAREST, 0).astype(bool)
    ignore = ~inside if sample.ignore is None else rot(sample.ignore.astype(np.uint8), Image.Resampling.NEAREST,
                                                       1).astype(bool) | ~inside
    semantic = sample.semantic.astype(np.int32)
    sem = rot(semantic, Image.Resampling.NEAREST, IGNORE_ID).astype(sample.semantic.dtype)
    segments = []
    for seg in sample.segments:
        mask = rot(seg.mask.astype(np.uint8), Image.Resampling.NEAREST, 0).astype(bool)
        if mask.any():
            segments.append(Segment(seg.category, mask, seg.person))
    image = np.asarray(Image.fromarray(sample.image).rotate(degrees, resample=Image.Resampling.BILINEAR))
    return _replace(sample, image=image.copy(), semantic=sem, ignore=ignore, segments=segments)


@dataclass
class RealPhotoLook:
    """Make studio photos look like users' photos (each step with its own probability).

    * ``rotate``: rotation by up to ``max_degrees``;
    * ``background``: people pasted onto a random person-free photo from ``backgrounds`` (a sequence of
      Samples, e.g. the ``no-person`` reader on photos of garments nobody wears);
    * ``occlude``: a rectangle cut from a background photo (or a flat colour) hides up to a third of a person;
      what it hides is labelled background;
    * ``blur``: Gaussian blur of radius 0.5-2 px (focus, motion, low resolution).
    """

    rotate: float = 0.3
    max_degrees: float = 15.0
    background: float = 0.5
    occlude: float = 0.2
    blur: float = 0.2
    backgrounds: Sequence[Sample] | None = None
    canvas: int | None = None  # pasted people land on a square canvas of this side (x 1-1.3) when set

    def _background(self, rng: np.random.Generator) -> np.ndarray | None:
        if not self.backgrounds:
            return None
        return self.backgrounds[int(rng.integers(len(self.backgrounds)))].image

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        from PIL import ImageFilter

        if self.rotate > 0 and rng.random() < self.rotate:
            sample = rotate_sample(sample, float(rng.uniform(-self.max_degrees, self.max_degrees)))
        if self.background > 0 and rng.random() < self.background:
            back = self._background(rng)
            if back is not None:
                side = None if self.canvas is None else round(self.canvas * float(rng.uniform(1.0, 1.3)))
                canvas = None if side is None else (max(side, sample.size[0]), max(side, sample.size[1]))
                sample = paste_on_background(sample, back, rng, canvas=canvas)
        if self.occlude > 0 and rng.random() < self.occlude:
            sample = self._occlude(sample, rng)
        if self.blur > 0 and rng.random() < self.blur:
            image = Image.fromarray(sample.image).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
            sample = _replace(sample, image=np.asarray(image).copy())
        return sample

    def _occlude(self, sample: Sample, rng: np.random.Generator) -> Sample:
        box = _bbox(_person_region(sample))
        if box is None:
            return _replace(sample)
        y0, y1, x0, x1 = box
        ph, pw = y1 - y0, x1 - x0
        oh = max(1, round(ph * float(rng.uniform(0.15, 0.5))))
        ow = max(1, round(pw * float(rng.uniform(0.3, 0.8))))
        oh, ow = min(oh, sample.size[0]), min(ow, sample.size[1])
        # Half of the occluders come up from the bottom of the person box (a table, a counter, the frame).
        oy = max(y0, y1 - oh) if rng.random() < 0.5 else int(rng.integers(y0, max(y0 + 1, y1 - oh + 1)))
        ox = int(rng.integers(x0, max(x0 + 1, x1 - ow + 1)))
        back = self._background(rng)
        patch = (_cover(back, (oh, ow), rng) if back is not None
                 else np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (oh, ow, 3)))
        image = sample.image.copy()
        image[oy:oy + oh, ox:ox + ow] = patch
        hidden = np.zeros(sample.size, dtype=bool)
        hidden[oy:oy + oh, ox:ox + ow] = True
        semantic = sample.semantic.copy()
        semantic[hidden] = 0
        ignore = None if sample.ignore is None else sample.ignore & ~hidden
        segments = [Segment(s.category, s.mask & ~hidden, s.person) for s in sample.segments]
        return _replace(sample, image=image, semantic=semantic, ignore=ignore,
                        segments=[s for s in segments if s.mask.any()])
