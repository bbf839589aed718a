"""Augmentations on :class:`~spectrum_parsing.data.sample.Sample`.

Every transform returns a new Sample that shares no array with its input (which is never mutated); all
randomness comes from an explicit ``numpy.random.Generator`` passed at call time (``transform(sample, rng)``),
so a seeded generator makes a whole pipeline reproducible. Images are resized with Pillow (bilinear,
antialiased when shrinking); label maps, ignore masks and segment masks with nearest-neighbour sampling on the
same pixel-centre grid, so labels stay aligned with the image.
"""

from __future__ import annotations

from .composite import CopyPasteComposite, RealPhotoLook, paste_on_background, remap_semantic
from .geometric import (
    Compose,
    RandomHFlip,
    RandomScaleCrop,
    ResizeLongestSide,
    Transform,
    hflip,
    resize_sample,
    rotate_sample,
    semantic_swap_pairs,
)
from .photometric import ColorJitter

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
