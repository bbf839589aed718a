"""Limb geometry (spectrum_parsing.limbs) on synthetic figures with known keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from spectrum_parsing.limbs import (
    RADII,
    REGIONS,
    SEGMENTS,
    body_scale,
    hand_zone,
    knee_anchored_legs,
    limb_band,
    plausible_legs,
    region_capsules,
    split_by_limbs,
    split_by_segments,
)


def figure(arms: str = "down", missing: tuple[int, ...] = ()) -> np.ndarray:
    """17 COCO keypoints of a frontal person facing the camera in a 200 x 300 image (the person's left is the
    image's right)."""
    k = np.zeros((17, 3))
    pts = {0: (100, 40), 1: (106, 34), 2: (94, 34), 3: (112, 38), 4: (88, 38),
           5: (125, 80), 6: (75, 80), 11: (115, 160), 12: (85, 160), 13: (117, 220), 14: (83, 220),
           15: (118, 280), 16: (82, 280)}
    if arms == "down":
        pts.update({7: (135, 120), 8: (65, 120), 9: (140, 155), 10: (60, 155)})
    elif arms == "crossed":  # each wrist on the other side of the body
        pts.update({7: (130, 120), 8: (70, 120), 9: (80, 130), 10: (120, 130)})
    for i, (x, y) in pts.items():
        k[i] = (x, y, 0.0 if i in missing else 0.9)
    return k


def disc(shape: tuple[int, int], x: float, y: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return (xs - x) ** 2 + (ys - y) ** 2 <= r * r


def region_at(labels: np.ndarray, x: int, y: int) -> str:
    value = int(labels[y, x])
    return REGIONS[value] if 0 <= value < len(REGIONS) else "none"


def test_each_limb_gets_its_own_side():
    shape = (300, 200)
    mask = np.zeros(shape, dtype=bool)
    spots = {"face": (100, 42), "left arm": (138, 140), "right arm": (62, 140), "left leg": (117, 250),
             "right leg": (83, 250), "torso": (100, 130)}
    for x, y in spots.values():
        mask |= disc(shape, x, y, 5)
    labels = split_by_limbs(mask, figure())
    for name, (x, y) in spots.items():
        assert region_at(labels, x, y) == name
    assert (labels[~mask] == -1).all()


def test_hands_go_with_arms_and_feet_with_legs():
    shape = (300, 200)
    mask = disc(shape, 143, 170, 4) | disc(shape, 119, 290, 4)  # past the left wrist; past the left ankle
    labels = split_by_limbs(mask, figure(), regions=("face", "left arm", "right arm", "left leg", "right leg"))
    assert region_at(labels, 143, 170) == "left arm" and region_at(labels, 119, 290) == "left leg"


def test_crossed_arms_follow_the_forearm_not_the_image_side():
    shape = (300, 200)
    mask = disc(shape, 85, 128, 3)  # on the image's right side of the body... the left forearm ends here
    labels = split_by_limbs(mask, figure("crossed"))
    assert region_at(labels, 85, 128) == "left arm"


def test_an_unsure_wrist_still_gives_the_forearm_its_direction():
    """Crossed forearms often leave MoveNet unsure of the wrists: below the naming threshold but above
    WEAK_JOINT, the arm goes on from the elbow towards the wrist (across the body), not straight on."""
    shape = (300, 200)
    mask = disc(shape, 95, 127, 3)  # the middle of the left forearm, across the body
    unsure = figure("crossed")
    unsure[[9, 10], 2] = 0.2
    assert region_at(split_by_limbs(mask, unsure), 95, 127) == "left arm"
    lost = figure("crossed")
    lost[[9, 10], 2] = 0.0  # no hint where the wrists are: the arms go straight on past the elbows
    assert region_at(split_by_limbs(mask, lost), 95, 127) != "left arm"


def test_an_unsure_elbow_between_sure_ends_bends_the_arm():
    """An elbow held out to the side (resting on a knee, on a chair's arm) that MoveNet is unsure of, between a
    sure shoulder and wrist: above WEAK_JOINT the arm bends there, so the skin by the elbow is the arm's; with no
    hint where the elbow is, the arm runs straight from shoulder to wrist and that skin is too far to claim."""
    shape = (300, 200)
    bent = figure()
    bent[8] = (30, 130, 0.2)  # right elbow far out to the image's left, unsure
    bent[10] = (70, 150, 0.9)  # right wrist back by the hip
    mask = disc(shape, 35, 130, 3)
    assert region_at(split_by_limbs(mask, bent), 35, 130) == "right arm"
    bent[8, 2] = 0.0
    assert region_at(split_by_limbs(mask, bent), 35, 130) != "right arm"


def test_knees_and_ankles_above_the_torsos_middle_are_not_leg_joints():
    """A close-up cut at the waist: the pose model puts a knee and an ankle on a forearm, above the torso's middle.
    They lose their score (so the forearm's skin is not called a leg); a knee drawn up towards the chest but below
    the middle, and a standing figure's legs, are kept; without a shoulder or a hip nothing is judged."""
    k = figure()
    k[13] = (140, 110, 0.9)  # left "knee" on the forearm: torso runs y 80 -> 160, middle at 120
    k[15] = (150, 100, 0.9)
    k[14] = (83, 135, 0.9)  # right knee drawn up, below the middle
    kept = plausible_legs(k)
    assert kept[13, 2] == 0.0 and kept[15, 2] == 0.0
    assert kept[14, 2] == 0.9 and kept[16, 2] == 0.9 and k[13, 2] == 0.9  # the input is not changed
    assert np.array_equal(plausible_legs(figure()), figure())
    no_hips = k.copy()
    no_hips[[11, 12], 2] = 0.0
    assert np.array_equal(plausible_legs(no_hips), no_hips)
    mask = disc((300, 200), 140, 110, 3)  # the forearm under the misplaced knee
    assert region_at(split_by_limbs(mask, k), 140, 110) == "left leg"
    assert region_at(split_by_limbs(mask, kept), 140, 110) == "left arm"


def test_knee_anchored_legs_drop_the_hip_and_ankle_of_a_leg_without_its_knee():
    """A pose from BlazePose alone names a leg from its knee: the reader lying on her book gets hips and an ankle
    there but no sure knee, and the skin of her forearm must not become a thigh."""
    k = figure(missing=(13,))  # left knee unsure
    kept = knee_anchored_legs(k)
    assert kept[11, 2] == 0.0 and kept[15, 2] == 0.0  # left hip and ankle dropped
    assert np.array_equal(kept[[12, 14, 16]], k[[12, 14, 16]]) and k[11, 2] == 0.9  # right leg kept, input unchanged
    assert np.array_equal(knee_anchored_legs(figure()), figure())
    forearm = disc((300, 200), 118, 176, 3)  # just below the left hip, on the line from hip to ankle
    assert region_at(split_by_limbs(forearm, figure(missing=(13,))), 118, 176) == "left leg"  # hip straight to ankle
    assert region_at(split_by_limbs(forearm, knee_anchored_legs(figure(missing=(13,)))), 118, 176) != "left leg"


def test_a_lone_hip_names_no_thigh_unless_the_other_leg_is_seen():
    """Both hips alone sure (knees and ankles unseen: a man cut by the frame below the hips, a hand resting there):
    neither leg has a segment, as no leg grows from a lone hip (body_naming) and gets no limb band, so the skin
    below a hip is not named leg. With the other leg seen, the lone hip's thigh stays: it keeps the sides apart (a
    studio photo cut at the thighs, one knee in the frame: the seen leg took both thighs)."""
    thigh = disc((300, 200), 116, 185, 3)  # below the left hip
    lone = figure(missing=(13, 14, 15, 16))
    capsules, _ = region_capsules(lone)
    assert capsules["left leg"] == [] and capsules["right leg"] == []
    assert region_at(split_by_limbs(thigh, lone), 116, 185) not in ("left leg", "right leg")
    one_seen = figure(missing=(13, 15))  # the right knee and ankle seen
    assert region_capsules(one_seen)[0]["left leg"]
    assert region_at(split_by_limbs(thigh, one_seen), 116, 185) == "left leg"


def test_missing_knee_keeps_the_leg_and_missing_limb_is_unclaimed():
    shape = (300, 200)
    k = figure(missing=(13,))  # no left knee: hip straight to ankle
    mask = disc(shape, 117, 220, 4)
    assert region_at(split_by_limbs(mask, k), 117, 220) == "left leg"
    no_legs = figure(missing=(11, 12, 13, 14, 15, 16))
    far = disc(shape, 100, 290, 4)  # nothing near but a face and arms far above
    labels = split_by_limbs(far, no_legs, regions=("face", "left arm", "right arm", "left leg", "right leg"),
                            max_radii=2.0)
    assert (labels[far] == 5).all()  # unclaimed


def test_limb_band_covers_sure_limbs_only():
    shape = (300, 200)
    band = limb_band(shape, figure(), threshold=0.3, radii=1.0)
    scale = body_scale(figure())  # torso 80 px: a leg's band is 0.15 x 80 = 12 px wide each side
    assert scale == pytest.approx(80.0)
    assert band[250, 83] and band[250, 83 + 11] and not band[250, 83 + 14]  # on and beside the right shin
    assert band[140, 62] and not band[40, 100]  # an arm yes; the face and torso are not limbs
    assert not band[160, 100]  # between the hips
    no_knee = figure(missing=(14,))  # an unsure knee between a sure hip and ankle: straight from end to end
    assert limb_band(shape, no_knee, 0.3, 1.0)[220, 83 + 1]
    no_ankle = figure(missing=(14, 16))  # a hip alone is no limb: nothing is guessed below it
    assert not limb_band(shape, no_ankle, 0.3, 1.0)[250:, 60:100].any()
    crop = limb_band((100, 80), figure(), 0.3, 1.0, origin=(40, 200))
    assert np.array_equal(crop, band[200:300, 40:120])
    assert not limb_band(shape, figure(), 0.3, 0.0).any() and not limb_band(shape, np.zeros((17, 3)), 0.3, 1.0).any()
    seen = np.zeros(shape, dtype=bool)
    seen[:230] = True  # a mask that sees the thighs (hip 160 -> knee 220) and a sixth of the shins (220 -> 280)
    partly = limb_band(shape, figure(), 0.3, 1.0, seen=seen)
    assert not partly[190, 83] and partly[250, 83]  # the seen thigh gets no band; the missed shin does
    assert limb_band(shape, figure(), 0.3, 1.0, seen=seen, seen_share=1.01)[190, 83]


def test_hand_zone_and_limb_band_match_the_whole_grid_anywhere_in_a_crop():
    """Both are computed in a window around the wrist or segment: the same pixels as over the whole crop, for
    limbs inside, across the edge of, and outside the crop."""
    ys, xs = np.mgrid[:120, :90].astype(np.float64)
    for origin in ((0.0, 0.0), (60.0, 100.0), (-40.0, 150.0), (300.0, 0.0)):
        for wrist, elbow in (((140, 155), (135, 120)), ((60, 155), (65, 120)), ((118, 280), (100, 200))):
            wx, wy = wrist[0] - origin[0], wrist[1] - origin[1]
            ex, ey = elbow[0] - origin[0], elbow[1] - origin[1]
            length = float(np.hypot(wx - ex, wy - ey))
            along = ((xs - wx) * (wx - ex) + (ys - wy) * (wy - ey)) / length**2
            full = (along > -0.15) & (np.hypot(xs - wx, ys - wy) < 0.9 * length)
            assert np.array_equal(hand_zone((120, 90), np.array(wrist), np.array(elbow), 0.15, origin), full)
        band = limb_band((120, 90), figure(), 0.3, 1.0, origin)
        whole = np.zeros((120, 90), dtype=bool)
        for a, b in ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16)):
            p, q = figure()[a, :2] - origin, figure()[b, :2] - origin
            t = np.clip(((xs - p[0]) * (q - p)[0] + (ys - p[1]) * (q - p)[1]) / float((q - p) @ (q - p)), 0, 1)
            radius = RADII["left arm" if a in (5, 6, 7, 8) else "left leg"] * body_scale(figure())
            whole |= np.hypot(xs - (p[0] + t * (q - p)[0]), ys - (p[1] + t * (q - p)[1])) <= radius
        assert np.array_equal(band, whole)


