"""Several person detectors as one: each finds people by its own rule, then one person is kept once.

MoveNet-MultiPose sees whole bodies at a glance but misses close-ups and faces cut by the frame; BlazePose's
detector is anchored on the face and is good at exactly those. :class:`MergedDetector` runs both (or any
:class:`~.types.PersonDetector` list), accepts a second opinion only where its own keypoints confirm a person
(``min_keypoints`` confident ones, of them a shoulder and two head keypoints), and merges everything by keypoint
similarity (:func:`~.types.nms_oks`): one person found by both is kept once, at the first detector's say.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .types import PersonDetections, PersonDetector, nms_oks

__all__ = ["MergedDetector"]


class MergedDetector:
    """The people of ``detectors`` merged (the first is the primary: its detections win ties). Detections of the
    others need ``min_keypoints`` keypoints scored >= ``keypoint_threshold``, including a shoulder and two head
    keypoints; their scores are scaled by ``second_weight`` so the primary's detection of a person is kept."""

    def __init__(self, detectors: Sequence[PersonDetector], min_keypoints: int = 7, keypoint_threshold: float = 0.5,
                 second_weight: float = 0.5, oks_threshold: float = 0.5, iou: float = 0.5) -> None:
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

    def __call__(self, image: np.ndarray) -> PersonDetections:
        parts = [self.detectors[0](image)]
        for detector in self.detectors[1:]:
            found = self._confirmed(detector(image))
            parts.append(PersonDetections(found.boxes, found.scores * self.second_weight, found.keypoints))
        parts = [p for p in parts if len(p)]
        if not parts:
            return PersonDetections.empty()
        if any(p.keypoints is None for p in parts):
            raise ValueError("merging needs every detector's keypoints (COCO order)")
        merged = PersonDetections(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                                  np.concatenate([p.keypoints for p in parts]))
        return nms_oks(merged, self.oks_threshold, self.iou)
