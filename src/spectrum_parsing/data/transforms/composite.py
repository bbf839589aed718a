"""Composite transforms: copy-paste multi-person scenes, people pasted onto person-free photos, and the
real-photo look (rotation, occluders, blur, backgrounds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...vocab import categories as vocabulary
from ..sample import IGNORE_ID, Sample, Segment
from .geometric import _person_masks, _replace, _resize_image, _resize_nearest, hflip, rotate_sample

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
