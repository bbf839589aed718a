"""The person's unlabelled pixels filled (:mod:`spectrum_parsing.person_fill`): holes, unsure parts extended, the
person's skin colour kept out; with a fake parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrum_parsing import person_fill
from spectrum_parsing.persons import PersonDetections
from spectrum_parsing.topdown import TopDownConfig
from topdown_scenes import (
    figure_keypoints,
    parse_painted,
)


def test_specks_of_a_label_far_smaller_than_its_largest_piece_are_dropped(monkeypatch):
    """A fleck of coat apart from the coat (a note on a pinboard beside the person) is unlabelled, a fleck of coat
    inside the trousers takes the trousers' label (a hole then), two gloves of about one size both stay, and
    nothing changes with the rule off (``speck_share=0``)."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    ys, xs = np.mgrid[:300, :200]
    coat = (ys >= 60) & (ys < 160) & (xs >= 60) & (xs < 140)  # 8000 px
    fleck = (ys >= 30) & (ys < 36) & (xs >= 44) & (xs < 50)  # 36 px beside the head, apart from the coat
    pants = (ys >= 160) & (ys < 280) & (xs >= 70) & (xs < 130)
    inside = (ys >= 200) & (ys < 206) & (xs >= 95) & (xs < 101)  # 36 px of coat inside the trousers
    gloves = [(ys >= 150) & (ys < 160) & (xs >= 45) & (xs < 55), (ys >= 150) & (ys < 158) & (xs >= 145) & (xs < 155)]

    def paint(scores, plan):
        scores[plan.prompts.index("coat")][torch.from_numpy(coat | fleck | inside)] = 0.9
        scores[plan.prompts.index("pants")][torch.from_numpy(pants & ~inside)] = 0.9
        scores[plan.prompts.index("gloves")][torch.from_numpy(gloves[0] | gloves[1])] = 0.9

    def parts(**config) -> dict[str, np.ndarray]:
        persons = parse_painted(["coat", "pants", "gloves", "person"], paint, detections, **config)
        return {p.label: p.mask.numpy() for p in persons[0].parts}

    dropped = parts()
    assert dropped["coat"][coat].all() and not dropped["coat"][fleck | inside].any()
    assert dropped["pants"][inside].all()  # the enclosed fleck, unlabelled, took the label around it
    assert dropped["gloves"][gloves[0]].all() and dropped["gloves"][gloves[1]].all()
    kept = parts(speck_share=0.0)
    assert kept["coat"][fleck].all() and kept["coat"][inside].all()


