"""Top-down parsing details: parts derived from keypoints ("left hand", bare skin named by pose) and hidden
competitors, with a fake parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrum_parsing import topdown
from spectrum_parsing.persons import PersonDetections
from spectrum_parsing.processor import ImagePrediction, SpectrumImageProcessor
from spectrum_parsing.topdown import (
    TopDownConfig,
    competitor_phrases,
    consistent_garments,
    crop_regions,
    derived_prompts,
    garment_roles,
    novel_prompts,
    parse_top_down,
    plan_prompts,
)


def _scene(prompts: list[str], confidence: float = 0.9):
    """One person in a 60x100 image; the fake parser labels a horizontal arm bar "left arm" (rows 20-29,
    columns 10-89) and the rest of the crop "person"; elbow at x=30, wrist at x=70 (arm pointing right)."""
    h, w = 60, 100
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, 7] = (30, 25, confidence)  # left elbow
    keypoints[0, 9] = (70, 25, confidence)  # left wrist
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=keypoints)
    plan = plan_prompts(prompts, body_parts="model")
    scored = plan.prompts

    def predict(crops):
        out = []
        for crop in crops:
            ch, cw = crop.shape[:2]
            scores = torch.zeros(len(scored), ch, cw)
            scores[scored.index("person")] = 1.0
            scores[scored.index("left arm"), 20:30, 10:90] = 0.9
            out.append(scores)
        return out

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1)
    persons, semantic = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan,
                                       scored.index("person"), config)
    return persons, semantic, scored


def test_left_hand_is_carved_from_the_arm_around_and_beyond_the_wrist():
    persons, semantic, scored = _scene(["left arm", "left hand", "person"])
    parts = {p.label: p.mask.numpy() for p in persons[0].parts}
    assert set(parts) == {"left arm", "left hand"}
    hand, arm = parts["left hand"], parts["left arm"]
    assert not (hand & arm).any()
    cols = np.flatnonzero(hand.any(0))
    assert cols.min() >= 70 - 0.15 * 40 - 1 and cols.max() == 89  # from just before the wrist to the bar's end
    assert np.flatnonzero(arm.any(0)).max() < 70  # the forearm up to the wrist stays arm
    assert (semantic[hand] == scored.index("left hand") + 1).all()


def test_left_hand_alone_reports_no_arm_and_needs_confident_keypoints():
    persons, semantic, scored = _scene(["left hand", "person"])
    labels = [p.label for p in persons[0].parts]
    assert labels == ["left hand"]
    assert "left arm" in scored and int(semantic.max()) == scored.index("left hand") + 1
    assert derived_prompts(["Left Hand", "hair"])[1] == {0: (2, 9, 7)}  # case-insensitive, arm appended
    unsure, _, _ = _scene(["left hand", "person"], confidence=0.1)
    assert unsure[0].parts == []  # no confident wrist: no hand is guessed (and the hidden arm is not reported)


def _figure() -> np.ndarray:
    """17 COCO keypoints of a person facing the camera in a 200 x 300 image (own left = image right), with the
    left fist raised beside the head."""
    k = np.zeros((17, 3), np.float32)
    pts = {0: (100, 40), 1: (106, 34), 2: (94, 34), 3: (112, 38), 4: (88, 38), 5: (125, 80), 6: (75, 80),
           7: (140, 55), 8: (65, 120), 9: (140, 25), 10: (60, 155), 11: (115, 160), 12: (85, 160),
           13: (117, 220), 14: (83, 220), 15: (118, 280), 16: (82, 280)}
    for i, (x, y) in pts.items():
        k[i] = (x, y, 0.9)
    return k


def test_bare_skin_is_named_by_pose_a_raised_fist_is_an_arm():
    h, w = 300, 200
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
    prompts = ["face", "left arm", "right arm", "left leg", "right leg", "pants", "person"]
    plan = plan_prompts(prompts)
    assert "skin" in plan.prompts and plan.prompts.index("skin") in plan.hidden and not plan.pool
    ys, xs = np.mgrid[:h, :w]

    def predict(crops):
        out = []
        for crop in crops:
            scores = torch.zeros(len(plan.prompts), h, w)
            scores[plan.prompts.index("person")] = 1.0
            # The parser calls the raised fist "face" and the bare forearm only "skin".
            scores[plan.prompts.index("face")][torch.from_numpy((xs - 100) ** 2 + (ys - 40) ** 2 < 12 ** 2)] = 0.9
            scores[plan.prompts.index("face")][torch.from_numpy((xs - 140) ** 2 + (ys - 22) ** 2 < 6 ** 2)] = 0.9
            scores[plan.prompts.index("skin")][torch.from_numpy((abs(xs - 140) < 4) & (ys > 30) & (ys < 55))] = 0.8
            scores[plan.prompts.index("pants"), 170:270, 80:120] = 0.9
            y0, x0 = 10, 40
            out.append(scores[:, y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]])
        return out

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1, skin_colour=0.0)
    persons, semantic = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan,
                                       prompts.index("person"), config)
    labels = {p.label: p.mask.numpy() for p in persons[0].parts}
    assert set(labels) == {"face", "left arm", "pants"}  # skin is hidden; the fist and forearm are the left arm
    assert labels["left arm"][22, 140] and labels["left arm"][45, 140] and labels["face"][40, 100]
    model = plan_prompts(prompts, body_parts="model")
    assert "skin" not in model.prompts and not model.body
    assert plan.sides_only  # the default: the parser's limb type, the pose's side


def test_a_sure_limb_the_person_mask_misses_is_still_the_persons():
    """BlazePose's mask often stops short of bare shins; where both joints of a limb are sure, the parser's leg
    there is kept (``limb_support``), and nothing else outside the mask is."""
    h, w = 300, 200
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
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
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
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
    keypoints = np.stack([_figure(), _figure() * np.array([0.2, 0.2, 1.0], np.float32)])
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


def test_competitors_keep_an_absent_prompt_empty():
    h, w = 60, 40
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=np.zeros((1, 17, 3)))
    prompts = ["saree", "person"]
    pool = competitor_phrases(["saree"], ["pants", "shirt", "dress", "saree", "face", "person"])
    assert "pants" in pool and "face" in pool and "dress" not in pool and "person" not in pool  # same group out
    plan = plan_prompts(prompts, competitors=pool)
    assert plan.prompts[-1] == "(competitors)" and plan.scored[-len(pool):] == pool
    assert plan.pooled == list(range(2, 2 + len(pool)))

    def predict(crops):
        scores = torch.zeros(len(plan.prompts), h, w)
        scores[plan.prompts.index("person")] = 1.0
        scores[plan.prompts.index("saree"), 20:50] = 0.6  # the parser half-believes trousers are a saree
        scores[-1, 20:50] = 0.8  # ... but "pants" (pooled) believes it more
        scores[plan.prompts.index("saree"), 5:15] = 0.7  # and nothing competes here
        return [scores]

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1)
    persons, semantic = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan, 1, config)
    (saree,) = persons[0].parts
    assert saree.label == "saree" and saree.area == 10 * w  # only the rows nothing else claims
    assert int(semantic.max()) == 1


def test_novel_competitors_contest_only_the_phrases_the_model_never_saw_as_labels():
    h, w = 60, 40
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=np.zeros((1, 17, 3)))
    prompts = ["saree", "pants", "blazer", "person"]
    assert novel_prompts(prompts) == [0]  # a synonym of dress; "blazer" (withheld in training) is a category name
    assert novel_prompts(["Upper-clothes", "left_shoe", "red dress", "zebra"]) == [2, 3]
    plan = plan_prompts(prompts, competitors=["shirt", "coat"], contested=[0])
    rival = plan.prompts.index("(competitors)")

    def predict(crops):
        scores = torch.zeros(len(plan.prompts), h, w)
        scores[plan.prompts.index("person")] = 1.0
        scores[0, 0:20] = 0.4  # "saree" where the pool is far surer: lost
        scores[0, 20:30] = 0.7  # "saree" where the pool is less sure: kept
        scores[1, 30:38] = 0.6  # "pants" is not contested, even where the pool is surer (fewer pixels than the
        # saree: trousers holding as many would make it the parser's mistake, SYNONYM_VOTE)
        scores[rival, 0:20] = 0.8
        scores[rival, 20:30] = 0.5
        scores[rival, 30:60] = 0.9
        return [scores]

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1, skin_colour=0.0)
    persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, plan, 3, config)
    areas = {p.label: p.area for p in persons[0].parts}
    assert areas == {"saree": 10 * w, "pants": 8 * w}
    assert TopDownConfig().competitors == "novel" and TopDownConfig(competitors=True).competitors == "all"
    with pytest.raises(ValueError, match="competitors"):
        TopDownConfig(competitors="some")


def test_a_region_the_competitors_barely_contest_stays_whole():
    h, w = 60, 40
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=np.zeros((1, 17, 3)))
    plan = plan_prompts(["gown", "person"], competitors=["shirt", "coat"], contested=[0])
    rival = plan.prompts.index("(competitors)")

    def predict(crops, edge):
        scores = torch.zeros(len(plan.prompts), h, w)
        scores[plan.prompts.index("person")] = 1.0
        scores[0, 10:50] = 0.6  # one region "gown" claims ...
        scores[rival, 10:50] = 0.5
        scores[rival, 10:20] = edge  # ... whose top rows the competitors edge out
        return [scores]

    config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1, skin_colour=0.0)

    def gown_area(edge):
        persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, lambda c: predict(c, edge), plan, 1,
                                    config)
        return {p.label: p.area for p in persons[0].parts}.get("gown", 0)

    assert gown_area(0.7) == 40 * w  # competitors about as sure on the whole region: kept whole (a worn dress)
    assert gown_area(4.0) == 30 * w  # clearly surer on the whole (mean ratio > 1.3): they take the rows they win


def test_pooled_competitors_sum_the_garments_that_split_one_score():
    plan = plan_prompts(["saree", "person"], competitors=["shirt", "coat", "pants", "hat"], contested=[0])
    shirt, coat, pants, hat = plan.pooled
    assert plan.pool_groups == [[shirt, coat], [pants], [hat]]  # upper-body clothes and outerwear pool together
    # the processor scores the pooled column as the best group sum: shirt + coat (0.3 + 0.3) beat pants (0.5)
    logits = torch.full((4, len(plan.scored) + 1), -30.0)
    for query, column in enumerate((shirt, coat, pants, hat)):
        logits[query, column] = 0.0
    masks = torch.full((4, 2, 2), 30.0)
    prediction = ImagePrediction(logits, masks, (8, 8), (8, 8))
    weights = torch.tensor([0.3, 0.3, 0.5, 0.2])
    prediction.logits[:, -1] = torch.log(1 / weights - 1)  # each query's no-object share leaves it ``weights``
    scores = SpectrumImageProcessor(64).semantic_scores(prediction, plan.pool_groups)
    assert scores.shape[0] == len(plan.prompts)
    assert torch.allclose(scores[-1], torch.full((8, 8), 0.6), atol=1e-4)
    flat = SpectrumImageProcessor(64).semantic_scores(prediction, plan.pooled)  # ungrouped: the best single one
    assert torch.allclose(flat[-1], torch.full((8, 8), 0.5), atol=1e-4)


def test_competitor_phrases_read_the_category_inside_free_phrases():
    candidates = ["dress", "pants", "shirt", "hat", "heels", "face"]
    assert "dress" not in competitor_phrases(["red summer dress"], candidates)
    assert "heels" not in competitor_phrases(["high heels"], candidates)  # footwear group
    assert set(competitor_phrases(["zebra"], candidates)) == set(candidates)  # unknown: everything competes


def test_sides_keep_the_parsers_limb_type_and_take_the_pose_side():
    h, w = 300, 200
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
    prompts = ["face", "left arm", "right arm", "left leg", "right leg", "person"]
    ys, xs = np.mgrid[:h, :w]
    knee = torch.from_numpy((xs - 118) ** 2 + (ys - 200) ** 2 < 6 ** 2)  # skin on the left thigh, near the knee
    hip = torch.from_numpy((xs - 118) ** 2 + (ys - 168) ** 2 < 6 ** 2)  # a hand resting at the left hip

    def parse(body_parts: str, label: str, keypoints: np.ndarray = detections.keypoints,
              hand: torch.Tensor = knee) -> dict:
        plan = plan_prompts(prompts, body_parts=body_parts)

        def predict(crops):
            scores = torch.zeros(len(plan.prompts), h, w)
            scores[plan.prompts.index("person")] = 1.0
            scores[plan.prompts.index(label)][hand] = 0.9
            return [scores[:, 10:10 + crops[0].shape[0], 40:40 + crops[0].shape[1]]]

        config = TopDownConfig(margin=0.0, person_masks="parser", min_part_pixels=1, skin_colour=0.0)
        people = PersonDetections(boxes=detections.boxes, scores=detections.scores, keypoints=keypoints[None])
        persons, _ = parse_top_down(np.zeros((h, w, 3), np.uint8), people, predict, plan,
                                    prompts.index("person"), config)
        return {p.label: p.area for p in persons[0].parts}

    # The parser says "right arm" on the left thigh, far from both wrists: the pose alone calls it a leg; sides
    # keep the parser's limb type (the pose, which saw a leg there, gives no arm side to take) ...
    unsure_knees = _figure()
    unsure_knees[[13, 14], 2] = 0.1  # a studio photo cut at the thighs
    assert set(parse("pose", "right arm", unsure_knees)) == {"left leg"}
    assert set(parse("sides", "right arm", unsure_knees)) == {"right arm"}
    # ... unless that leg's knee is seen: then the leg takes the skin the parser called arm past mid-thigh
    assert set(parse("sides", "right arm")) == {"left leg"}
    assert set(parse("sides", "right arm", hand=hip)) == {"right arm"}  # a hand at the hip stays an arm
    assert set(parse("sides", "left leg")) == {"left leg"}
    assert set(parse("sides", "face")) <= {"left leg", "left arm"}  # an unnamed (face) label is renamed by pose


# The skin-growth tests share one 300 x 200 scene: the person of _figure(), a face and the raised left forearm in
# the parser's view, shins, a trunk; each test paints what it needs.
SKIN, CLOTH, WALL = (224, 172, 140), (40, 50, 130), (90, 140, 90)
YS, XS = np.mgrid[:300, :200]
FACE = (XS - 100) ** 2 + (YS - 40) ** 2 < 14 ** 2
LEFT_FOREARM = (abs(XS - 140) < 5) & (YS > 30) & (YS < 80)
BODY_PROMPTS = ["face", "left arm", "right arm", "left leg", "right leg", "person"]


def _shins(top: int) -> np.ndarray:
    """Both shins from row ``top`` down (own left = image right)."""
    return ((abs(XS - 117) < 7) | (abs(XS - 83) < 7)) & (top <= YS) & (YS < 285)


def _picture(painted: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    """The scene's image: the wall, then each (mask, colour) of ``painted`` in order."""
    image = np.empty((300, 200, 3), np.uint8)
    image[:] = WALL
    for mask, colour in painted:
        image[mask] = colour
    return image


