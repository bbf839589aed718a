"""Garment rules (:mod:`spectrum_parsing.garments`): pooled garment phrases, one lower-body garment, no one-piece
garment over trousers, eyewear over both eyes; with a fake parser."""

from __future__ import annotations

import numpy as np
import torch

from spectrum_parsing import garments, scoring
from spectrum_parsing.garments import consistent_garments, garment_roles
from spectrum_parsing.persons import PersonDetections
from topdown_scenes import (
    figure_keypoints,
    figure_parts,
    parse_painted,
)


def test_a_person_wears_one_lower_garment_when_the_parser_mostly_agrees(monkeypatch):
    """Trousers the parser calls pants with a patch it calls skirt are pants; a close call (half and half) is
    left as the parser said."""

    def parts(skirt_rows: int) -> dict:
        def paint(scores, plan):
            scores[plan.prompts.index("pants"), 170:290, 70:130] = 0.8
            scores[plan.prompts.index("skirt"), 170:170 + skirt_rows, 70:130] = 0.9

        return figure_parts(["pants", "skirt", "person"], paint)

    assert parts(30) == {"pants": 120 * 60}  # a quarter called skirt: all pants
    assert set(parts(60)) == {"pants", "skirt"}  # half: the parser's call stands
    monkeypatch.setattr(garments, "LOWER_VOTE", 2.0)  # off
    assert set(parts(30)) == {"pants", "skirt"}


def test_a_dress_over_trousers_is_an_upper_garment(monkeypatch):
    """A pale jersey above pale trousers that the parser calls a dress becomes the best-scored upper-body garment
    (its scores kept: the part stays); a dress with no trousers below stays a dress."""

    def parts(trouser_rows: int) -> dict:
        def paint(scores, plan):
            scores[plan.prompts.index("dress"), 80:200, 70:130] = 0.8
            scores[plan.prompts.index("shirt"), 80:200, 70:130] = 0.15  # the upper garments barely score
            scores[plan.prompts.index("coat"), 80:200, 70:130] = 0.1
            scores[plan.prompts.index("pants"), 200:200 + trouser_rows, 70:130] = 0.8

        return figure_parts(["shirt", "coat", "dress", "pants", "person"], paint)

    assert parts(90) == {"shirt": 120 * 60, "pants": 90 * 60}
    assert parts(0) == {"dress": 120 * 60}
    assert parts(20) == {"dress": 120 * 60, "pants": 20 * 60}  # a patch of "pants" below a dress: too few
    monkeypatch.setattr(garments, "ONE_PIECE_VOTE", 100.0)  # off
    assert parts(90) == {"dress": 120 * 60, "pants": 90 * 60}


def test_a_saree_over_trousers_holding_as_many_pixels_is_an_upper_garment(monkeypatch):
    """A synonym of a one-piece garment ("saree": a phrase the model never saw as a label) over trousers is the
    parser's mistake only when the trousers hold at least ``SYNONYM_VOTE`` times its pixels, more cautiously than
    the category name (a quarter, :data:`ONE_PIECE_VOTE`)."""

    def parts(phrase: str, trouser_rows: int) -> dict:
        def paint(scores, plan):
            scores[plan.prompts.index(phrase), 80:140, 70:130] = 0.8
            scores[plan.prompts.index("shirt"), 80:140, 70:130] = 0.15
            scores[plan.prompts.index("pants"), 140:140 + trouser_rows, 70:130] = 0.8

        return figure_parts(["shirt", phrase, "pants", "person"], paint)

    assert parts("saree", 90) == {"shirt": 60 * 60, "pants": 90 * 60}  # trousers 1.5x the "saree": a jersey
    assert parts("saree", 30) == {"saree": 60 * 60, "pants": 30 * 60}  # half: the user's phrase stands
    assert parts("dress", 30) == {"shirt": 60 * 60, "pants": 30 * 60}  # the category name: a quarter suffices
    assert parts("red dress", 90) == {"red dress": 60 * 60, "pants": 90 * 60}  # a free phrase is no synonym
    monkeypatch.setattr(garments, "SYNONYM_VOTE", 100.0)  # off
    assert parts("saree", 90) == {"saree": 60 * 60, "pants": 90 * 60}


