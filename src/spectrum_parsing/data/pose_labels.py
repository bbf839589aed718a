"""The label engine: body-part labels for real photos whose datasets label all bare body as one ``skin`` class.

CCP's street photos mark every bare face, arm and leg ``skin``; the only face / arm / leg labels a model would
otherwise see come from VITON's studio photos. The engine splits each photo's skin pixels into LIP's face,
left/right arm and left/right leg (the person's own side, hands with the arms, bare feet with the legs) by the
person's pose keypoints (:func:`spectrum_parsing.limbs.split_by_limbs`, MoveNet-MultiPose's 17 COCO keypoints
cached by ``scripts/cache_keypoints.py``). Skin that no limb claims (no confident keypoint near it) stays
``skin``. The derived label maps are written once (``scripts/build_pose_labels.py``) as id PNGs in the dataset's
classes extended by :data:`BODY_PART_CLASSES`, and read back by the CCP reader (``body_parts=DIR``).

Measured where the truth is known (VITON's parts merged into skin and split back):
``benchmarks/bench_label_engine.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..limbs import split_by_limbs
from .sample import IGNORE_ID

__all__ = ["BODY_PART_CLASSES", "extended_classes", "read_body_part_map", "split_skin", "write_body_part_map"]

BODY_PART_CLASSES: tuple[str, ...] = ("face", "left arm", "right arm", "left leg", "right leg")
"""The classes the engine adds (after the dataset's own), in LIP's names."""

COMPONENT_MAJORITY = 0.6
"""A connected piece of skin goes whole to the region that claims this share of it (bench_label_engine.py)."""


def extended_classes(classes: Sequence[str]) -> list[str]:
    """The dataset's classes followed by :data:`BODY_PART_CLASSES` (ids ``len(classes)`` onwards)."""
    overlap = sorted(set(classes) & set(BODY_PART_CLASSES))
    if overlap:
        raise ValueError(f"the dataset already labels {overlap}: nothing to derive")
    return [*classes, *BODY_PART_CLASSES]


def split_skin(semantic: np.ndarray, classes: Sequence[str], keypoints: np.ndarray | None,
               skin_class: str = "skin", threshold: float = 0.3) -> np.ndarray:
    """``semantic`` (dataset ids) with its ``skin_class`` pixels relabelled as the body part the keypoints place
    them in (ids of :func:`extended_classes`); unclaimed skin keeps its id. ``keypoints``: (17, 3) ``x, y, score``
    in the photo's pixels, or None (nothing is split)."""
    if skin_class not in classes:
        raise ValueError(f"{skin_class!r} is not one of the dataset's classes")
    out = semantic.astype(np.int32, copy=True)
    if keypoints is None:
        return out
    skin = out == classes.index(skin_class)
    parts = split_by_limbs(skin, np.asarray(keypoints, dtype=np.float64), threshold=threshold,
                           regions=BODY_PART_CLASSES, component_majority=COMPONENT_MAJORITY)
    claimed = (parts >= 0) & (parts < len(BODY_PART_CLASSES))
    out[claimed] = len(classes) + parts[claimed]
    return out


def write_body_part_map(path: str | Path, semantic: np.ndarray) -> None:
    """Save a derived label map as an 8-bit id PNG (ids < 255; IGNORE_ID kept)."""
    if semantic.max(initial=0) > IGNORE_ID or semantic.min(initial=0) < 0:
        raise ValueError("label ids must be in [0, 255]")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(semantic.astype(np.uint8), mode="L").save(path, optimize=True)


def read_body_part_map(path: str | Path) -> np.ndarray:
    """A derived label map written by :func:`write_body_part_map` (int32)."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P"):
            raise ValueError(f"{path}: a derived label map is a single-channel id PNG, got mode {im.mode}")
        return np.asarray(im, dtype=np.int32).copy()