def _skin_parts(image: np.ndarray, person: np.ndarray, scored: list[tuple[str, np.ndarray, float]],
                prompts: list[str] = BODY_PROMPTS, box: tuple[int, int, int, int] = (40, 10, 160, 295),
                keypoints: np.ndarray | None = None, **config) -> dict[str, np.ndarray]:
    """Parts (label -> full-size mask) of a top-down parse with skin growth planned: the fake parser scores
    ``person`` as the person (the person mask: ``person_masks="parser"``) and each (prompt, mask, score) of
    ``scored`` in order, on the whole image; the crop is cut from it."""
    h, w = image.shape[:2]
    plan = plan_prompts(prompts, grow_skin=True)
    keypoints = _figure() if keypoints is None else keypoints
    detections = PersonDetections(boxes=[list(box)], scores=[0.9], keypoints=keypoints[None])

    def predict(crops):
        full = torch.zeros(len(plan.prompts), h, w)
        full[plan.prompts.index("person")] = torch.from_numpy(person).float()
        for prompt, mask, score in scored:
            full[plan.prompts.index(prompt)][torch.from_numpy(mask)] = score
        (x0, y0, x1, y1), = topdown.crop_regions(detections, h, w, 0.0)
        return [full[:, y0:y1, x0:x1]]

    options = TopDownConfig(**{"margin": 0.0, "person_masks": "parser", "min_part_pixels": 1, **config})
    persons, _ = parse_top_down(image, detections, predict, plan, plan.prompts.index("person"), options)
    return {p.label: p.mask.numpy() for p in persons[0].parts}


