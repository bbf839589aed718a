"""Scenes shared by the top-down tests: a fake parser paints per-prompt scores on a synthetic figure whose keypoints
are known, and :func:`~spectrum_parsing.topdown.parse_top_down` parses it."""

from __future__ import annotations

import numpy as np
import torch

from spectrum_parsing import topdown
from spectrum_parsing.persons import PersonDetections
from spectrum_parsing.scoring import plan_prompts
from spectrum_parsing.topdown import TopDownConfig, crop_regions, parse_top_down


def arm_scene(prompts: list[str], confidence: float = 0.9):
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


def figure_keypoints() -> np.ndarray:
    """17 COCO keypoints of a person facing the camera in a 200 x 300 image (own left = image right), with the
    left fist raised beside the head."""
    k = np.zeros((17, 3), np.float32)
    pts = {0: (100, 40), 1: (106, 34), 2: (94, 34), 3: (112, 38), 4: (88, 38), 5: (125, 80), 6: (75, 80),
           7: (140, 55), 8: (65, 120), 9: (140, 25), 10: (60, 155), 11: (115, 160), 12: (85, 160),
           13: (117, 220), 14: (83, 220), 15: (118, 280), 16: (82, 280)}
    for i, (x, y) in pts.items():
        k[i] = (x, y, 0.9)
    return k


# The skin-growth tests share one 300 x 200 scene: the person of figure_keypoints(), a face and the raised left
# forearm in the parser's view, shins, a trunk; each test paints what it needs.
SKIN, CLOTH, WALL = (224, 172, 140), (40, 50, 130), (90, 140, 90)


YS, XS = np.mgrid[:300, :200]


FACE = (XS - 100) ** 2 + (YS - 40) ** 2 < 14 ** 2


LEFT_FOREARM = (abs(XS - 140) < 5) & (YS > 30) & (YS < 80)


BODY_PROMPTS = ["face", "left arm", "right arm", "left leg", "right leg", "person"]


def shin_masks(top: int) -> np.ndarray:
    """Both shins from row ``top`` down (own left = image right)."""
    return ((abs(XS - 117) < 7) | (abs(XS - 83) < 7)) & (top <= YS) & (YS < 285)


def paint_picture(painted: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    """The scene's image: the wall, then each (mask, colour) of ``painted`` in order."""
    image = np.empty((300, 200, 3), np.uint8)
    image[:] = WALL
    for mask, colour in painted:
        image[mask] = colour
    return image


def skin_parts(image: np.ndarray, person: np.ndarray, scored: list[tuple[str, np.ndarray, float]],
                prompts: list[str] = BODY_PROMPTS, box: tuple[int, int, int, int] = (40, 10, 160, 295),
                keypoints: np.ndarray | None = None, **config) -> dict[str, np.ndarray]:
    """Parts (label -> full-size mask) of a top-down parse with skin growth planned: the fake parser scores
    ``person`` as the person (the person mask: ``person_masks="parser"``) and each (prompt, mask, score) of
    ``scored`` in order, on the whole image; the crop is cut from it."""
    h, w = image.shape[:2]
    plan = plan_prompts(prompts, grow_skin=True)
    keypoints = figure_keypoints() if keypoints is None else keypoints
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


def both_legs(parts: dict[str, np.ndarray]) -> np.ndarray:
    """The union of both legs' masks (all False when neither is a part)."""
    return sum((parts[leg] for leg in ("left leg", "right leg") if leg in parts), np.zeros((300, 200), bool))


def parse_painted(prompts: list[str], paint, detections: PersonDetections, h: int = 300, w: int = 200,
           person_probs: torch.Tensor | None = None, image: np.ndarray | None = None, **config) -> list:
    """Persons of a top-down parse whose fake parser's scores are painted by ``paint(scores, plan)`` on the whole
    image (each crop is cut from it); ``image``: the photo's pixels (default black)."""
    plan = plan_prompts(prompts)
    regions = []

    def predict(crops):
        full = torch.zeros(len(plan.prompts), h, w)
        full[plan.prompts.index("person")] = 1.0
        paint(full, plan)

        regions[:] = crop_regions(detections, h, w, 0.0)
        return [full[:, y0:y1, x0:x1] for x0, y0, x1, y1 in regions]

    options = {"margin": 0.0, "person_masks": "parser" if person_probs is None else "blazepose",
               "min_part_pixels": 1, "skin_colour": 0.0, **config}
    pixels = np.zeros((h, w, 3), np.uint8) if image is None else image
    persons, _ = parse_top_down(pixels, detections, predict, plan, prompts.index("person"),
                                TopDownConfig(**options), person_probs=person_probs)
    return persons


def figure_parts(prompts: list[str], paint) -> dict[str, int]:
    """Part areas (label -> pixels) of the standing figure (:func:`figure_keypoints`, one detection) parsed
    top-down with ``paint(scores, plan)``'s fake scores."""
    detections = PersonDetections(boxes=[[40, 10, 160, 295]], scores=[0.9], keypoints=figure_keypoints()[None])
    return {p.label: p.area for p in parse_painted(prompts, paint, detections)[0].parts}
