"""Try-on masks (spectrum_parsing.tryon) on a hand-made person whose LIP labels and keypoints are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrum_parsing.results import ParsingResult, PartInstance, PersonInstance
from spectrum_parsing.tryon import lip_label_map, tryon_masks
from spectrum_parsing.vocab.labels import LIP_LABELS

H, W = 200, 200
LABELS = ["face", "upper clothes", "left arm", "right arm", "pants", "left shoe", "right shoe"]


def _person(offset: int, pid: int, labels: list[str]) -> tuple[PersonInstance, np.ndarray]:
    """A frontal figure in columns offset..offset+80: face, upper clothes, two bare arms with hands, pants, two
    shoes (the roles of :data:`LABELS`); label ``i + 1`` is ``labels[i]``."""
    sem = np.zeros((H, W), np.int32)
    x = offset

    def put(name: str, y0: int, y1: int, x0: int, x1: int) -> None:
        sem[y0:y1, x + x0:x + x1] = LABELS.index(name) + 1  # the role's position names it in ``labels``

    put("face", 10, 40, 30, 50)
    put("upper clothes", 40, 100, 20, 60)
    put("left arm", 40, 110, 60, 70)   # the person's left: image right
    put("right arm", 40, 110, 10, 20)
    put("pants", 100, 180, 20, 60)
    put("left shoe", 180, 190, 40, 60)
    put("right shoe", 180, 190, 20, 40)
    k = np.zeros((17, 3), np.float32)
    for i, (kx, ky) in {0: (40, 25), 5: (58, 42), 6: (22, 42), 7: (65, 75), 8: (15, 75), 9: (65, 100),
                        10: (15, 100), 11: (52, 100), 12: (28, 100), 13: (52, 140), 14: (28, 140),
                        15: (50, 178), 16: (30, 178)}.items():
        k[i] = (x + kx, ky, 0.9)
    mine = sem > 0
    parts = [PartInstance(label=labels[v - 1], prompt_index=v - 1, score=0.9, mask=torch.from_numpy(sem == v))
             for v in np.unique(sem[mine])]
    return PersonInstance(id=pid, score=0.9, mask=torch.from_numpy(mine), parts=parts, keypoints=k), sem


def _result(labels: list[str], preset: str | None = None) -> ParsingResult:
    a, sem_a = _person(10, 0, labels)
    b, sem_b = _person(110, 1, labels)
    ids = list(range(1, len(labels) + 1))
    return ParsingResult([a, b], sem_a + sem_b, labels, labels, H, W, label_ids=ids, preset=preset)


def test_upper_repaints_garment_and_arms_keeps_face_hands_lower_body_and_the_other_person():
    result = _result(LABELS)
    masks = tryon_masks(result, "upper")
    assert [m.person for m in masks] == [0, 1]
    a = masks[0].agnostic
    assert a[60, 50] and a[60, 75] and a[60, 25]  # upper clothes, left and right upper arms
    assert not a[25, 50]  # face kept
    assert not a[106, 75]  # the left hand (beyond the wrist) kept
    assert not a[150, 50]  # pants kept
    assert not a[60:100, 110:200].any()  # never onto the other person
    assert a[99, 31]  # the torso quadrilateral reaches the hips
    lip = masks[0].label_map
    assert lip[60, 50] == LIP_LABELS.index("upper-clothes") and lip[60, 150] == 0  # person 0's pixels only


def test_a_hand_is_kept_where_the_pose_is_unsure_of_the_wrist_but_not_where_it_sees_none():
    """A fist raised against a wall, its elbow and wrist scored 0.23 (the bundled two-dancers photo), is kept like
    any hand; a wrist scored 0.05 gives no hand zone, and that arm is repainted to its end."""
    result = _result(LABELS)
    keypoints = result.persons[0].keypoints
    keypoints[[7, 9], 2] = 0.23  # left elbow and wrist: unsure
    keypoints[[8, 10], 2] = 0.05  # right elbow and wrist: unseen
    a = tryon_masks(result, "upper")[0].agnostic
    assert not a[106, 75]  # the left hand kept
    assert a[106, 25]  # no right hand found: that arm's end is repainted


def test_lower_and_dress():
    result = _result(LABELS)
    lower = tryon_masks(result, "lower")[0].agnostic
    assert lower[150, 50] and not lower[60, 50] and not lower[185, 55]  # pants yes, shirt no, shoes kept
    dress = tryon_masks(result, "dress")[0].agnostic
    assert dress[150, 50] and dress[60, 50] and not dress[25, 50]
    with pytest.raises(ValueError, match="garment"):
        tryon_masks(result, "hat")


def test_lip_label_map_maps_any_label_to_its_lip_class():
    labels = ["face", "t-shirt", "left arm", "right arm", "jeans", "sneakers", "right shoe"]
    lip = lip_label_map(_result(labels))
    assert lip[60, 50] == LIP_LABELS.index("upper-clothes") and lip[150, 50] == LIP_LABELS.index("pants")
    assert lip[185, 55] == LIP_LABELS.index("left-shoe") and lip[25, 50] == LIP_LABELS.index("face")
    preset = _result(LABELS, preset="lip")
    assert np.array_equal(lip_label_map(preset), preset.label_map.astype(np.uint8))