def _legs(parts: dict[str, np.ndarray]) -> np.ndarray:
    """The union of both legs' masks (all False when neither is a part)."""
    return sum((parts[leg] for leg in ("left leg", "right leg") if leg in parts), np.zeros((300, 200), bool))


def test_bare_legs_the_parser_missed_grow_from_the_persons_own_skin_colour():
    """Shins the parser left unlabelled become legs (the skin colour of its face and arm, near the leg
    skeleton); trousers (a guard prompt), a skin-coloured patch on the torso, the skin-coloured edge of a desk
    across the legs and the background do not."""
    body = (abs(XS - 100) < 30) & (YS > 60) & (YS < 220)
    shins = _shins(236)
    patch = (abs(XS - 100) < 6) & (abs(YS - 120) < 6)  # skin-coloured print on the shirt
    desk = (abs(XS - 100) < 36) & (YS >= 222) & (YS < 230)  # in front of the knees: the person's mask has it
    image = _picture([(FACE | LEFT_FOREARM | shins | patch | desk, SKIN), (body & ~patch, CLOTH)])
    person = FACE | LEFT_FOREARM | body | shins | patch | desk
    prompts = ["face", "left arm", "right arm", "left leg", "right leg", "pants", "person"]
    plan = plan_prompts(prompts, grow_skin=True)
    assert plan.prompts.index("pants") in plan.guards and "skirt" in plan.prompts
    assert plan.prompts.index("skirt") in plan.aside and plan.prompts.index("pants") not in plan.aside
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM, 0.9), ("pants", body & (YS > 160), 0.9)]

    def parts(colour: float) -> dict:
        return _skin_parts(image, person, scored, prompts, skin_colour=colour)

    grown = parts(1.5)
    assert grown["left leg"][250, 117] and grown["right leg"][250, 83]  # the person's own side
    assert grown["left leg"].sum() > 0.8 * (shins & (XS > 100)).sum()
    assert not grown["left leg"][body].any() and not grown["right leg"][body].any()  # not the trousers or print
    assert not grown["left leg"][desk].any() and not grown["right leg"][desk].any()  # across the legs: no shin
    assert "left leg" not in parts(0.0)  # off: the parser's labels only


def test_no_leg_grows_from_a_lone_hip():
    """The bundled two-dancers photo: a man cut by the frame below the hips, his knees and ankles unseen; the pose
    runs a thigh down from each hip, and the beige hem of his cardigan there, of his skin's colour, grew into
    "right leg". A leg grows only where its knee or ankle is seen."""
    shins = _shins(236)
    image = _picture([(FACE | LEFT_FOREARM | shins, SKIN)])
    person = FACE | LEFT_FOREARM | shins | ((abs(XS - 100) < 30) & (YS > 60) & (YS < 236))
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM, 0.9)]
    prompts = ["face", "left arm", "right arm", "left leg", "right leg", "person"]
    assert "left leg" in _skin_parts(image, person, scored, prompts, skin_colour=1.5)  # knees and ankles seen
    lone_hips = _figure()
    lone_hips[13:17, 2] = 0.0  # knees and ankles unseen
    grown = _skin_parts(image, person, scored, prompts, keypoints=lone_hips, skin_colour=1.5)
    assert "left leg" not in grown and "right leg" not in grown
    knees = lone_hips.copy()
    knees[13:15, 2] = 0.9  # the knees alone seen: the legs grow again
    assert "left leg" in _skin_parts(image, person, scored, prompts, keypoints=knees, skin_colour=1.5)


