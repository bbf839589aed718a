"""Several detectors merged (persons.MergedDetector): a second opinion adds only confirmed people where the first
found nobody."""

from __future__ import annotations

import numpy as np
import pytest

from spectrum_parsing.persons import BoxDetector, MergedDetector, PersonDetections


def _person(x: float, confidence: float = 0.9) -> np.ndarray:
    k = np.zeros((17, 3), np.float32)
    k[:, 0] = x + np.linspace(0, 20, 17)
    k[:, 1] = np.linspace(10, 190, 17)
    k[:, 2] = confidence
    return k


class _Fixed:
    def __init__(self, dets: PersonDetections) -> None:
        self.dets = dets

    def __call__(self, image: np.ndarray) -> PersonDetections:
        return self.dets


def test_second_opinion_adds_confirmed_people_elsewhere_only():
    first = _Fixed(PersonDetections([[0, 0, 40, 200]], [0.5], _person(10)[None]))
    second = _Fixed(PersonDetections(
        [[2, 0, 42, 200], [100, 0, 140, 200], [200, 0, 240, 200]], [0.9, 0.8, 0.8],
        np.stack([_person(12), _person(110), _person(210, confidence=0.2)])))  # same, new, unconfirmed
    merged = MergedDetector([first, second])(np.zeros((200, 300, 3), np.uint8))
    assert len(merged) == 2
    assert merged.boxes[0].tolist() == [0, 0, 40, 200]  # the first detector's person, not the second's redraw
    assert merged.boxes[1, 0] == 100 and merged.scores[1] == pytest.approx(0.4)  # added, weighted down


def test_merging_needs_keypoints_and_a_detector():
    with pytest.raises(ValueError, match="at least one"):
        MergedDetector([])
    boxes = MergedDetector([BoxDetector([[0, 0, 10, 10]]), BoxDetector([[50, 0, 60, 10]])])
    assert len(boxes(np.zeros((20, 80, 3), np.uint8))) == 1  # the second has no keypoints to confirm a person


def test_detections_concatenate_in_order_and_keep_keypoints_only_when_all_have_them():
    a = PersonDetections([[0, 0, 40, 200]], [0.5], _person(10)[None])
    b = PersonDetections([[100, 0, 140, 200], [200, 0, 240, 200]], [0.9, 0.8], np.stack([_person(110), _person(210)]))
    both = PersonDetections.concatenate([a, b])
    assert both.boxes[:, 0].tolist() == [0, 100, 200] and both.scores.tolist() == pytest.approx([0.5, 0.9, 0.8])
    assert np.array_equal(both.keypoints[1], b.keypoints[0])
    bare = PersonDetections.concatenate([PersonDetections(a.boxes, a.scores), PersonDetections(b.boxes, b.scores)])
    assert len(bare) == 3 and bare.keypoints is None
    assert len(PersonDetections.concatenate([])) == 0
    with pytest.raises(ValueError, match="keypoints and detections without"):
        PersonDetections.concatenate([a, PersonDetections(b.boxes, b.scores)])


def test_people_behind_others_stay_marked_through_select_and_concatenate():
    a = PersonDetections([[0, 0, 40, 200]], [0.5], _person(10)[None])
    b = PersonDetections([[100, 0, 140, 200], [200, 0, 240, 200]], [0.9, 0.8], np.stack([_person(110), _person(210)]),
                         behind=[True, False])
    both = PersonDetections.concatenate([a, b])
    assert both.behind.tolist() == [False, True, False] and both.select([1, 0]).behind.tolist() == [True, False]
    assert PersonDetections.concatenate([a, a]).behind is None and a.is_behind.tolist() == [False]
    with pytest.raises(ValueError, match="behind flags"):
        PersonDetections(b.boxes, b.scores, behind=[True])
