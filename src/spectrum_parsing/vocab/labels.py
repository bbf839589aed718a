"""Dataset label schemes: each format's label names (index = id), the VOC palette, and the mapping of raw
dataset labels to the canonical vocabulary. Shared by the readers (data), the presets (inference) and training;
imports nothing from them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np

from .categories import canonical_name

__all__ = [
    "ATR_LABELS", "CCP_LABELS", "CIHP_CANONICAL_OVERRIDES", "CIHP_LABELS", "CIHP_LABEL_SETS", "LIP_LABELS",
    "PASCAL_PERSON_PART_LABELS", "lookup_canonical", "map_to_canonical", "voc_colormap", "warn_once",
]

_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """Emit ``message`` as a UserWarning the first time it is seen in this process."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


ATR_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt", "left-shoe",
    "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag", "scarf",
)
"""ATR's 18 labels, index = id."""

CCP_LABELS: tuple[str, ...] = (
    "null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra", "bracelet", "cape",
    "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses", "gloves", "hair", "hat", "heels", "hoodie",
    "intimate", "jacket", "jeans", "jumper", "leggings", "loafers", "necklace", "panties", "pants", "pumps", "purse",
    "ring", "romper", "sandals", "scarf", "shirt", "shoes", "shorts", "skin", "skirt", "sneakers", "socks",
    "stockings", "suit", "sunglasses", "sweater", "sweatshirt", "swimwear", "t-shirt", "tie", "tights", "top", "vest",
    "wallet", "watch", "wedges",
)
"""The 59 CCP labels (used when ``label_list.mat`` is absent)."""

LIP_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat", "socks", "pants",
    "jumpsuits", "scarf", "skirt", "face", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe",
    "right-shoe",
)
"""LIP's 20 labels, index = id."""

CIHP_LABELS: tuple[str, ...] = LIP_LABELS[:10] + ("torso-skin",) + LIP_LABELS[11:]
"""CIHP's 20 labels: LIP's, with id 10 = torso-skin (LIP has jumpsuits there)."""

CIHP_LABEL_SETS: dict[str, tuple[str, ...]] = {"cihp": CIHP_LABELS, "lip": LIP_LABELS}
CIHP_CANONICAL_OVERRIDES = {"torso-skin": "torso"}

PASCAL_PERSON_PART_LABELS: tuple[str, ...] = (
    "background", "head", "torso", "upper arms", "lower arms", "upper legs", "lower legs",
)
"""The 7 PASCAL-Person-Part labels, index = id."""


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colormap as an (n, 3) uint8 array: the bits of id i spread over R, G, B from the top bit."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def lookup_canonical(raw: str, overrides: dict[str, str] | None = None) -> str | None:
    """Canonical name for a dataset label, or None: ``overrides`` (lowercased raw name -> canonical) first, then
    :func:`vocabulary.canonical_name` on the whole label, then on each part of a ``,``/``/`` list ("bag, wallet",
    "scarf/tie"; first match wins), then on the singular of a plural ("skirts")."""
    key = raw.strip().lower()
    if overrides and key in overrides:
        return overrides[key]
    name = canonical_name(key)
    if name is not None:
        return name
    for part in re.split(r"[,/]", key):
        part = part.strip()
        name = canonical_name(part) if part else None
        if name is not None:
            return name
    if key.endswith("s") and len(key) > 3:
        return canonical_name(key[:-1])
    return None


def map_to_canonical(
    classes: Sequence[str], overrides: dict[str, str] | None = None, source: str = "dataset"
) -> list[str | None]:
    """Canonical name per class id: None for id 0 (background), :func:`lookup_canonical` for the others; a label
    with no canonical home keeps its lowercased raw text (an open-vocabulary phrase) with a one-time warning."""
    overrides = {k.lower(): v for k, v in (overrides or {}).items()}
    out: list[str | None] = [None]
    for raw in classes[1:]:
        name = lookup_canonical(raw, overrides)
        if name is None:
            name = " ".join(raw.lower().split())
            warn_once(f"{source}: label {raw!r} has no canonical category; kept as the phrase {name!r}")
        out.append(name)
    return out