def test_a_bare_shin_the_parser_calls_trousers_grows_unless_the_photo_has_no_colour():
    """A shin in shadow that the parser scores as "pants" (a guard of legs) is the person's skin colour while the
    shorts above it are not: it becomes the leg; with ``skin_over_guard=0`` the guard holds, and on a
    black-and-white photo (no skin colour to go by) it holds too."""
    shade, shorts = (168, 129, 105), (60, 70, 150)
    trunk = (abs(XS - 100) < 30) & (YS > 60) & (YS < 220)
    shins = _shins(222)
    image = _picture([(FACE | LEFT_FOREARM, SKIN), (shins, shade), (trunk, shorts)])  # shade: same chromaticity
    person = FACE | LEFT_FOREARM | trunk | shins
    plan = plan_prompts(BODY_PROMPTS, grow_skin=True)
    assert plan.prompts.index("pants") in plan.aside  # a hidden guard of legs
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM, 0.9), ("pants", (trunk & (YS > 160)) | shins, 0.7)]

    def legs(picture: np.ndarray, over_guard: float) -> np.ndarray:
        return _legs(_skin_parts(picture, person, scored, skin_over_guard=over_guard))

    assert TopDownConfig().skin_over_guard > 0
    grown = legs(image, TopDownConfig().skin_over_guard)
    assert grown[shins].sum() > 0.8 * shins.sum() and not grown[trunk].any()  # the shins, not the shorts
    assert not legs(image, 0.0)[shins].any()
    grey = np.repeat(image.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    assert not legs(grey, TopDownConfig().skin_over_guard)[shins].any()


def test_a_garment_the_user_asked_for_still_guards_a_skin_coloured_shin():
    """The parser scores "pants" 0.45 on skin-coloured shins: below the background threshold, so they are left
    unlabelled either way. Hidden (the user asked for body parts only), that guard gives way to the skin's colour and
    the shins become legs; asked for, it holds (the parser weighed the user's own prompt there: beige trousers)."""
    trunk = (abs(XS - 100) < 30) & (YS > 60) & (YS < 220)
    shins = _shins(222)
    image = _picture([(FACE | LEFT_FOREARM | shins, SKIN), (trunk, (60, 70, 150))])
    person = FACE | LEFT_FOREARM | trunk | shins
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM, 0.9), ("upper clothes", trunk & (YS <= 160), 0.9),
              ("pants", trunk & (YS > 160), 0.9), ("pants", shins, 0.45)]

    def legs(prompts: list[str]) -> int:
        return int(_legs(_skin_parts(image, person, scored, prompts))[shins].sum())

    assert legs(BODY_PROMPTS) > 0.8 * shins.sum()
    assert legs([*BODY_PROMPTS[:-1], "upper clothes", "pants", "person"]) == 0


def test_a_forearm_the_person_mask_misses_grows_in_the_limb_band_legs_and_loose_patches_do_not():
    """The person mask stops at the right elbow (BlazePose's often does at raised or stretched forearms), but the
    pose is sure of the arm: the forearm, continuing the elbow's skin, grows into the right arm within the limb
    band. Not so a skin-coloured patch along the raised left forearm that touches no skin inside the mask, nor
    shins outside the mask (legs grow only inside it: the pose guesses legs behind a wooden desk). With
    ``limb_support=0`` (no band) the forearm stays unlabelled."""
    trunk = (abs(XS - 100) < 30) & (YS > 60) & (YS < 220)
    forearm = (abs(XS - 63) < 5) & (YS >= 112) & (YS < 158)
    elbow = forearm & (YS < 126)
    patch = (abs(XS - 140) < 4) & (YS >= 22) & (YS < 48)  # along the raised left forearm, apart from any skin
    shins = _shins(236)
    image = _picture([(FACE | forearm | patch | shins, SKIN), (trunk, CLOTH)])
    person = FACE | trunk | elbow  # the mask stops at the elbow and the hips
    scored = [("face", FACE, 0.9), ("pants", trunk & (YS > 160), 0.9)]

    def parts(support: float) -> dict:
        return _skin_parts(image, person, scored, box=(0, 0, 200, 300), limb_support=support)

    grown = parts(TopDownConfig().limb_support)
    assert grown["right arm"][forearm & ~elbow].sum() > 0.6 * (forearm & ~elbow).sum()
    assert not any(grown[part][patch].any() for part in grown)
    assert not _legs(grown)[shins].any()
    assert not parts(0.0).get("right arm", np.zeros((300, 200), bool))[forearm & ~elbow].any()


def test_a_desk_of_the_skins_colour_in_front_of_the_legs_is_not_grown_into_them():
    """A wooden desk of the skin's colour spans the crop in front of the legs; the person mask holds the part in
    front of each leg (leg-shaped, so no rule on shapes rejects it). That piece of the skin's colour lies mostly off
    the person: it is the surroundings, not shins, and nothing grows; the same leg-shaped pixels without the rest of
    the desk are shins and grow."""
    trunk = (abs(XS - 100) < 30) & (YS > 60) & (YS < 236)
    shins = _shins(236)
    desk = (YS >= 236) & (YS < 285)
    person = FACE | LEFT_FOREARM | trunk | shins
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM, 0.9)]

    def legs(skin_coloured: np.ndarray) -> int:
        image = _picture([(FACE | LEFT_FOREARM | skin_coloured, SKIN), (trunk, CLOTH)])
        return int(_legs(_skin_parts(image, person, scored, box=(0, 10, 200, 295))).sum())

    assert legs(shins) > 0.8 * shins.sum()
    assert legs(desk) == 0


def test_skin_grows_by_the_persons_own_skin_colour_not_a_neighbours_in_the_crop():
    """A neighbour's raised arm inside the crop (off the person's mask) is labelled skin too; its colour (a dark
    brown) must not enter the person's skin colour: the person's unlabelled shins of that brown (a wooden bench
    behind pale legs) do not grow, while the same shins in the person's own skin colour do."""
    pale, brown = (236, 196, 170), (120, 60, 30)
    neighbour = (abs(XS - 8) < 6) & (YS > 20) & (YS < 200)
    trunk = (abs(XS - 100) < 30) & (YS > 60) & (YS < 220)
    shins = _shins(236)
    person = FACE | LEFT_FOREARM | trunk | shins
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM | neighbour, 0.9)]

    def grown(shin_colour: tuple[int, int, int]) -> int:
        image = _picture([(FACE | LEFT_FOREARM, pale), (neighbour | shins, brown), (shins, shin_colour),
                          (trunk, CLOTH)])
        return int(_legs(_skin_parts(image, person, scored, box=(0, 10, 160, 295)))[shins].sum())

    assert grown(pale) > 0.8 * shins.sum()
    assert grown(brown) == 0


