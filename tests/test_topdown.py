"""Top-down parsing itself (:mod:`spectrum_parsing.topdown`): person masks, ownership, detections the parser does
not confirm, keypoints filled by BlazePose; with a fake parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrum_parsing.persons import PersonDetections
from spectrum_parsing.scoring import plan_prompts
from spectrum_parsing.topdown import TopDownConfig, crop_regions, parse_top_down
from topdown_scenes import (
    figure_keypoints,
    parse_painted,
)


def test_a_sure_limb_the_person_mask_misses_is_still_the_persons():
    """BlazePose's mask often stops short of bare shins; where both joints of a limb are sure, the parser's leg
    there is kept (``limb_support``), and nothing else outside the mask is."""
    h, w = 300, 200
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    prompts = ["right leg", "hat", "person"]
    plan = plan_prompts(prompts)
    mask = torch.zeros(1, h, w)
    mask[0, :200] = 1.0  # the person mask ends above the knees (at y = 220)

    def predict(crops):
        out = []
        for crop in crops:
            scores = torch.zeros(len(plan.prompts), h, w)
            scores[plan.prompts.index("person"), :200] = 1.0
            scores[plan.prompts.index("right leg"), 170:285, 76:90] = 0.9  # the right leg, hip to foot
            scores[plan.prompts.index("hat"), 250:270, 130:150] = 0.9  # a hat lying on the floor
            out.append(scores[:, 10:10 + crop.shape[0], 40:40 + crop.shape[1]])
        return out

    def parts(limb_support: float) -> dict[str, np.ndarray]:
        config = TopDownConfig(margin=0.0, min_part_pixels=1, skin_colour=0.0, limb_support=limb_support)
        persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan,
                                    plan.prompts.index("person"), config, person_probs=mask)
        return {p.label: p.mask.numpy() for p in persons[0].parts}

    default = parts(TopDownConfig().limb_support)
    assert default["right leg"][250, 83] and default["right leg"][180, 83]  # the shin below the mask is kept
    assert "hat" not in default  # outside the mask and off the limbs: not this person's
    assert not parts(0.0)["right leg"][250, 83]  # without the support the mask cuts the shin off
    with pytest.raises(ValueError, match="limb_support"):
        TopDownConfig(limb_support=-1.0)


def test_the_parsers_own_person_map_completes_a_person_mask_inside_the_box_only():
    """BlazePose's mask of a man in a dark suit covers only his head; the parser sees his body: inside his detected
    box its prompt-independent person map (one map after the prompts' scores) completes the mask
    (``parser_person``), while a neighbour the crop's margin shows, whom the parser sees too, stays outside him."""
    h, w = 300, 260
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    plan = plan_prompts(["shirt", "person"])
    mask = torch.zeros(1, h, w)
    mask[0, 15:60, 80:120] = 1.0  # the head only

    def predict(crops):
        out = []
        for crop in crops:
            scores = torch.zeros(len(plan.prompts) + 1, h, w)
            scores[-1, 15:290, 50:150] = 0.95  # the parser's own person map: his body ...
            scores[-1, 20:290, 165:200] = 0.95  # ... and a neighbour beside his box
            scores[plan.prompts.index("person")] = scores[-1]  # its prompt-dependent column agrees here
            scores[plan.prompts.index("shirt"), 60:180, 50:150] = 0.9
            scores[plan.prompts.index("shirt"), 60:180, 165:200] = 0.9
            x0, y0 = (int(v) for v in crop_regions(detections, h, w, 0.5)[0, :2])
            out.append(scores[:, y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]])
        return out

    def owned(weight: float, extra_map: bool = True) -> np.ndarray:
        config = TopDownConfig(margin=0.5, min_part_pixels=1, skin_colour=0.0, limb_support=0.0,
                               parser_person=weight)
        predictor = predict if extra_map else (lambda crops: [s[:-1] for s in predict(crops)])
        persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predictor, plan,
                                    plan.prompts.index("person"), config, person_probs=mask)
        assert len(persons) == 1
        return persons[0].mask.numpy()

    completed = owned(0.6)
    assert completed[30, 100] and completed[100, 100] and completed[280, 100]  # head, chest, feet
    assert not completed[100:, 165:].any()  # not the neighbour beside his box
    assert not owned(0.0)[100:, :].any()  # BlazePose's mask alone: the head
    assert not owned(0.6, extra_map=False)[100:, :].any()  # a predictor without the map: the mask alone
    assert not owned(0.5)[250:, :].any()  # the parser's 0.95 x 0.5 does not pass 0.5
    assert TopDownConfig().parser_person == 0.6  # on by default
    with pytest.raises(ValueError, match="parser_person"):
        TopDownConfig(parser_person=1.5)


def test_a_large_detection_the_parser_does_not_see_as_a_person_is_dropped():
    """A garment photographed alone that the detector takes for a person: its box fills the photo, yet the parser
    scores no person on its mask, so it is not reported; a small far person the parser cannot make out stays."""
    h, w = 300, 200
    keypoints = np.stack([figure_keypoints(), figure_keypoints() * np.array([0.2, 0.2, 1.0], np.float32)])
    keypoints[1, :, :2] += (150, 10)  # a small far person: 60 px tall
    detections = PersonDetections(boxes=[[40, 10, 160, 295], [160, 12, 190, 70]], scores=[0.4, 0.3],
                                  keypoints=keypoints)
    plan = plan_prompts(["shirt", "person"])
    masks = torch.zeros(2, h, w)
    masks[0, 20:290, 50:150] = 1.0
    masks[1, 14:68, 162:188] = 1.0

    def parse(person_score: float, **options: float) -> list:
        def predict(crops):
            out = []
            for crop in crops:
                scores = torch.zeros(len(plan.prompts), *crop.shape[:2])
                scores[plan.prompts.index("person")] = person_score
                scores[plan.prompts.index("shirt")] = 0.9
                out.append(scores)
            return out

        config = TopDownConfig(margin=0.0, min_part_pixels=1, skin_colour=0.0, **options)
        persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan,
                                    plan.prompts.index("person"), config, person_probs=masks)
        return [tuple(p.box) for p in persons]

    assert len(parse(0.0)) == 1 and parse(0.0)[0][0] >= 160  # the garment is dropped, the small person kept
    assert len(parse(0.6)) == 2  # a person the parser sees
    assert len(parse(0.0, min_person_evidence=0.0)) == 2  # off
    assert len(parse(0.0, evidence_min_height=1.0)) == 2  # only boxes as tall as the photo are judged
    with pytest.raises(ValueError, match="min_person_evidence"):
        TopDownConfig(min_person_evidence=1.5)


