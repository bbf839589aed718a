"""What person detection produces and needs: :class:`PersonDetections` (boxes, scores, COCO keypoints), the
:class:`PersonDetector` protocol, fixed boxes (:class:`BoxDetector`), box IoU and detection NMS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["KEYPOINT_NAMES", "OKS_SIGMAS", "WEIGHTS_DIR", "BoxDetector", "PersonDetections", "PersonDetector",
           "box_iou", "clip_boxes", "nms", "nms_oks", "oks",
           "same_people"]

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"

KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")


@dataclass
class PersonDetections:
    """People found in one image, by descending score. ``boxes``: (N, 4) float ``x0, y0, x1, y1`` in pixels;
    ``scores``: (N,); ``keypoints``: (N, 17, 3) ``x, y, score`` in pixels (COCO order) or None; ``behind``: (N,)
    bool, the people found behind others (partly hidden by them: :mod:`.peeling`, MoveNet's occluded people), who
    own only the pixels no person in front claims (:func:`~spectrum_parsing.topdown.parse_top_down`); None: nobody."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None
    behind: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")
        if self.keypoints is not None:
            kps = np.asarray(self.keypoints, dtype=np.float32)
            count = kps.shape[1] if kps.ndim == 3 else len(KEYPOINT_NAMES)
            self.keypoints = kps.reshape(len(self.boxes), count, 3)
        if self.behind is not None:
            self.behind = np.asarray(self.behind, dtype=bool).reshape(-1)
            if len(self.behind) != len(self.scores):
                raise ValueError(f"{len(self.scores)} detections but {len(self.behind)} behind flags")

    @property
    def is_behind(self) -> np.ndarray:
        """(N,) bool: :attr:`behind`, all False where it is None."""
        return np.zeros(len(self), dtype=bool) if self.behind is None else self.behind

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: Sequence[int] | np.ndarray) -> PersonDetections:
        """The detections at ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        return PersonDetections(self.boxes[index], self.scores[index],
                                None if self.keypoints is None else self.keypoints[index],
                                None if self.behind is None else self.behind[index])

    @classmethod
    def empty(cls) -> PersonDetections:
        return cls(np.zeros((0, 4)), np.zeros(0))

    @classmethod
    def concatenate(cls, parts: Sequence[PersonDetections]) -> PersonDetections:
        """The detections of ``parts``, one after the other (no merging); keypoints where every part has them, none
        where no part has; a mix raises. ``behind`` where any part has it (False for the others' people)."""
        if not parts:
            return cls.empty()
        with_keypoints = [p.keypoints is not None for p in parts]
        if any(with_keypoints) and not all(with_keypoints):
            raise ValueError("cannot concatenate detections with keypoints and detections without")
        behind = (np.concatenate([p.is_behind for p in parts]) if any(p.behind is not None for p in parts)
                  else None)
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.keypoints for p in parts]) if all(with_keypoints) else None, behind)


@runtime_checkable
class PersonDetector(Protocol):
    """Anything that finds people: ``detector(image) -> PersonDetections`` for an (H, W, 3) uint8 RGB array."""

    def __call__(self, image: np.ndarray) -> PersonDetections: ...


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), ``x0, y0, x1, y1``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def clip_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float64 copy of (N, 4) ``x0, y0, x1, y1`` boxes clipped to an image of ``size`` (H, W)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, size[1])
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, size[0])
    return b


def _greedy_order(dets: PersonDetections, priority: np.ndarray | None) -> np.ndarray:
    """Indices by ascending ``priority`` (default all equal), then by descending score."""
    if priority is None:
        return np.argsort(-dets.scores, kind="stable")
    priority = np.asarray(priority).reshape(-1)
    if len(priority) != len(dets):
        raise ValueError(f"{len(priority)} priorities for {len(dets)} detections")
    return np.lexsort((-dets.scores, priority))