def test_a_bare_thigh_the_parser_calls_a_top_becomes_the_leg_a_top_of_skin_colour_stays():
    """The parser labels a bare thigh "upper clothes" (a garment that does not cover legs): of the person's skin
    colour while the rest of the top is not, it becomes the leg; when the whole top has the skin's colour (a beige
    tunic over the thighs) it stays the top."""
    trunk = (abs(XS - 100) < 30) & (YS > 60) & (YS < 170)
    thigh = (abs(XS - 117) < 8) & (YS >= 178) & (YS < 215)
    person = FACE | LEFT_FOREARM | trunk | thigh
    prompts = [*BODY_PROMPTS[:-1], "upper clothes", "person"]
    plan = plan_prompts(prompts, grow_skin=True)
    assert plan.prompts.index("upper clothes") not in plan.hidden
    scored = [("face", FACE, 0.9), ("left arm", LEFT_FOREARM, 0.9), ("upper clothes", trunk | thigh, 0.8)]

    def parts(top: tuple[int, int, int], over_guard: float = TopDownConfig().skin_over_guard) -> dict:
        image = _picture([(FACE | LEFT_FOREARM | thigh, SKIN), (trunk, top)])
        return _skin_parts(image, person, scored, prompts, skin_over_guard=over_guard)

    dark = parts((30, 30, 30))
    assert dark["left leg"][thigh].sum() > 0.8 * thigh.sum() and not dark["left leg"][trunk].any()
    assert dark["upper clothes"][trunk].all()
    assert "left leg" not in parts((30, 30, 30), over_guard=0.0)
    assert "left leg" not in parts(SKIN)  # the whole top is of the skin's colour: a tunic, not a thigh


def test_a_bare_forearm_the_parser_missed_grows_but_not_under_a_sleeve():
    """Arms grow by skin colour too: the bare right forearm the parser left unlabelled becomes the right arm; a
    skin-coloured sleeve on the upper arm does not, where a garment that covers arms ("shirt") claims it."""
    forearm = (abs(XS - 62) < 4) & (YS > 122) & (YS < 158)
    sleeve = (abs(XS - 70) < 5) & (YS > 85) & (YS < 115)
    image = _picture([(FACE | forearm | sleeve, SKIN)])
    plan = plan_prompts(BODY_PROMPTS, grow_skin=True)
    assert "shirt" in plan.prompts and plan.prompts.index("shirt") in plan.aside  # hidden guard of arms
    parts = _skin_parts(image, FACE | forearm | sleeve, [("face", FACE, 0.9), ("shirt", sleeve, 0.9)])
    assert parts["right arm"].sum() > 0.8 * forearm.sum() and not parts["right arm"][sleeve].any()
    assert set(parts) == {"face", "right arm"}


def _parse(prompts: list[str], paint, detections: PersonDetections, h: int = 300, w: int = 200,
           person_probs: torch.Tensor | None = None, image: np.ndarray | None = None, **config) -> list:
    """Persons of a top-down parse whose fake parser's scores are painted by ``paint(scores, plan)`` on the whole
    image (each crop is cut from it); ``image``: the photo's pixels (default black)."""
    plan = plan_prompts(prompts)
    regions = []

    def predict(crops):
        full = torch.zeros(len(plan.prompts), h, w)
        full[plan.prompts.index("person")] = 1.0
        paint(full, plan)
        from spectrum_parsing.topdown import crop_regions

        regions[:] = crop_regions(detections, h, w, 0.0)
        return [full[:, y0:y1, x0:x1] for x0, y0, x1, y1 in regions]

    options = {"margin": 0.0, "person_masks": "parser" if person_probs is None else "blazepose",
               "min_part_pixels": 1, "skin_colour": 0.0, **config}
    pixels = np.zeros((h, w, 3), np.uint8) if image is None else image
    persons, _ = parse_top_down(pixels, detections, predict, plan, prompts.index("person"),
                                TopDownConfig(**options), person_probs=person_probs)
    return persons



def _figure_parts(prompts: list[str], paint) -> dict[str, int]:
    """Part areas (label -> pixels) of the standing figure (:func:`_figure`, one detection) parsed top-down with
    ``paint(scores, plan)``'s fake scores."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
    return {p.label: p.area for p in _parse(prompts, paint, detections)[0].parts}


def test_a_hand_hanging_over_trousers_is_an_arm_bare_shins_below_shorts_stay_legs(monkeypatch):
    """The bundled group photo: people behind a desk, the pose unsure of a lowered forearm and guessing the knees
    at hand height, and the hand over the trousers was named "right leg". Bare skin lies below shorts or a skirt,
    never above the lower end of the person's lower-body garment: a leg piece there is the arm of its side. Bare
    shins the parser calls "pants" (of the skin's colour) are no trousers: the knee above them stays a leg."""
    keypoints = _figure()
    keypoints[8:11, 2] = 0.0  # right elbow and both wrists unseen
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=keypoints[None])
    prompts = ["face", "left arm", "right arm", "left leg", "right leg", "pants", "person"]
    hand = (XS - 76) ** 2 + (YS - 175) ** 2 < 7 ** 2
    knees = (abs(XS - 117) < 7) & (YS > 205) & (YS < 230)

    def parts(trousers_end: int, shins_called_pants: bool = False) -> dict[str, np.ndarray]:
        trousers = (abs(XS - 100) < 30) & (YS >= 150) & (trousers_end > YS)
        shins = _shins(trousers_end + 5)
        image = _picture([(trousers, CLOTH), (FACE | hand | shins | knees, SKIN)])

        def paint(scores, plan):
            scores[plan.prompts.index("face")][torch.from_numpy(FACE)] = 0.9
            scores[plan.prompts.index("pants")][torch.from_numpy(trousers & ~hand)] = 0.9
            scores[plan.prompts.index("skin")][torch.from_numpy(hand | shins)] = 0.9
            if shins_called_pants:
                scores[plan.prompts.index("skin")][torch.from_numpy(shins & (XS > 100))] = 0.0
                scores[plan.prompts.index("pants")][torch.from_numpy(shins & (XS > 100) & (YS > 230))] = 0.9
                scores[plan.prompts.index("skin")][torch.from_numpy(knees)] = 0.9
        return {p.label: p.mask.numpy() for p in _parse(prompts, paint, detections, image=image)[0].parts}

    trousers = parts(290)
    assert trousers["right arm"][hand].all() and "right leg" not in trousers
    shorts = parts(200)
    assert shorts["right arm"][hand].all()  # over shorts too; the shins below their hem stay legs
    assert shorts["right leg"][_shins(205) & (XS < 100)].all() and shorts["left leg"][_shins(205) & (XS > 100)].all()
    assert parts(200, shins_called_pants=True)["left leg"][knees].all()  # no wrist seen, yet the knee stays a leg
    monkeypatch.setattr(topdown, "_not_skin_coloured", lambda *args: None)  # ... by the skin's colour below it
    assert "left leg" not in parts(200, shins_called_pants=True)
    monkeypatch.setattr(topdown, "HAND_OVER_TROUSERS", 0.0)  # the rule off: the pose names the hand a leg
    assert parts(290)["right leg"][hand].all()


