"""Geometric transforms: resizing, flips (left/right categories swapped by the vocabulary), scale + crop,
rotation. Label maps and masks are resampled nearest-neighbour on the image's pixel-centre grid."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...vocab import categories as vocabulary
from ..sample import IGNORE_ID, Sample, Segment

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

@functools.lru_cache(maxsize=256)
def _swap_pairs(classes: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(vocabulary.side_pairs(classes))


def semantic_swap_pairs(classes: Sequence[str]) -> list[tuple[int, int]]:
    """(left id, right id) pairs of a dataset's class list: the vocabulary's sided categories and their mirrors
    (:func:`~spectrum_parsing.vocab.categories.side_pairs`; "Left-arm", "left_shoe", "leftLeg" are read as the
    vocabulary reads any label). Classes without a counterpart are not swapped."""
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


