"""Top-down parsing details: parts derived from keypoints ("left hand")."""

from __future__ import annotations

import numpy as np
import torch

from spectrum_parsing.persons import PersonDetections
from spectrum_parsing.topdown import TopDownConfig, derived_prompts, parse_top_down


def _scene(prompts: list[str], confidence: float = 0.9):
    """One person in a 60x100 image; the fake parser labels a horizontal arm bar "left arm" (rows 20-29,
    columns 10-89) and the rest of the crop "person"; elbow at x=30, wrist at x=70 (arm pointing right)."""
    h, w = 60, 100
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, 7] = (30, 25, confidence)  # left elbow
    keypoints[0, 9] = (70, 25, confidence)  # left wrist
    detections = PersonDetections(boxes=[[0, 0, w, h]], scores=[0.9], keypoints=keypoints)
    scored, derived, hidden = derived_prompts(prompts)

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
    persons, semantic = parse_top_down(np.zeros((h, w, 3), np.uint8), detections, predict, scored,
                                       scored.index("person"), config, derived=derived, hidden=hidden)
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