def test_a_face_far_from_the_head_is_not_a_face_and_a_fist_called_hair_is_an_arm(monkeypatch):
    """A skin blob the parser calls face in the crop's corner (3.6 face radii from this person's head, near no
    limb: a neighbour's fist) is dropped rather than named face; a blob called hair around the raised left wrist
    is the left arm."""
    keypoints = _figure()  # left fist raised beside the head at (140, 25), elbow (140, 55)
    detections = PersonDetections(boxes=[[20, 0, 160, 295]], scores=[0.9], keypoints=keypoints[None])
    ys, xs = np.mgrid[:300, :200]

    def paint(scores, plan):
        scores[plan.prompts.index("face")][torch.from_numpy((xs - 100) ** 2 + (ys - 40) ** 2 < 12 ** 2)] = 0.9
        scores[plan.prompts.index("face")][torch.from_numpy((xs - 28) ** 2 + (ys - 6) ** 2 < 5 ** 2)] = 0.9
        scores[plan.prompts.index("hair")][torch.from_numpy((xs - 100) ** 2 + (ys - 28) ** 2 < 6 ** 2)] = 0.9
        scores[plan.prompts.index("hair")][torch.from_numpy((xs - 141) ** 2 + (ys - 18) ** 2 < 5 ** 2)] = 0.9

    persons = _parse(["hair", "face", "left arm", "right arm", "left leg", "right leg", "person"], paint,
                     detections)
    parts = {p.label: p.mask.numpy() for p in persons[0].parts}
    assert parts["face"][40, 100] and not any(m[6, 28] for m in parts.values())  # the far "face" is dropped
    assert parts["left arm"][18, 141] and parts["hair"][28, 100]  # the fist is an arm; real hair stays hair

    def far_blob_is_face() -> bool:
        persons = _parse(["hair", "face", "left arm", "right arm", "left leg", "right leg", "person"], paint,
                         detections)
        return bool({p.label: p.mask.numpy() for p in persons[0].parts}["face"][6, 28])

    # each rule alone drops it: 3.6 face radii (body-sized capsules) and 2.8 head spans (24 px) from the head
    monkeypatch.setattr(topdown, "FACE_REACH", 100.0)
    assert not far_blob_is_face()
    monkeypatch.setattr(topdown, "FACE_SPANS", 100.0)
    assert far_blob_is_face()  # without both rules the far blob is parsed as a face
    monkeypatch.setattr(topdown, "FACE_REACH", 3.0)
    assert not far_blob_is_face()


def test_a_fist_raised_above_the_head_with_unsure_joints_is_the_arm_not_the_face(monkeypatch):
    """The bundled two-dancers photo: a fist raised a head span above the head, its elbow and wrist scored 0.23
    (under the naming threshold), lay within the face's reach and was "face". Skin the pose gives the face that
    comes nowhere near the head keypoints takes the nearest limb by weaker joints."""
    keypoints = _figure()
    keypoints[7] = (140, 55, 0.2)  # left elbow and wrist: unsure
    keypoints[9] = (137, 20, 0.2)
    detections = PersonDetections(boxes=[[40, 0, 160, 295]], scores=[0.9], keypoints=keypoints[None])
    ys, xs = np.mgrid[:300, :200]
    fist = (xs - 138) ** 2 + (ys - 12) ** 2 < 9 ** 2
    speck = (xs - 70) ** 2 + (ys - 10) ** 2 < 3 ** 2  # a few pixels above the head on the other side

    def paint(scores, plan):
        scores[plan.prompts.index("face")][torch.from_numpy((xs - 100) ** 2 + (ys - 40) ** 2 < 12 ** 2)] = 0.9
        scores[plan.prompts.index("skin")][torch.from_numpy(fist | speck)] = 0.9

    def parts() -> dict[str, np.ndarray]:
        return {p.label: p.mask.numpy() for p in _parse(BODY_PROMPTS, paint, detections)[0].parts}

    named = parts()
    assert named["left arm"][fist].all() and not named["face"][fist].any()
    assert not any(mask[speck].any() for mask in named.values())  # a speck is named nothing
    monkeypatch.setattr(topdown, "DETACHED_SPANS", 0.0)  # the rule off: the pose's face reach takes the fist
    assert parts()["face"][fist | speck].all()


def test_a_forearm_raised_behind_the_head_that_the_parser_saw_as_an_arm_is_not_named_face(monkeypatch):
    """The bundled selfie: a forearm raised behind the head, its wrist hidden (MoveNet unsure), touches the face;
    the pose alone gives it to the face (within the head's reach, one connected piece with it). Where the parser
    saw an arm in it, the piece (the parser's own face pixels cut out) is named by the pose without the face."""
    keypoints = _figure()
    keypoints[9, 2] = 0.0  # the left wrist, hidden behind the head; the elbow (140, 55) is sure
    detections = PersonDetections(boxes=[[20, 0, 180, 295]], scores=[0.9], keypoints=keypoints[None])
    ys, xs = np.mgrid[:300, :200]
    # a band from the elbow up to the side of the head, 4 px wide
    t = np.clip(((xs - 140) * (113 - 140) + (ys - 55) * (38 - 55)) / ((113 - 140) ** 2 + (38 - 55) ** 2), 0, 1)
    band = np.hypot(xs - (140 + t * (113 - 140)), ys - (55 + t * (38 - 55))) < 4

    def paint(scores, plan):
        scores[plan.prompts.index("face")][torch.from_numpy((xs - 100) ** 2 + (ys - 40) ** 2 < 12 ** 2)] = 0.9
        scores[plan.prompts.index("skin")][torch.from_numpy(band & (t > 0.3))] = 0.8  # the parser: bare skin ...
        scores[plan.prompts.index("left arm")][torch.from_numpy(band & (t <= 0.3))] = 0.9  # ... an arm by the elbow

    def labels_at(points) -> list[str | None]:
        persons = _parse(["face", "left arm", "right arm", "left leg", "right leg", "person"], paint, detections)
        parts = {p.label: p.mask.numpy() for p in persons[0].parts}
        return [next((name for name, m in parts.items() if m[y, x]), None) for x, y in points]

    near_head, middle, face = (116, 40), (127, 47), (100, 40)
    assert labels_at([near_head, middle, face]) == ["left arm", "left arm", "face"]
    monkeypatch.setattr(topdown, "PARSER_ARM_SHARE", 2.0)  # the rule off: the pose names the forearm face
    assert labels_at([near_head, middle, face]) == ["face", "face", "face"]