def test_small_holes_in_a_persons_labels_take_the_label_around_them(monkeypatch):
    """A patch of coat the parser was unsure of becomes coat; a large enclosed gap (between an arm and the body),
    a gap open to the crop's edge and a hole off the person's own mask stay unlabelled."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    ys, xs = np.mgrid[:300, :200]
    small = (ys >= 100) & (ys < 110) & (xs >= 90) & (xs < 100)  # 100 px: under 1% of the 120 x 285 crop
    large = (ys >= 130) & (ys < 160) & (xs >= 100) & (xs < 130)  # 900 px
    off_mask = (ys >= 70) & (ys < 76) & (xs >= 95) & (xs < 101)  # off the limbs too (limb_support)
    open_gap = (ys >= 120) & (ys < 125) & (xs >= 40) & (xs < 62)  # reaches the crop's left edge

    def coat(scores, plan):
        body = torch.from_numpy((ys >= 60) & (ys < 200) & (xs >= 40) & (xs < 140))
        scores[plan.prompts.index("coat")][body & ~torch.from_numpy(small | large | off_mask | open_gap)] = 0.9
        scores[plan.prompts.index("person")][torch.from_numpy(off_mask)] = 0.0

    def coat_mask() -> np.ndarray:
        persons = parse_painted(["coat", "person"], coat, detections)
        return {p.label: p.mask.numpy() for p in persons[0].parts}["coat"]

    mask = coat_mask()
    assert mask[small].all()
    assert not mask[large].any() and not mask[off_mask].any() and not mask[open_gap].any()
    monkeypatch.setattr(person_fill, "HOLE_SHARE", 0.0)  # off
    assert not coat_mask()[small].any()


def test_a_part_the_parser_was_unsure_of_in_the_middle_is_extended_on_the_persons_pixels(monkeypatch):
    """The middle of a coat the parser scores only 0.2 (a dark coat) becomes coat, scored as the coat it was sure
    of; a garment it never labelled (shirt at 0.3) is not invented, and low coat scores away from the coat (an
    island below it) are not copied there."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    ys, xs = np.mgrid[:300, :200]
    middle = (ys >= 100) & (ys < 140) & (xs >= 60) & (xs < 120)  # 2400 px: no small hole
    shirt = (ys >= 215) & (ys < 235) & (xs >= 60) & (xs < 120)
    island = (ys >= 250) & (ys < 270) & (xs >= 60) & (xs < 120)

    def paint(scores, plan):
        coat = scores[plan.prompts.index("coat")]
        coat[torch.from_numpy((ys >= 60) & (ys < 200) & (xs >= 40) & (xs < 140))] = 0.9
        coat[torch.from_numpy(middle)] = 0.2
        coat[torch.from_numpy(island)] = 0.3
        scores[plan.prompts.index("shirt")][torch.from_numpy(shirt)] = 0.3

    def parts(**config) -> dict:
        persons = parse_painted(["coat", "shirt", "person"], paint, detections, **config)
        return {p.label: p for p in persons[0].parts}

    found = parts()
    assert set(found) == {"coat"}
    coat = found["coat"].mask.numpy()
    assert coat[middle].all() and not coat[island].any()
    off = parts(person_fill=0.0)["coat"]
    assert not off.mask.numpy()[middle].any()
    assert found["coat"].score == pytest.approx(off.score, abs=1e-4)  # the part's score stays the parser's
    monkeypatch.setattr(person_fill, "FILL_PERSON", 1.0)  # no pixel is surely the person's: nothing extended
    assert not parts()["coat"].mask.numpy()[middle].any()
    with pytest.raises(ValueError, match="person_fill"):
        TopDownConfig(person_fill=1.5)


def test_a_part_the_parser_was_barely_sure_of_is_extended_but_not_over_the_persons_skin_colour(monkeypatch):
    """The second fill (``fill_unsure``): coat the parser scores only 0.05 (below ``person_fill``) becomes coat
    where its pixels are grey (the back of a dark jacket), but not where they have the colour of the person's own
    face (a bare chest the parser half-believes is shirt); without the second fill neither is coat."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    ys, xs = np.mgrid[:300, :200]
    grey = (ys >= 100) & (ys < 120) & (xs >= 60) & (xs < 120)
    skin_coloured = (ys >= 120) & (ys < 140) & (xs >= 60) & (xs < 120)
    face = (xs - 100) ** 2 + (ys - 40) ** 2 < 12 ** 2
    image = np.full((300, 200, 3), 90, np.uint8)
    image[face | skin_coloured] = (205, 150, 118)

    def paint(scores, plan):
        coat = scores[plan.prompts.index("coat")]
        coat[torch.from_numpy((ys >= 60) & (ys < 200) & (xs >= 40) & (xs < 140))] = 0.9
        coat[torch.from_numpy(grey | skin_coloured)] = 0.05
        scores[plan.prompts.index("face")][torch.from_numpy(face)] = 0.9

    def coat(**config) -> np.ndarray:
        persons = parse_painted(["face", "coat", "person"], paint, detections, image=image, **config)
        return {p.label: p.mask.numpy() for p in persons[0].parts}["coat"]

    default = coat()
    assert default[grey].all() and not default[skin_coloured].any()
    assert not coat(fill_unsure=0.0)[grey].any()
    monkeypatch.setattr(person_fill, "FILL_SKIN_GUARD", -1.0)  # no colour is kept from the fill
    assert coat()[skin_coloured].all()
    with pytest.raises(ValueError, match="fill_unsure"):
        TopDownConfig(fill_unsure=-0.1)