def test_no_confident_keypoints_claims_nothing_and_bad_input_raises():
    mask = np.ones((10, 10), dtype=bool)
    labels = split_by_limbs(mask, np.zeros((17, 3)))
    assert (labels == len(REGIONS)).all()
    assert body_scale(np.zeros((17, 3))) is None
    with pytest.raises(ValueError, match="17 COCO keypoints"):
        split_by_limbs(mask, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="unknown region"):
        split_by_limbs(mask, figure(), regions=("tail",))


def test_origin_shifts_keypoints_into_a_crop():
    shape = (300, 200)
    mask = disc(shape, 62, 140, 5)
    full = split_by_limbs(mask, figure())
    crop = split_by_limbs(mask[100:200, 40:120], figure(), origin=(40, 100))
    assert np.array_equal(full[100:200, 40:120], crop)


def test_component_vote_gives_a_piece_to_its_majority():
    shape = (300, 200)
    # one blob straddling the right forearm and the right thigh's edge: mostly arm
    mask = disc(shape, 64, 150, 8)
    plain = split_by_limbs(mask, figure())
    voted = split_by_limbs(mask, figure(), component_majority=0.6)
    assert set(np.unique(voted[mask]).tolist()) == {REGIONS.index("right arm")}
    assert (plain[mask] == REGIONS.index("right arm")).mean() >= 0.6