def test_a_persons_own_hand_is_its_own_where_a_neighbours_mask_is_as_sure():
    """Two people whose masks are both certain over B's hand hanging at A's hip: B (scored lower, so it would
    lose the tie) owns the pixels around its own wrist."""
    h, w = 300, 300
    a, b = _figure(), _figure()
    b[:, 0] += 90  # B stands 90 px to the right; its right wrist hangs at (150, 155), inside A's mask
    detections = PersonDetections(boxes=[[40, 10, 160, 295], [130, 10, 250, 295]], scores=[0.9, 0.8],
                                  keypoints=np.stack([a, b]))
    probs = torch.zeros(2, h, w)
    probs[0, 10:295, 40:170] = 1.0
    probs[1, 10:295, 130:250] = 1.0

    def paint(scores, plan):
        scores[plan.prompts.index("shirt"), 10:295, 40:250] = 0.9

    persons = _parse(["shirt", "person"], paint, detections, h, w, person_probs=probs)
    owner = {p.id: p.mask.numpy() for p in persons}
    assert owner[1][160, 150] and not owner[0][160, 150]  # B's hand
    assert owner[0][100, 150] and not owner[1][100, 150]  # elsewhere in the overlap the tie goes to A


def test_a_person_wears_one_lower_garment_when_the_parser_mostly_agrees(monkeypatch):
    """Trousers the parser calls pants with a patch it calls skirt are pants; a close call (half and half) is
    left as the parser said."""

    def parts(skirt_rows: int) -> dict:
        def paint(scores, plan):
            scores[plan.prompts.index("pants"), 170:290, 70:130] = 0.8
            scores[plan.prompts.index("skirt"), 170:170 + skirt_rows, 70:130] = 0.9

        return _figure_parts(["pants", "skirt", "person"], paint)

    assert parts(30) == {"pants": 120 * 60}  # a quarter called skirt: all pants
    assert set(parts(60)) == {"pants", "skirt"}  # half: the parser's call stands
    monkeypatch.setattr(topdown, "LOWER_VOTE", 2.0)  # off
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

        return _figure_parts(["shirt", "coat", "dress", "pants", "person"], paint)

    assert parts(90) == {"shirt": 120 * 60, "pants": 90 * 60}
    assert parts(0) == {"dress": 120 * 60}
    assert parts(20) == {"dress": 120 * 60, "pants": 20 * 60}  # a patch of "pants" below a dress: too few
    monkeypatch.setattr(topdown, "ONE_PIECE_VOTE", 100.0)  # off
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

        return _figure_parts(["shirt", phrase, "pants", "person"], paint)

    assert parts("saree", 90) == {"shirt": 60 * 60, "pants": 90 * 60}  # trousers 1.5x the "saree": a jersey
    assert parts("saree", 30) == {"saree": 60 * 60, "pants": 30 * 60}  # half: the user's phrase stands
    assert parts("dress", 30) == {"shirt": 60 * 60, "pants": 30 * 60}  # the category name: a quarter suffices
    assert parts("red dress", 90) == {"red dress": 60 * 60, "pants": 90 * 60}  # a free phrase is no synonym
    monkeypatch.setattr(topdown, "SYNONYM_VOTE", 100.0)  # off
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

        return _figure_parts(["shirt", "dress", "skirt", "person"], paint)

    assert parts(5) == {"shirt": 70 * 60, "skirt": 80 * 60}  # 5 rows of dress over 75 of skirt: a sliver
    assert parts(40) == {"shirt": 70 * 60, "dress": 40 * 60, "skirt": 40 * 60}  # a dress read half as skirt
    monkeypatch.setattr(topdown, "SKIRT_VOTE", 1000.0)  # off
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


def test_small_holes_in_a_persons_labels_take_the_label_around_them(monkeypatch):
    """A patch of coat the parser was unsure of becomes coat; a large enclosed gap (between an arm and the body),
    a gap open to the crop's edge and a hole off the person's own mask stay unlabelled."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
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
        persons = _parse(["coat", "person"], coat, detections)
        return {p.label: p.mask.numpy() for p in persons[0].parts}["coat"]

    mask = coat_mask()
    assert mask[small].all()
    assert not mask[large].any() and not mask[off_mask].any() and not mask[open_gap].any()
    monkeypatch.setattr(topdown, "HOLE_SHARE", 0.0)  # off
    assert not coat_mask()[small].any()


def test_a_part_the_parser_was_unsure_of_in_the_middle_is_extended_on_the_persons_pixels(monkeypatch):
    """The middle of a coat the parser scores only 0.2 (a dark coat) becomes coat, scored as the coat it was sure
    of; a garment it never labelled (shirt at 0.3) is not invented, and low coat scores away from the coat (an
    island below it) are not copied there."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
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
        persons = _parse(["coat", "shirt", "person"], paint, detections, **config)
        return {p.label: p for p in persons[0].parts}

    found = parts()
    assert set(found) == {"coat"}
    coat = found["coat"].mask.numpy()
    assert coat[middle].all() and not coat[island].any()
    off = parts(person_fill=0.0)["coat"]
    assert not off.mask.numpy()[middle].any()
    assert found["coat"].score == pytest.approx(off.score, abs=1e-4)  # the part's score stays the parser's
    monkeypatch.setattr(topdown, "FILL_PERSON", 1.0)  # no pixel is surely the person's: nothing extended
    assert not parts()["coat"].mask.numpy()[middle].any()
    with pytest.raises(ValueError, match="person_fill"):
        TopDownConfig(person_fill=1.5)