def test_a_sliver_of_dress_between_a_top_and_a_skirt_is_not_a_dress(monkeypatch):
    """A thin band the parser calls "dress" at the waist, between a top and a skirt that holds at least
    ``SKIRT_VOTE`` times its pixels, takes the best-scored of the top and the skirt; a dress whose lower part the
    parser calls skirt (the skirt smaller than that) stays a dress."""

    def parts(dress_rows: int) -> dict:
        def paint(scores, plan):
            scores[plan.prompts.index("shirt"), 80:150, 70:130] = 0.8
            scores[plan.prompts.index("dress"), 150:150 + dress_rows, 70:130] = 0.8
            scores[plan.prompts.index("skirt"), 150:150 + dress_rows, 70:130] = 0.3  # the skirt scores next
            scores[plan.prompts.index("skirt"), 150 + dress_rows:230, 70:130] = 0.8

        return figure_parts(["shirt", "dress", "skirt", "person"], paint)

    assert parts(5) == {"shirt": 70 * 60, "skirt": 80 * 60}  # 5 rows of dress over 75 of skirt: a sliver
    assert parts(40) == {"shirt": 70 * 60, "dress": 40 * 60, "skirt": 40 * 60}  # a dress read half as skirt
    monkeypatch.setattr(garments, "SKIRT_VOTE", 1000.0)  # off
    assert parts(5) == {"shirt": 70 * 60, "dress": 5 * 60, "skirt": 75 * 60}


def test_garments_are_made_consistent_per_person_in_a_whole_image_parse():
    """consistent_garments on a whole-image label map (the fallback's and bottom-up's): the left person's
    "dress" beside its trousers becomes its best-scored upper garment; the right person's dress stays, though the
    image as a whole has trousers enough to outvote it (the votes count each person's own pixels)."""
    prompts = ["shirt", "dress", "pants", "person"]
    labels = torch.zeros(100, 200, dtype=torch.long)
    scores = torch.zeros(len(prompts), 100, 200)
    labels[10:40, 10:90] = 2  # left: "dress" on the torso
    labels[40:90, 10:90] = 3  # left: pants
    labels[10:90, 110:190] = 2  # right: a dress
    scores[0] = 0.2  # shirt scores next everywhere
    left = torch.zeros(100, 200, dtype=torch.bool)
    left[:, :100] = True
    roles = garment_roles(prompts, [0, 1, 2])
    consistent_garments(labels, scores, roles, region=left)
    consistent_garments(labels, scores, roles, region=~left)
    assert (labels[10:40, 10:90] == 1).all() and (labels[40:90, 10:90] == 3).all()
    assert (labels[10:90, 110:190] == 2).all()
    whole = torch.zeros(100, 200, dtype=torch.long)
    whole[10:40, 10:90], whole[40:90, 10:90], whole[10:90, 110:190] = 2, 3, 2
    consistent_garments(whole, scores, roles)  # one vote over both people: the dress is lost
    assert (whole[10:90, 110:190] == 1).all()


def test_similar_garments_compete_together_against_the_background():
    """A shirt the parser half calls "shirt" and half "jacket" (similar phrases share the grounding softmax) is
    labelled, with the better of the two; a shirt and trousers guess (two groups) stays background."""
    from spectrum_parsing.garments import garment_groups

    prompts = ["shirt", "jacket", "pants", "face", "person"]
    assert garment_groups(prompts, [0, 1, 2, 3]) == [[[0], [1]]]  # upper-body and outerwear together; pants alone

    def paint(scores, plan):
        scores[plan.prompts.index("shirt"), 80:120, 60:140] = 0.3
        scores[plan.prompts.index("jacket"), 80:120, 60:140] = 0.35
        scores[plan.prompts.index("shirt"), 200:240, 60:140] = 0.3
        scores[plan.prompts.index("pants"), 200:240, 60:140] = 0.3

    assert figure_parts(prompts, paint) == {"jacket": 40 * 80}


