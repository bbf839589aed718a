"""Top-down multi-person parsing: find the people first, parse each one in its own crop, paste back.

1. A :class:`~spectrum_parsing.persons.PersonDetector` (MoveNet-MultiPose by default) gives a box per person.
2. Each person's box, widened by ``margin`` (and stretched to cover its confident keypoints: raised hands),
   is cropped and parsed at the model's input size, so a small person gets as many model pixels as a selfie.
3. Who owns each pixel: a person probability map per detection — BlazePose's segmentation of a square crop
   around the person (``person_masks="blazepose"``, default) or the parser's own ``person`` score inside the
   widened box (``"parser"``) — and each pixel goes to the person with the highest probability, if > 0.5.
   People never share a pixel.
4. Each person's parts are the parser's semantic labels of its crop on the pixels that person owns; parts with
   no pixel (or a mean score below the threshold) are dropped. The label map is rendered from those parts,
   so the label map, the persons and the JSON always agree. Garments and objects that belong to no person
   (nobody detected there) get no label at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .persons import PersonDetections
from .processor import PersonCandidate, SpectrumImageProcessor, assemble_persons
from .results import PersonInstance

__all__ = ["DERIVED_PARTS", "PERSON_MASK_SOURCES", "TopDownConfig", "crop_regions", "derived_prompts",
           "parse_top_down"]

DERIVED_PARTS: dict[str, tuple[str, int, int]] = {
    "left hand": ("left arm", 9, 7),  # (parsed part it is carved from, wrist keypoint, elbow keypoint)
    "right hand": ("right arm", 10, 8),
}
"""Parts no training set labels (LIP and CCP include hands in the arms) that top-down parsing derives from a
parsed part and the person's keypoints: a hand is the arm's pixels around and beyond the wrist, within 0.9
forearm lengths of it (MoveNet keypoints, COCO order; "left" is the person's own side, as in LIP)."""


def derived_prompts(prompts: Sequence[str]) -> tuple[list[str], dict[int, tuple[int, int, int]], set[int]]:
    """The prompts to score for ``prompts`` with derived parts: the same list, plus the source parts not asked
    for (appended); ``derived``: derived prompt index -> (source index, wrist keypoint, elbow keypoint);
    ``hidden``: indices of the appended sources, scored only to carve from and never reported."""
    scored = list(prompts)
    derived: dict[int, tuple[int, int, int]] = {}
    hidden: set[int] = set()
    for i, prompt in enumerate(prompts):
        rule = DERIVED_PARTS.get(prompt.strip().lower())
        if rule is None:
            continue
        source, wrist, elbow = rule
        if source not in scored:
            scored.append(source)
            hidden.add(len(scored) - 1)
        derived[i] = (scored.index(source), wrist, elbow)
    return scored, derived, hidden


def _carve(labels: torch.Tensor, source: int, target: int, keypoints: np.ndarray | None, origin: tuple[int, int],
           wrist: int, elbow: int, threshold: float) -> None:
    """In crop-local ``labels``, relabel ``source`` pixels near and beyond the wrist as ``target`` (in place)."""
    if keypoints is None:
        return
    w, e = keypoints[wrist], keypoints[elbow]
    if min(w[2], e[2]) < threshold:
        return
    x0, y0 = origin
    wx, wy, ex, ey = w[0] - x0, w[1] - y0, e[0] - x0, e[1] - y0
    length = float(np.hypot(wx - ex, wy - ey))
    if length < 3:
        return
    dx, dy = (wx - ex) / length, (wy - ey) / length
    h, wd = labels.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(wd, dtype=torch.float32),
                            indexing="ij")
    along = ((xs - wx) * dx + (ys - wy) * dy) / length
    near = torch.hypot(xs - wx, ys - wy) / length < 0.9
    labels[(labels == source + 1) & (along > -0.15) & near] = target + 1

PERSON_MASK_SOURCES = ("blazepose", "parser")


@dataclass
class TopDownConfig:
    """Options of top-down parsing (see the module docstring)."""

    margin: float = 0.15  # each side, as a fraction of the box's side
    person_masks: str = "blazepose"
    keypoint_threshold: float = 0.3  # keypoints this confident widen the crop
    min_part_pixels: int = 16
    min_person_pixels: int = 64

    def __post_init__(self) -> None:
        if self.person_masks not in PERSON_MASK_SOURCES:
            raise ValueError(f"person_masks must be one of {PERSON_MASK_SOURCES}, got {self.person_masks!r}")
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"margin must be in [0, 2], got {self.margin}")