def test_a_part_the_parser_was_barely_sure_of_is_extended_but_not_over_the_persons_skin_colour(monkeypatch):
    """The second fill (``fill_unsure``): coat the parser scores only 0.05 (below ``person_fill``) becomes coat
    where its pixels are grey (the back of a dark jacket), but not where they have the colour of the person's own
    face (a bare chest the parser half-believes is shirt); without the second fill neither is coat."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=_figure()[None])
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
        persons = _parse(["face", "coat", "person"], paint, detections, image=image, **config)
        return {p.label: p.mask.numpy() for p in persons[0].parts}["coat"]

    default = coat()
    assert default[grey].all() and not default[skin_coloured].any()
    assert not coat(fill_unsure=0.0)[grey].any()
    monkeypatch.setattr(topdown, "FILL_SKIN_GUARD", -1.0)  # no colour is kept from the fill
    assert coat()[skin_coloured].all()
    with pytest.raises(ValueError, match="fill_unsure"):
        TopDownConfig(fill_unsure=-0.1)


def test_shoes_are_found_together_and_sided_by_the_ankle_they_are_at():
    """The parser scores footwear but muddles its side: all footwear competes as one column, each shoe takes the
    side of the seen ankle it is at, and footwear far from any seen ankle is not reported."""
    ys, xs = np.mgrid[:300, :200]
    left_foot = (abs(xs - 120) < 6) & (ys >= 278) & (ys < 290)  # own left = image right (ankle at (118, 280))
    right_foot = (abs(xs - 80) < 6) & (ys >= 278) & (ys < 290)
    print_on_shirt = (abs(xs - 100) < 6) & (abs(ys - 120) < 6)

    def paint(scores, plan):
        assert plan.prompts[plan.shoes] == "shoes" and plan.shoes in plan.hidden and plan.shoes not in plan.aside
        for foot in (left_foot, right_foot):  # a third each: no one footwear column beats the background alone
            for name in ("left shoe", "right shoe", "shoes"):
                scores[plan.prompts.index(name)][torch.from_numpy(foot)] = 0.3
        scores[plan.prompts.index("right shoe")][torch.from_numpy(print_on_shirt)] = 0.9

    def shoes(keypoints: np.ndarray) -> dict:
        detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=keypoints[None])
        persons = _parse(["left shoe", "right shoe", "person"], paint, detections)
        return {p.label: p.mask.numpy() for p in persons[0].parts} if persons else {}

    found = shoes(_figure())
    assert set(found) == {"left shoe", "right shoe"}
    assert found["left shoe"][left_foot].all() and found["right shoe"][right_foot].all()
    assert not found["right shoe"][print_on_shirt].any()
    unseen = _figure()
    unseen[[15, 16], 2] = 0.1  # feet cut by the frame: no side, no shoe
    assert not shoes(unseen)


def test_similar_garments_compete_together_against_the_background():
    """A shirt the parser half calls "shirt" and half "jacket" (similar phrases share the grounding softmax) is
    labelled, with the better of the two; a shirt and trousers guess (two groups) stays background."""
    from spectrum_parsing.topdown import garment_groups

    prompts = ["shirt", "jacket", "pants", "face", "person"]
    assert garment_groups(prompts, [0, 1, 2, 3]) == [[[0], [1]]]  # upper-body and outerwear together; pants alone

    def paint(scores, plan):
        scores[plan.prompts.index("shirt"), 80:120, 60:140] = 0.3
        scores[plan.prompts.index("jacket"), 80:120, 60:140] = 0.35
        scores[plan.prompts.index("shirt"), 200:240, 60:140] = 0.3
        scores[plan.prompts.index("pants"), 200:240, 60:140] = 0.3

    assert _figure_parts(prompts, paint) == {"jacket": 40 * 80}


def test_a_top_whose_score_its_phrases_split_is_not_called_a_coat(monkeypatch):
    """Within the pooled upper garments, the category whose phrases together score more names the pixel: a t-shirt
    that "t-shirt", "shirt" and "blouse" split (0.3 + 0.25 + 0.2) stays a top though "coat" (0.35) beats each
    alone; where the coat's phrases lead together, it is a coat."""
    from spectrum_parsing import topdown
    from spectrum_parsing.topdown import garment_groups

    prompts = ["t-shirt", "shirt", "blouse", "coat", "jacket", "person"]
    assert garment_groups(prompts, [0, 1, 2, 3, 4]) == [[[0, 1, 2], [3, 4]]]

    def paint(scores, plan):
        for name, top, bottom in (("t-shirt", 0.3, 0.1), ("shirt", 0.25, 0.1), ("blouse", 0.2, 0.05),
                                  ("coat", 0.35, 0.4), ("jacket", 0.05, 0.3)):
            scores[plan.prompts.index(name), 80:140, 60:140] = top
            scores[plan.prompts.index(name), 140:200, 60:140] = bottom

    def parts() -> dict:
        return _figure_parts(prompts, paint)

    assert parts() == {"t-shirt": 60 * 80, "coat": 60 * 80}
    monkeypatch.setattr(topdown, "SUBGROUP_CHOICE", False)  # the best phrase overall
    assert parts() == {"coat": 120 * 80}


def test_footwear_phrases_compete_together_as_the_lower_body_garments_do(monkeypatch):
    """A boot whose score "shoes" and "boots" split stays footwear against jeans and socks, whose summed scores
    beat each footwear phrase alone (CCP's boots became jeans before footwear was pooled)."""
    from spectrum_parsing import topdown
    from spectrum_parsing.topdown import garment_groups

    prompts = ["shoes", "boots", "jeans", "socks", "person"]
    assert garment_groups(prompts, [0, 1, 2, 3]) == [[[2, 3]], [[0, 1]]]

    def paint(scores, plan):
        scores[plan.prompts.index("shoes"), 250:290, 60:140] = 0.45
        scores[plan.prompts.index("boots"), 250:290, 60:140] = 0.3
        scores[plan.prompts.index("jeans"), 250:290, 60:140] = 0.35
        scores[plan.prompts.index("socks"), 250:290, 60:140] = 0.2

    def parts() -> dict:
        return _figure_parts(prompts, paint)

    assert parts() == {"shoes": 40 * 80}
    monkeypatch.setattr(topdown, "POOLED_GARMENTS", topdown.POOLED_GARMENTS[:2])  # footwear not pooled
    assert parts() == {"jeans": 40 * 80}


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
        persons = _parse(list(prompts), paint, detections)
        return {p.label: p.mask.numpy() for p in persons[0].parts}

    shadow = parts(one_eye, _figure())
    assert "sunglasses" not in shadow and shadow["face"][one_eye].all()
    pair = parts(both_eyes, _figure())
    assert pair["sunglasses"][both_eyes].all()
    profile = _figure()
    profile[2, 2] = 0.1  # the right eye is not seen
    assert parts(one_eye, profile)["sunglasses"][one_eye].all()
    assert "sunglasses" not in parts(one_eye, _figure(), ("sunglasses", "person"))  # no face asked: unlabelled
