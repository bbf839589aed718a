"""Several person detectors as one: each finds people by its own rule, then one person is kept once.

MoveNet-MultiPose sees whole bodies at a glance but misses close-ups and faces cut by the frame; BlazePose's
detector is anchored on the face and is good at exactly those. :class:`MergedDetector` runs both (or any
:class:`~.types.PersonDetector` list), accepts a second opinion only where its own keypoints confirm a person
(``min_keypoints`` confident ones, of them a shoulder and two head keypoints) and where the first found nobody
(no overlapping box), and merges everything by keypoint similarity (:func:`~.types.nms_oks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .types import PersonDetections, PersonDetector, box_iou, nms_oks

__all__ = ["MergedDetector"]


class MergedDetector:
    """The people of ``detectors`` merged (the first is the primary: its detections win ties). Detections of the
    others need ``min_keypoints`` keypoints scored >= ``keypoint_threshold``, including a shoulder and two head
    keypoints; their scores are scaled by ``second_weight`` so the primary's detection of a person is kept."""

    def __init__(self, detectors: Sequence[PersonDetector], min_keypoints: int = 7, keypoint_threshold: float = 0.5,
                 second_weight: float = 0.5, oks_threshold: float = 0.5, iou: float = 0.5,
                 free_iou: float = 0.3) -> None:
        if not detectors:
            raise ValueError("give at least one detector")
        if not 0.0 < second_weight <= 1.0:
            raise ValueError(f"second_weight must be in (0, 1], got {second_weight}")
        self.detectors = list(detectors)
        self.min_keypoints = min_keypoints
        self.keypoint_threshold = keypoint_threshold
        self.second_weight = second_weight
        self.oks_threshold = oks_threshold
        self.iou = iou
        self.free_iou = free_iou

    def to(self, device: str | torch.device) -> MergedDetector:
        for detector in self.detectors:
            if hasattr(detector, "to"):
                detector.to(device)
        return self

    def _confirmed(self, dets: PersonDetections) -> PersonDetections:
        if dets.keypoints is None or not len(dets):
            return PersonDetections.empty()
        confident = dets.keypoints[..., 2] >= self.keypoint_threshold
        ok = ((confident.sum(1) >= self.min_keypoints) & (confident[:, :5].sum(1) >= 2) & confident[:, 5:7].any(1))
        return dets.select(np.nonzero(ok)[0])

    def _elsewhere(self, dets: PersonDetections, primary: PersonDetections) -> PersonDetections:
        """The detections that overlap none of the primary's people (box IoU <= ``free_iou`` and at most half of
        either box inside the other): a second opinion adds people, it does not redraw them."""
        if not len(dets) or not len(primary):
            return dets
        a, b = dets.boxes.astype(np.float64), primary.boxes.astype(np.float64)
        iou = box_iou(a, b)
        area_a = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9)
        area_b = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
        inter = iou * (area_a[:, None] + area_b[None, :]) / (1 + iou)
        inside = inter / np.minimum(area_a[:, None], area_b[None, :])
        return dets.select(np.nonzero(((iou <= self.free_iou) & (inside <= 0.5)).all(1))[0])

    def __call__(self, image: np.ndarray) -> PersonDetections:
        parts = [self.detectors[0](image)]
        for detector in self.detectors[1:]:
            found = self._elsewhere(self._confirmed(detector(image)), parts[0])
            parts.append(PersonDetections(found.boxes, found.scores * self.second_weight, found.keypoints))
        parts = [p for p in parts if len(p)]
        if not parts:
            return PersonDetections.empty()
        if len(parts) == 1:
            return parts[0]
        if any(p.keypoints is None for p in parts):
            raise ValueError("merging needs every detector's keypoints (COCO order)")
        merged = PersonDetections.concatenate(parts)
        return nms_oks(merged, self.oks_threshold, self.iou)