def segment_at(labels: np.ndarray, x: int, y: int) -> str:
    value = int(labels[y, x])
    return SEGMENTS[value] if 0 <= value < len(SEGMENTS) else "none"


SEGMENT_SPOTS = {"head": (100, 30), "torso": (100, 120), "left upper arm": (131, 100), "right upper arm": (69, 100),
                 "left lower arm": (139, 150), "right lower arm": (61, 150), "left upper leg": (116, 190),
                 "right upper leg": (84, 190), "left lower leg": (118, 260), "right lower leg": (82, 260)}


def test_segments_partition_a_clothed_figure():
    """Every pixel of the person (clothes included) goes to one PASCAL-Person-Part segment, its own side."""
    shape = (300, 200)
    mask = np.zeros(shape, dtype=bool)
    mask[20:295, 55:146] = True  # a loose silhouette: a coat and wide trousers
    labels = split_by_segments(mask, figure())
    for name, (x, y) in SEGMENT_SPOTS.items():
        assert segment_at(labels, x, y) == name
    assert (labels[mask] >= 0).all() and (labels[~mask] == -1).all()
    # the torso stops at the hip line, and a crotch pixel just below it is a leg
    assert segment_at(labels, 100, 165).endswith("upper leg")
    # the coat's side beside the waist is torso, not arm, where no forearm passes
    assert segment_at(labels, 112, 150) == "torso"


def test_segments_crossed_arms_and_missing_joints():
    shape = (300, 200)
    mask = np.ones(shape, dtype=bool)
    crossed = split_by_segments(mask, figure("crossed"))
    assert segment_at(crossed, 90, 127) == "left lower arm"  # the left forearm in front of the torso
    assert segment_at(crossed, 110, 127) == "right lower arm"
    no_knee = split_by_segments(mask, figure(missing=(13,)))  # the knee is the middle of hip and ankle
    assert segment_at(no_knee, 116, 200) == "left upper leg" and segment_at(no_knee, 118, 250) == "left lower leg"
    no_elbow = split_by_segments(mask, figure(missing=(7,)))
    assert segment_at(no_elbow, 131, 100) == "left upper arm" and segment_at(no_elbow, 139, 150) == "left lower arm"
    only_shoulder = split_by_segments(mask, figure(missing=(7, 9)))  # an arm that cannot be placed is not guessed
    assert "left upper arm" not in {segment_at(only_shoulder, x, y) for x in range(0, 200, 5) for y in range(0, 300, 5)}
    assert (split_by_segments(mask, np.zeros((17, 3))) == len(SEGMENTS)).all()