def nms(dets: PersonDetections, iou: float, containment: float = 0.8,
        priority: np.ndarray | None = None) -> PersonDetections:
    """Greedy NMS by score: a box is dropped when its IoU with a kept box exceeds ``iou`` or when one of the two
    lies mostly (``containment`` of its area) inside the other (a tile's half person inside a whole one).
    ``priority`` (lower first) ranks sources before scores: a pass that only adds people never replaces one."""
    order = _greedy_order(dets, priority)
    b = dets.boxes.astype(np.float64)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    overlaps = box_iou(b, b)
    inter = overlaps * (area[:, None] + area[None, :]) / (1 + overlaps)
    contained = inter / np.minimum(area[:, None], area[None, :])
    keep: list[int] = []
    for i in order:
        if all(overlaps[i, j] <= iou and contained[i, j] <= containment for j in keep):
            keep.append(int(i))
    return dets.select(keep)


OKS_SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                       0.087, 0.087, 0.089, 0.089])
"""COCO's per-keypoint falloffs (the spread of human annotators), for object keypoint similarity."""


def oks(dets: PersonDetections, threshold: float = 0.3, min_shared: int = 3) -> np.ndarray:
    """(N, N) object keypoint similarity of every two detections (COCO's formula over the keypoints both hold
    with score >= ``threshold``, the larger box's area as the object's scale); NaN where they share fewer than
    ``min_shared`` such keypoints (too little to tell)."""
    n = len(dets)
    out = np.full((n, n), np.nan)
    if dets.keypoints is None or n == 0 or dets.keypoints.shape[1] != len(OKS_SIGMAS):
        return out
    xy, ok = dets.keypoints[..., :2].astype(np.float64), dets.keypoints[..., 2] >= threshold
    b = dets.boxes.astype(np.float64)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1.0)
    d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)  # (N, N, 17)
    scale = np.maximum(area[:, None], area[None, :])[..., None]
    sim = np.exp(-d2 / (2 * scale * (2 * OKS_SIGMAS) ** 2))
    shared = ok[:, None] & ok[None]
    count = shared.sum(-1)
    with np.errstate(invalid="ignore"):
        out = np.where(count >= min_shared, (sim * shared).sum(-1) / np.maximum(count, 1), np.nan)
    return out


def same_people(dets: PersonDetections, oks_threshold: float = 0.5, iou: float = 0.5, containment: float = 0.8,
                keypoint_threshold: float = 0.3) -> np.ndarray:
    """(N, N) bool: whether two detections are one person — their keypoints agree (:func:`oks` above
    ``oks_threshold``), or, where they share too few confident keypoints to tell, the box rule of :func:`nms` (IoU
    above ``iou`` or one ``containment`` inside the other)."""
    b = dets.boxes.astype(np.float64)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    overlaps = box_iou(b, b)
    inter = overlaps * (area[:, None] + area[None, :]) / (1 + overlaps)
    contained = inter / np.minimum(area[:, None], area[None, :])
    similar = oks(dets, keypoint_threshold)
    return np.where(np.isnan(similar), (overlaps > iou) | (contained > containment), similar > oks_threshold)


def nms_oks(dets: PersonDetections, oks_threshold: float = 0.5, iou: float = 0.5, containment: float = 0.8,
            keypoint_threshold: float = 0.3, priority: np.ndarray | None = None) -> PersonDetections:
    """Greedy NMS by score where two detections are one person by :func:`same_people`. Two people standing close
    (boxes overlapping, keypoints apart) both survive; one person found at two scales or in two tiles (keypoints
    together) is kept once. ``priority`` as in :func:`nms`."""
    order = _greedy_order(dets, priority)
    same = same_people(dets, oks_threshold, iou, containment, keypoint_threshold)
    keep: list[int] = []
    for i in order:
        if not any(same[i, j] for j in keep):
            keep.append(int(i))
    return dets.select(keep)


class BoxDetector:
    """Fixed person boxes (e.g. ground truth), each with score 1 unless given."""

    def __init__(self, boxes: np.ndarray | Sequence[Sequence[float]], scores: Sequence[float] | None = None) -> None:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.detections = PersonDetections(boxes, np.ones(len(boxes)) if scores is None else scores)

    def __call__(self, image: np.ndarray) -> PersonDetections:
        return self.detections