def crop_regions(detections: PersonDetections, height: int, width: int, margin: float,
                 keypoint_threshold: float = 0.3) -> np.ndarray:
    """Integer crop (x0, y0, x1, y1) per detection: its box grown to its confident keypoints, widened by
    ``margin`` of its size on each side, clipped to the image (at least 8 px a side)."""
    boxes = detections.boxes.astype(np.float64).copy()
    if detections.keypoints is not None:
        for k, kps in enumerate(detections.keypoints):
            good = kps[kps[:, 2] >= keypoint_threshold]
            if len(good):
                boxes[k, 0] = min(boxes[k, 0], good[:, 0].min())
                boxes[k, 1] = min(boxes[k, 1], good[:, 1].min())
                boxes[k, 2] = max(boxes[k, 2], good[:, 0].max())
                boxes[k, 3] = max(boxes[k, 3], good[:, 1].max())
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    out = np.stack([boxes[:, 0] - margin * bw, boxes[:, 1] - margin * bh,
                    boxes[:, 2] + margin * bw, boxes[:, 3] + margin * bh], axis=-1)
    out = np.round(out).astype(np.int64)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    for k in range(len(out)):  # keep at least 8 px a side
        for lo, hi, size in ((0, 2, width), (1, 3, height)):
            if out[k, hi] - out[k, lo] < 8:
                centre = (out[k, lo] + out[k, hi]) // 2
                out[k, lo] = max(0, min(size - 8, centre - 4))
                out[k, hi] = min(size, out[k, lo] + 8)
    return out


CropPredictor = Callable[[Sequence[np.ndarray]], Sequence[torch.Tensor]]
"""Parses crops: (H, W, 3) uint8 arrays -> per crop, per-prompt pixel scores (P, H, W) in [0, 1]
(Mask2Former semantic inference: softmax(grounding logits) x sigmoid(mask logits), summed over queries)."""


@torch.no_grad()
def parse_top_down(image: np.ndarray, detections: PersonDetections, predict: CropPredictor,
                   prompts: Sequence[str], person_index: int, config: TopDownConfig,
                   person_probs: torch.Tensor | None = None, threshold: float = 0.3,
                   background_threshold: float = 0.5, derived: dict[int, tuple[int, int, int]] | None = None,
                   hidden: set[int] | frozenset[int] = frozenset()) -> tuple[list[PersonInstance], np.ndarray]:
    """Persons with their parts, and the (H, W) semantic map (0 = background, else 1 + prompt index),
    rendered from the parts. ``person_probs``: (N, H, W) person probabilities per detection (BlazePose);
    None uses the parser's own person scores inside each crop. ``derived`` / ``hidden``: see
    :func:`derived_prompts` (derived prompts are never scored by the parser, hidden ones never reported)."""
    derived = derived or {}
    h, w = image.shape[:2]
    if len(detections) == 0:
        return [], np.zeros((h, w), dtype=np.int32)
    regions = crop_regions(detections, h, w, config.margin, config.keypoint_threshold)
    crops = [np.ascontiguousarray(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in regions]
    outputs = predict(crops)
    columns = [p for p in range(len(prompts)) if p != person_index and p not in derived]
    # Everything per person is computed in its crop; only ownership is decided on the whole image.
    local_labels, local_scores, local_probs = [], [], []
    for k, ((x0, y0, x1, y1), scores) in enumerate(zip(regions, outputs)):
        labels, best = SpectrumImageProcessor.label_map(scores, columns, background_threshold)
        for target, (source, wrist, elbow) in derived.items():
            _carve(labels, source, target, None if detections.keypoints is None else detections.keypoints[k],
                   (x0, y0), wrist, elbow, config.keypoint_threshold)
        local_labels.append(labels)
        local_scores.append(best)
        local_probs.append(scores[person_index] if person_probs is None
                           else person_probs[k, y0:y1, x0:x1].float().cpu())
    top = torch.zeros(h, w)
    owner = torch.full((h, w), -1, dtype=torch.long)
    for k, (x0, y0, x1, y1) in enumerate(regions):  # by descending detection score: ties go to the first
        better = local_probs[k] > top[y0:y1, x0:x1]
        top[y0:y1, x0:x1][better] = local_probs[k][better]
        owner[y0:y1, x0:x1][better] = k
    owner[top <= 0.5] = -1
    candidates = [PersonCandidate(region=tuple(int(v) for v in region), owned=owner[y0:y1, x0:x1] == k,
                                  labels=local_labels[k], scores=local_scores[k], score=float(detections.scores[k]),
                                  keypoints=None if detections.keypoints is None else detections.keypoints[k])
                  for k, region in enumerate(regions) for x0, y0, x1, y1 in [region]]
    return assemble_persons(candidates, prompts, (h, w), threshold=threshold,
                            min_person_pixels=config.min_person_pixels, min_part_pixels=config.min_part_pixels,
                            hidden=hidden)