def test_a_top_whose_score_its_phrases_split_is_not_called_a_coat(monkeypatch):
    """Within the pooled upper garments, the category whose phrases together score more names the pixel: a t-shirt
    that "t-shirt", "shirt" and "blouse" split (0.3 + 0.25 + 0.2) stays a top though "coat" (0.35) beats each
    alone; where the coat's phrases lead together, it is a coat."""
    from spectrum_parsing.garments import garment_groups

    prompts = ["t-shirt", "shirt", "blouse", "coat", "jacket", "person"]
    assert garment_groups(prompts, [0, 1, 2, 3, 4]) == [[[0, 1, 2], [3, 4]]]

    def paint(scores, plan):
        for name, top, bottom in (("t-shirt", 0.3, 0.1), ("shirt", 0.25, 0.1), ("blouse", 0.2, 0.05),
                                  ("coat", 0.35, 0.4), ("jacket", 0.05, 0.3)):
            scores[plan.prompts.index(name), 80:140, 60:140] = top
            scores[plan.prompts.index(name), 140:200, 60:140] = bottom

    def parts() -> dict:
        return figure_parts(prompts, paint)

    assert parts() == {"t-shirt": 60 * 80, "coat": 60 * 80}
    monkeypatch.setattr(garments, "SUBGROUP_CHOICE", False)  # the best phrase overall
    assert parts() == {"coat": 120 * 80}


def test_footwear_phrases_compete_together_as_the_lower_body_garments_do(monkeypatch):
    """A boot whose score "shoes" and "boots" split stays footwear against jeans and socks, whose summed scores
    beat each footwear phrase alone (CCP's boots became jeans before footwear was pooled)."""
    from spectrum_parsing.garments import garment_groups

    prompts = ["shoes", "boots", "jeans", "socks", "person"]
    assert garment_groups(prompts, [0, 1, 2, 3]) == [[[2, 3]], [[0, 1]]]

    def paint(scores, plan):
        scores[plan.prompts.index("shoes"), 250:290, 60:140] = 0.45
        scores[plan.prompts.index("boots"), 250:290, 60:140] = 0.3
        scores[plan.prompts.index("jeans"), 250:290, 60:140] = 0.35
        scores[plan.prompts.index("socks"), 250:290, 60:140] = 0.2

    def parts() -> dict:
        return figure_parts(prompts, paint)

    assert parts() == {"shoes": 40 * 80}
    fewer = scoring.POOLED_GARMENTS[:2]  # footwear not pooled: where the plan groups phrases, and where labels pool
    monkeypatch.setattr(scoring, "POOLED_GARMENTS", fewer)
    monkeypatch.setattr(garments, "POOLED_GARMENTS", fewer)
    assert parts() == {"jeans": 40 * 80}


def test_eyewear_must_reach_both_seen_eyes_a_shadowed_eye_is_face():
    """Sunglasses lie over both eyes: a dark blob at one eye of a frontal face (both eyes seen) is face, a pair over
    both eyes stays sunglasses, and in profile (one eye seen) one lens stays sunglasses."""
    ys, xs = np.mgrid[:300, :200]
    one_eye = (abs(xs - 106) <= 4) & (abs(ys - 34) <= 3)  # the left eye is at (106, 34), the right at (94, 34)
    both_eyes = (abs(xs - 100) <= 10) & (abs(ys - 34) <= 3)
    head = (abs(xs - 100) <= 16) & (ys >= 20) & (ys < 60)

    def parts(blob: np.ndarray, keypoints: np.ndarray, prompts=("face", "sunglasses", "person")) -> dict:
        def paint(scores, plan):
            if "face" in plan.prompts:
                scores[plan.prompts.index("face")][torch.from_numpy(head)] = 0.8
            scores[plan.prompts.index("sunglasses")][torch.from_numpy(blob)] = 0.95

        detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=keypoints[None])
        persons = parse_painted(list(prompts), paint, detections)
        return {p.label: p.mask.numpy() for p in persons[0].parts}

    shadow = parts(one_eye, figure_keypoints())
    assert "sunglasses" not in shadow and shadow["face"][one_eye].all()
    pair = parts(both_eyes, figure_keypoints())
    assert pair["sunglasses"][both_eyes].all()
    profile = figure_keypoints()
    profile[2, 2] = 0.1  # the right eye is not seen
    assert parts(one_eye, profile)["sunglasses"][one_eye].all()
    assert "sunglasses" not in parts(one_eye, figure_keypoints(), ("sunglasses", "person"))  # no face asked: unlabelled