def test_a_persons_own_hand_is_its_own_where_a_neighbours_mask_is_as_sure():
    """Two people whose masks are both certain over B's hand hanging at A's hip: B (scored lower, so it would
    lose the tie) owns the pixels around its own wrist."""
    h, w = 300, 300
    a, b = figure_keypoints(), figure_keypoints()
    b[:, 0] += 90  # B stands 90 px to the right; its right wrist hangs at (150, 155), inside A's mask
    detections = PersonDetections(boxes=[[40, 10, 160, 295], [130, 10, 250, 295]], scores=[0.9, 0.8],
                                  keypoints=np.stack([a, b]))
    probs = torch.zeros(2, h, w)
    probs[0, 10:295, 40:170] = 1.0
    probs[1, 10:295, 130:250] = 1.0

    def paint(scores, plan):
        scores[plan.prompts.index("shirt"), 10:295, 40:250] = 0.9

    persons = parse_painted(["shirt", "person"], paint, detections, h, w, person_probs=probs)
    owner = {p.id: p.mask.numpy() for p in persons}
    assert owner[1][160, 150] and not owner[0][160, 150]  # B's hand
    assert owner[0][100, 150] and not owner[1][100, 150]  # elsewhere in the overlap the tie goes to A


def test_fill_keypoints_takes_blazepose_only_where_movenet_is_unsure_and_blazepose_sure():
    from spectrum_parsing.topdown import FILLED_KEYPOINTS, fill_keypoints

    movenet = np.zeros((1, 17, 3), np.float32)
    movenet[0, :, :2] = 10.0
    movenet[0, :, 2] = 0.9
    movenet[0, 13, 2] = 0.1  # unsure left knee
    movenet[0, 14, 2] = 0.1  # unsure right knee
    movenet[0, 7, 2] = 0.1  # unsure left elbow (not a leg keypoint)
    blaze = np.full((1, 17, 3), 50.0, np.float32)
    blaze[0, :, 2] = 0.95
    blaze[0, 14, 2] = 0.5  # BlazePose not sure enough of the right knee
    out = fill_keypoints(movenet, blaze, threshold=0.3, indices=FILLED_KEYPOINTS["legs"], visibility=0.7)
    assert out[0, 13].tolist() == pytest.approx([50, 50, 0.95])  # filled
    assert out[0, 14].tolist() == pytest.approx([10, 10, 0.1])  # BlazePose below the visibility: kept
    assert out[0, 7].tolist() == pytest.approx([10, 10, 0.1])  # not a leg keypoint: kept
    assert out[0, 11].tolist() == pytest.approx([10, 10, 0.9])  # MoveNet sure: kept
    assert movenet[0, 13, 2] == pytest.approx(0.1)  # inputs unchanged
    assert fill_keypoints(movenet, blaze, 0.3, FILLED_KEYPOINTS["off"]).tolist() == movenet.tolist()
    with pytest.raises(ValueError, match="differ in shape"):
        fill_keypoints(movenet, blaze[:, :5], 0.3)


def test_fill_keypoints_option_is_validated():
    with pytest.raises(ValueError, match="fill_keypoints"):
        TopDownConfig(fill_keypoints="arms")
    with pytest.raises(ValueError, match="fill_visibility"):
        TopDownConfig(fill_visibility=1.5)


def test_a_person_found_behind_others_owns_only_what_the_people_in_front_leave():
    """A person found behind others (``PersonDetections.behind``: peeled, or kept as partly hidden) loses every
    pixel a person in front claims, even where its own mask is surer (its mask spills over the front person's
    head); elsewhere it owns its pixels as anyone does."""
    h, w = 300, 300
    a, b = figure_keypoints(), figure_keypoints()
    b[:, 0] += 90
    probs = torch.zeros(2, h, w)
    probs[0, 10:295, 40:170] = 0.7  # the person in front: a less sure mask
    probs[1, 10:295, 130:250] = 0.95  # the person behind: sure, and spilling over the front person's side

    def paint(scores, plan):
        scores[plan.prompts.index("shirt"), 10:295, 40:250] = 0.9

    def owners(behind):
        detections = PersonDetections(boxes=[[40, 10, 170, 295], [130, 10, 250, 295]], scores=[0.6, 0.3],
                                      keypoints=np.stack([a, b]), behind=behind)
        persons = parse_painted(["shirt", "person"], paint, detections, h, w, person_probs=probs)
        return {p.id: p.mask.numpy() for p in persons}

    front_first = owners([False, True])
    assert front_first[0][100, 150] and not front_first[1][100, 150]  # the overlap: the front person's
    assert front_first[1][100, 200]  # the rest of the person behind: its own
    by_mask = owners(None)  # nobody behind: the surer mask wins the overlap
    assert by_mask[1][100, 150] and not by_mask[0][100, 150]
