"""People hidden behind the people found (persons.peeling): the detector runs again with the found people painted
out, and only people away from them are added."""

from __future__ import annotations

import numpy as np
import pytest

from spectrum_parsing.persons import PersonDetections, hidden_people
from spectrum_parsing.persons.peeling import painted_out


def _pose(x: float) -> np.ndarray:
    k = np.zeros((17, 3), np.float32)
    k[:, 0], k[:, 1], k[:, 2] = x + np.linspace(0, 20, 17), np.linspace(10, 190, 17), 0.9
    return k


FRONT = PersonDetections([[20, 0, 80, 200]], [0.9], _pose(30)[None])
BEHIND = PersonDetections([[60, 0, 120, 200]], [0.6], _pose(70)[None])  # box IoU with FRONT 0.2


class _SeesBehindOnlyWhenFrontIsGone:
    """A detector that finds the front person while its pixels are red, and the one behind once they are not (the
    front one covers the one behind, as MoveNet's single pass does in a crowd). Records what it was shown."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, image: np.ndarray) -> PersonDetections:
        self.seen.append(image)
        front_visible = bool((image[50:150, 30:70] == [255, 0, 0]).all())
        # the second pass also re-finds the front person's outline, slightly shifted: the same person again
        again = PersonDetections([[22, 0, 82, 200]], [0.3], _pose(32)[None])
        # and, at the paint's edge, a partial view scored as the border rule lets a person cut by the frame in
        partial = PersonDetections([[120, 100, 160, 200]], [0.12], _pose(125)[None])
        if front_visible:
            return FRONT
        return PersonDetections(np.concatenate([again.boxes, BEHIND.boxes, partial.boxes]),
                                np.concatenate([again.scores, BEHIND.scores, partial.scores]),
                                np.concatenate([again.keypoints, BEHIND.keypoints, partial.keypoints]))


def _scene() -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((200, 160, 3), np.uint8)
    image[:, :, 2] = 200
    image[10:190, 25:75] = [255, 0, 0]  # the front person
    mask = np.zeros((1, 200, 160), np.float32)
    mask[0, 10:190, 25:75] = 0.9
    return image, mask


def test_the_person_behind_is_found_once_the_front_one_is_painted_out():
    image, mask = _scene()
    detector = _SeesBehindOnlyWhenFrontIsGone()
    hidden = hidden_people(image, FRONT, mask, detector)
    assert len(hidden) == 1 and hidden.boxes[0].tolist() == [60, 0, 120, 200]  # not the front one again, no partial
    assert hidden.behind.tolist() == [True]  # found behind the front one: owns only what it leaves
    assert len(hidden_people(image, FRONT, mask, detector, min_score=0.1)) == 2  # the partial view, scored 0.12
    painted = detector.seen[-1]
    mean = image.reshape(-1, 3).mean(0).astype(np.uint8)
    assert (painted[100, 50] == mean).all() and (painted[100, 77] == mean).all()  # the mask, grown 3 px
    assert (painted[100, 120] == image[100, 120]).all() and (image[100, 50] == [255, 0, 0]).all()  # a copy


def test_nobody_found_means_no_second_pass_and_masks_must_match_the_people():
    image, mask = _scene()
    detector = _SeesBehindOnlyWhenFrontIsGone()
    assert len(hidden_people(image, PersonDetections.empty(), mask[:0], detector)) == 0
    assert detector.seen == []  # a photo of garments stays empty, at no cost
    with pytest.raises(ValueError, match="2 masks for 1 people"):
        hidden_people(image, FRONT, np.concatenate([mask, mask]), detector)
    assert (painted_out(image, mask[:0]) == image).all()  # no masks: nothing painted
