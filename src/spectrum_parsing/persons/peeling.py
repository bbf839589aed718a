"""People hidden behind the people found: a second detector pass with the found people painted out.

MoveNet-MultiPose reads a crowd at a glance, and where people overlap it often returns the front one only: the
person half behind them shares its box's region and loses. Once the people found have masks (BlazePose's, which
the top-down pipeline computes anyway), :func:`hidden_people` paints their pixels the photo's mean colour and runs
the detector again: what it finds now, away from every person found before, is someone the first pass hid
("peeling", as iterative instance detectors do). Pure numpy around any :class:`~.types.PersonDetector`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import ndimage

from .types import PersonDetections, PersonDetector, box_iou

__all__ = ["PEEL_DILATION", "PEEL_IOU", "PEEL_MIN_PEOPLE", "PEEL_MIN_SCORE", "hidden_people", "painted_out"]

PEEL_MIN_PEOPLE = 2
"""A photo is peeled only when the first pass found at least this many people: a person hides behind another in a
crowd; a single person's photo (a selfie, a LIP crop) gains nothing and would pay a second pass (CCP val composites'
reported recall, with the full detector as the second look: 69.2% peeling after one person, 68.3% after two)."""

PEEL_DILATION = 3
"""Pixels the found people's masks are grown by before they are painted out: a mask's rim of a person's own pixels
would otherwise show the detector the outline of the person just found."""

PEEL_IOU = 0.5
"""A person of the second pass whose box overlaps a found person's box at this IoU or more is that person again."""

PEEL_MIN_SCORE = 0.15
"""A person of the second pass needs this detection score, MoveNet's own acceptance score, even where its box touches
the photo's border: the paint's edges cut the people behind as a frame does, and the border rule's lower score (0.1)
let partial views in. On the CCP val composites (scratch, the detector alone) the second pass's people scored 0.12
were nobody in the truth (3 of 3), those matching a true person 0.18-0.30; with this score the pipeline's reported
precision went 84.9% -> 86.4% and exact count 25.0% -> 27.5% at the same recall (67.0%) — chosen on those 11
detections. `lip_dev` photo 5's thrower and spectator score 0.21 and 0.18."""


def painted_out(image: np.ndarray, masks: np.ndarray | torch.Tensor, dilation: int = PEEL_DILATION) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 ``image`` with the pixels of any of ``masks`` ((N, H, W) probabilities,
    > 0.5 counted), grown by ``dilation`` pixels, set to the image's mean colour."""
    image = np.asarray(image)
    masks = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    covered = (masks > 0.5).any(0) if len(masks) else np.zeros(image.shape[:2], dtype=bool)
    if dilation > 0 and covered.any():
        covered = ndimage.binary_dilation(covered, iterations=dilation)
    out = image.copy()
    out[covered] = np.asarray(image.reshape(-1, image.shape[-1]).mean(0), dtype=np.uint8)
    return out


def hidden_people(image: np.ndarray, found: PersonDetections, masks: np.ndarray | torch.Tensor,
                  detector: PersonDetector, iou: float = PEEL_IOU, dilation: int = PEEL_DILATION,
                  min_score: float = PEEL_MIN_SCORE) -> PersonDetections:
    """The people ``detector`` finds on ``image`` once the ``found`` people (their ``masks``, one per detection)
    are painted out (:func:`painted_out`), scored at least ``min_score``, less any whose box overlaps a found box at
    ``iou`` or more; by descending score, marked ``behind`` (they own only what the people in front leave). Nothing
    when nobody was found (a photo of garments stays empty)."""
    if len(found) == 0:
        return PersonDetections.empty()
    if len(masks) != len(found):
        raise ValueError(f"{len(masks)} masks for {len(found)} people")
    second = detector(painted_out(image, masks, dilation))
    if len(second) == 0:
        return second
    kept = (box_iou(second.boxes, found.boxes).max(1) < iou) & (second.scores >= min_score)
    hidden = second.select(np.nonzero(kept)[0])
    return dataclasses.replace(hidden, behind=np.ones(len(hidden), dtype=bool))
