"""Top-down multi-person parsing: find the people first, parse each one in its own crop, paste back.

1. A :class:`~spectrum_parsing.persons.PersonDetector` (MoveNet-MultiPose by default) gives a box per person.
   When it finds nobody, the parser's own people on the whole image are kept if one is confident and large
   (``fallback_score``, ``fallback_share``): a photo that is mostly one person is never returned empty. Those
   people are then parsed like detected ones, their pose from BlazePose's landmarks (``fallback_pose``).
2. Each person's box, widened by ``margin`` (and stretched to cover its confident keypoints: raised hands),
   is cropped and parsed at the model's input size, so a small person gets as many model pixels as a selfie.
3. Who owns each pixel: a person probability map per detection — BlazePose's segmentation of a square crop
   around the person (``person_masks="blazepose"``, default) or the parser's own ``person`` score inside the
   widened box (``"parser"``) — and each pixel goes to the person with the highest probability, if > 0.5.
   People never share a pixel. Where the pose is sure of an arm or leg that the mask misses, one capsule radius
   around it counts as the person's too (``limb_support``: BlazePose's mask often stops short of bare shins and
   raised forearms). A detection at least half the photo's height that the parser does not see as a person (mean
   ``person`` score over its mask below ``min_person_evidence``: a garment photographed alone) owns nothing.
4. Each person's parts are the parser's semantic labels of its crop on the pixels that person owns; parts with
   no pixel (or a mean score below the threshold) are dropped. The label map is rendered from those parts,
   so the label map, the persons and the JSON always agree. Garments and objects that belong to no person
   (nobody detected there) get no label at all.

What is scored is planned per call (:mod:`.scoring`: the user's prompts plus hidden helpers and competitors).
Each crop's labels then go through the rules of three modules, in this order (:func:`parse_top_down`):

* :mod:`.garments` — similar garments pooled, competitors contested, garments made consistent;
* :mod:`.body_naming` — bare skin named by pose and grown by the person's skin colour, hands over trousers;
* :mod:`.person_fill` — the person's unlabelled pixels filled by the garments it already wears;
* then shoes sided by pose, eyewear checked against the eyes, hands carved, specks dropped and holes filled,
  geometric parts split; once ownership is decided, specks are dropped again on the pixels each person owns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .body_naming import carve_hand, grow_skin, hands_over_trousers, misnamed_hands, name_skin, side_footwear
from .garments import (
    EYEWEAR,
    consistent_garments,
    contest,
    eyewear_over_both_eyes,
    garment_groups,
    garment_roles,
    pool_garments,
)
from .limbs import hand_zone, limb_band, plausible_legs
from .person_fill import (
    SPECK_SHARE,
    complete_person,
    drop_specks,
    fill_holes,
    not_skin_coloured,
    speck_columns,
    split_segments,
)
from .persons import PersonDetections
from .processor import PersonCandidate, SpectrumImageProcessor, assemble_persons
from .results import PersonInstance
from .scoring import BODY_PART_SOURCES, ScoringPlan
from .skin import ColourImage
from .vocab import categories as vocabulary

__all__ = ["COMPETITOR_MODES", "FILLED_KEYPOINTS", "PERSON_MASK_SOURCES", "CropPredictor", "TopDownConfig",
           "crop_regions", "fill_keypoints", "parse_top_down"]

OWN_HAND_REACH = 0.6
"""Ownership: a person's pixels within this many forearm lengths past its own confident wrist are its hand."""


def _own_hands(probs: torch.Tensor, keypoints: np.ndarray | None, origin: tuple[int, int],
               threshold: float) -> torch.Tensor:
    """Ownership scores of a crop: the person probabilities, raised above 1 (1 + probability) on the person's own
    hands — around each confident wrist (:data:`OWN_HAND_REACH` forearm lengths past it, 0.4 behind it), where a
    person is seen at all (> 0.2) — so a hand hanging against a neighbour's hip, where both masks are certain,
    stays its owner's."""
    if keypoints is None:
        return probs
    out = probs
    for wrist, elbow in ((9, 7), (10, 8)):
        w, e = keypoints[wrist], keypoints[elbow]
        if min(w[2], e[2]) < threshold or float(np.hypot(*(w[:2] - e[:2]))) < 3:
            continue
        zone = torch.from_numpy(hand_zone(tuple(probs.shape), w[:2], e[:2], back=0.4, origin=origin,
                                          reach=OWN_HAND_REACH)) & (probs > 0.2) & (probs <= 1.0)
        if bool(zone.any()):
            out = out.clone() if out is probs else out
            out[zone] = 1.0 + out[zone]
    return out


LIMB_SUPPORT_PROB = 0.51
"""The person probability a pixel of a sure limb (``TopDownConfig.limb_support``) gets at least: just over the
ownership cut (0.5), so a neighbour whose own mask is sure there keeps it."""


FRONT_CLAIM = 0.5
"""A person found behind others (``PersonDetections.behind``) owns no pixel a person in front holds with more than
this probability."""


LIMB_SEEN_SHARE = 0.8
"""A sure limb segment whose centre line lies in the person mask for this share of its length is seen by the mask
already: it gets no band (``TopDownConfig.limb_support``), which would only widen the mask's edges (CCP val coarse
55.07 -> 54.55 with every segment banded, 55.05 with seen ones left out)."""


def _unconfirmed(person_scores: torch.Tensor, probs: torch.Tensor, box: np.ndarray, height: int, evidence: float,
                 min_height: float) -> bool:
    """Whether a detection the parser does not confirm is to be dropped: its box is at least ``min_height`` of the
    image's height (a large person, whom the parser sees clearly when it is one) and the parser's mean person score
    (``person_scores``, crop-local) over its person mask (``probs`` > 0.5) is below ``evidence``. MoveNet takes
    some garments photographed alone for people (scores up to 0.47, 5-12 sure keypoints); the parser, trained
    with such photos as negatives, scores them near 0 while real people score 0.3 or more. Small people are never
    dropped: blurred passers-by in street photos score near 0 too."""
    if float(box[3] - box[1]) < min_height * height:
        return False
    mask = probs > 0.5
    return not bool(mask.any()) or float(person_scores[mask].float().mean()) < evidence


def _with_parser_person(probs: torch.Tensor, person_scores: torch.Tensor, box: np.ndarray, origin: tuple[int, int],
                        weight: float) -> torch.Tensor:
    """Crop-local person probabilities ``probs`` (BlazePose's mask) raised, inside the detection's ``box`` (image
    pixels), to ``weight`` times the parser's own person map where that is higher. BlazePose's mask misses people
    in dark clothes on dark ground (a man in a dark suit owned only his face, so his reported box missed him); the
    parser, trained on such photos, still sees him. Outside the box the parser's map is not used: a crop's margin
    shows the neighbours, whom the parser sees as persons too."""
    x0, y0 = origin
    bx0, by0, bx1, by1 = (int(round(float(v))) for v in box)
    inside = torch.zeros(probs.shape, dtype=torch.bool)
    inside[max(by0 - y0, 0):max(by1 - y0, 0), max(bx0 - x0, 0):max(bx1 - x0, 0)] = True
    return torch.where(inside, torch.maximum(probs, weight * person_scores.to(probs.dtype)), probs)


PERSON_MASK_SOURCES = ("blazepose", "parser")


COMPETITOR_MODES = ("off", "novel", "all")


FILLED_KEYPOINTS = {"off": (), "legs": tuple(range(11, 17)), "all": tuple(range(17))}
"""Which COCO keypoints BlazePose's landmarks may fill where MoveNet is unsure (``TopDownConfig.fill_keypoints``):
``"legs"`` the hips, knees and ankles, ``"all"`` every one."""


FILL_VISIBILITY = 0.7
"""A landmark fills a keypoint only when BlazePose's visibility reaches this: it places the knees of people cut at
the thighs (VITON's studio photos) with visibility 0.34-0.78, mostly under 0.6."""


def fill_keypoints(keypoints: np.ndarray, landmarks: np.ndarray, threshold: float,
                   indices: Sequence[int] = FILLED_KEYPOINTS["legs"], visibility: float = FILL_VISIBILITY
                   ) -> np.ndarray:
    """(N, 17, 3) ``keypoints`` (MoveNet's) with each of ``indices`` scored below ``threshold`` replaced by the
    ``landmarks`` of the same person and name (BlazePose's, from its crop of that person at 256 px; score = its
    visibility) where those reach ``visibility``. A new array; the inputs are not changed.

    MoveNet, seeing the whole photo at 256 px, often gives no confident knee or ankle for a seated or cut-off
    person; BlazePose, seeing the person's own crop, places them. Measured through the shipped path
    (``benchmarks/bench_body_parts.py --parts-only``, BENCHMARKS.md): filling the legs at visibility >= 0.7
    raised ``lip_dev`` body-part mIoU 55.4 -> 61.2 and bare-skin IoU 58.4 -> 63.4, ``cihp_dev`` body-part mIoU
    40.0 -> 42.3, for VITON val (first 50) 82.8 -> 81.5. Filling the head and arms, or the legs at any visibility,
    lowered ``lip_dev`` (53.5) or VITON (75.7)."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if out.shape != landmarks.shape:
        raise ValueError(f"keypoints {out.shape} and landmarks {landmarks.shape} differ in shape")
    index = np.asarray(list(indices), dtype=np.int64)
    if not len(index):
        return out
    take = (out[:, index, 2] < threshold) & (landmarks[:, index, 2] >= max(threshold, visibility))
    out[:, index] = np.where(take[..., None], landmarks[:, index], out[:, index])
    return out


@dataclass
class TopDownConfig:
    """Options of top-down parsing (see the module docstring)."""

    margin: float = 0.15  # each side, as a fraction of the box's side
    person_masks: str = "blazepose"
    keypoint_threshold: float = 0.3  # keypoints this confident widen the crop (and name bare skin)
    min_part_pixels: int = 16
    min_person_pixels: int = 64
    # Who names bare skin: "sides" (default) the parser says which limb (arm, leg; face and plain skin count as
    # unnamed) and the person's pose which side, and names what the parser left unnamed; "pose": the pose names
    # everything; "model": the parser's own labels (benchmarks/bench_body_parts.py).
    body_parts: str = "sides"
    # Known categories of other groups compete, hidden, with "novel" prompts (the phrases the model never saw as
    # a label: synonyms, free phrases, unknown words), "all" prompts or none ("off"); True/False are "all"
    # and "off" (benchmarks/bench_body_parts.py).
    competitors: str = "novel"
    # When the detector finds nobody, the parser's own whole-image people are used if one scores at least
    # fallback_score and covers fallback_share of the image (1.0: never; benchmarks/bench_persons.py).
    fallback_score: float = 0.8
    fallback_share: float = 0.15
    # ... and those people are then parsed top-down like detected ones, with BlazePose's landmarks of each (from its
    # person-mask pass) as its pose; False: the whole-image parse's people as they are.
    fallback_pose: bool = True
    # People hidden behind the people found: where the detector found at least two, it runs again with their
    # BlazePose masks painted out (MoveNet: its native pass), and the people it then finds away from them, scored at
    # least 0.15, are parsed too (persons.peeling; CCP val composites' reported recall 64.3% -> 67.0%;
    # benchmarks/bench_people_reported.py). False: one pass.
    peel: bool = True
    # Bare skin the parser missed (legs and arms, on real photos): the person's own unlabelled pixels within skin_radii
    # capsule radii of a limb and skin_colour standard deviations of the chromaticity of the skin the parser found
    # become that limb (0: off; benchmarks/bench_body_parts.py).
    skin_colour: float = 1.5
    skin_radii: float = 1.5
    # ... even under a garment that covers the limb, where within skin_over_guard standard deviations of that colour
    # (a dark shin the parser calls "pants"; _skin_under_guard; 0: off; benchmarks/bench_body_parts.py).
    skin_over_guard: float = 1.0
    # BlazePose's landmarks (from the person-mask pass: no extra model run) fill the keypoints MoveNet is unsure of:
    # "legs" (default) the hips, knees and ankles, "all" every keypoint, "off" none (fill_keypoints,
    # FILLED_KEYPOINTS), where BlazePose's visibility reaches fill_visibility.
    fill_keypoints: str = "legs"
    fill_visibility: float = FILL_VISIBILITY
    # Flip test-time augmentation: each crop is parsed mirrored too and the scores averaged, left and right
    # swapped (as SCHP evaluates); twice the parser's time (benchmarks/bench_body_parts.py).
    flip: bool = False
    # Where the pose is sure of a limb (two of its joints scored >= keypoint_threshold) that the person mask misses
    # (BlazePose's often stops short of bare legs and raised arms; LIMB_SEEN_SHARE), the pixels within limb_support
    # capsule radii of it count as the person's: what the parser labels there is kept, and bare skin of an arm grows
    # there where it continues the person's skin inside the mask (lip_dev right arm 57.2 -> 59.7); legs grow only
    # inside the mask, as the pose guesses legs behind a desk of skin's colour (grow_skin, _unanchored_growth;
    # limbs.limb_band; 0: off; benchmarks/bench_body_parts.py).
    limb_support: float = 1.0
    # The person's own pixels (person mask > FILL_PERSON) the parser left unlabelled are labelled again with
    # person_fill as the background threshold, and take a garment the parser already labelled on the person: the
    # mask is sure something of the person is there, the parser only unsure what (the middle of a dark coat;
    # lip_dev all 32.1 -> 33.6; 0: off; complete_person, benchmarks/bench_body_parts.py).
    person_fill: float = 0.1
    # ... and then again with fill_unsure as the background threshold, except on pixels of the colour of the
    # person's own bare skin (FILL_SKIN_GUARD): the middle of a dark jacket seen from behind, where the parser is
    # sure of nothing but the mask is sure of the person (lip_dev all 35.46 -> 36.19, cihp_dev mIoU 33.42 -> 33.77;
    # 0: off; complete_person, benchmarks/bench_body_parts.py).
    fill_unsure: float = 0.02
    # A detection at least evidence_min_height of the image's height is dropped when the parser's mean person score
    # over its person mask is below min_person_evidence (a garment MoveNet took for a person; 0: off; _unconfirmed).
    min_person_evidence: float = 0.15
    evidence_min_height: float = 0.5
    # Person masks from BlazePose, completed inside the person's detected box where the parser's own person map
    # (the person phrase against no-object alone: the same for any prompts), times parser_person, beats them
    # (_with_parser_person; 0: BlazePose's alone). 0.6, the default since 2026-12-07: person masks on multi-person
    # photos gain (composites' recall, cihp_dev part AP^r, VITON), lip_dev's crowd photo loses to its unlabelled
    # bystanders (README, People; benchmarks/bench_people_reported.py, bench_body_parts.py).
    parser_person: float = 0.6
    # A piece of a garment (or hair, a hat, a bag) on the person's own pixels smaller than speck_share of that
    # label's largest piece there is unlabelled before holes are filled (person_fill.drop_specks, SPECK_SHARE;
    # 0: off; benchmarks/bench_body_parts.py).
    speck_share: float = SPECK_SHARE

    def __post_init__(self) -> None:
        if self.person_masks not in PERSON_MASK_SOURCES:
            raise ValueError(f"person_masks must be one of {PERSON_MASK_SOURCES}, got {self.person_masks!r}")
        if isinstance(self.competitors, bool):
            self.competitors = "all" if self.competitors else "off"
        if self.competitors not in COMPETITOR_MODES:
            raise ValueError(f"competitors must be one of {COMPETITOR_MODES}, got {self.competitors!r}")
        if self.fill_keypoints not in FILLED_KEYPOINTS:
            raise ValueError(f"fill_keypoints must be one of {tuple(FILLED_KEYPOINTS)}, got {self.fill_keypoints!r}")
        if self.body_parts not in BODY_PART_SOURCES:
            raise ValueError(f"body_parts must be one of {BODY_PART_SOURCES}, got {self.body_parts!r}")
        for name in ("fallback_score", "fallback_share", "fill_visibility", "min_person_evidence",
                     "evidence_min_height", "person_fill", "fill_unsure", "speck_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.limb_support <= 4.0:
            raise ValueError(f"limb_support must be in [0, 4] capsule radii, got {self.limb_support}")
        if not 0.0 <= self.parser_person <= 1.0:
            raise ValueError(f"parser_person must be in [0, 1], got {self.parser_person}")
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"margin must be in [0, 2], got {self.margin}")


def crop_regions(detections: PersonDetections, height: int, width: int, margin: float,
                 keypoint_threshold: float = 0.3) -> np.ndarray:
    """Integer crop (x0, y0, x1, y1) per detection: its box grown to its confident keypoints, widened by
    ``margin`` of its size on each side, clipped to the image (at least 8 px a side)."""
    boxes = detections.boxes.astype(np.float64).copy()
    if detections.keypoints is not None:
        for k, kps in enumerate(detections.keypoints):
            good = kps[kps[:, 2] >= keypoint_threshold]
            if len(good):
                boxes[k, 0] = min(boxes[k, 0], good[:, 0].min())
                boxes[k, 1] = min(boxes[k, 1], good[:, 1].min())
                boxes[k, 2] = max(boxes[k, 2], good[:, 0].max())
                boxes[k, 3] = max(boxes[k, 3], good[:, 1].max())
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    out = np.stack([boxes[:, 0] - margin * bw, boxes[:, 1] - margin * bh,
                    boxes[:, 2] + margin * bw, boxes[:, 3] + margin * bh], axis=-1)
    out = np.round(out).astype(np.int64)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    for k in range(len(out)):  # keep at least 8 px a side
        for lo, hi, size in ((0, 2, width), (1, 3, height)):
            if out[k, hi] - out[k, lo] < 8:
                centre = (out[k, lo] + out[k, hi]) // 2
                out[k, lo] = max(0, min(size - 8, centre - 4))
                out[k, hi] = min(size, out[k, lo] + 8)
    return out


CropPredictor = Callable[[Sequence[np.ndarray]], Sequence[torch.Tensor]]
"""Parses crops: (H, W, 3) uint8 arrays -> per crop, per-prompt pixel scores (P, H, W) in [0, 1]
(Mask2Former semantic inference: softmax(grounding logits) x sigmoid(mask logits), summed over queries). A
predictor may add one more map after the P (P + 1 in all): the parser's prompt-independent person map, which
``TopDownConfig.parser_person`` uses (``SpectrumImageProcessor.semantic_scores(alone=...)``)."""


@torch.no_grad()
def parse_top_down(image: np.ndarray, detections: PersonDetections, predict: CropPredictor, plan: ScoringPlan,
                   person_index: int, config: TopDownConfig, person_probs: torch.Tensor | None = None,
                   threshold: float = 0.3, background_threshold: float = 0.5
                   ) -> tuple[list[PersonInstance], np.ndarray]:
    """Persons with their parts, and the (H, W) semantic map (0 = background, else 1 + index into
    ``plan.prompts``), rendered from the parts. ``predict`` scores crops as ``plan`` says (one map per column of
    ``plan.prompts``, optionally one more: the parser's own person map, see :data:`CropPredictor`). ``person_probs``:
    (N, H, W) person probabilities per detection (BlazePose); None uses the parser's own person scores inside each
    crop."""
    prompts = plan.prompts
    h, w = image.shape[:2]
    if len(detections) == 0:
        return [], np.zeros((h, w), dtype=np.int32)
    regions = crop_regions(detections, h, w, config.margin, config.keypoint_threshold)
    crops = [np.ascontiguousarray(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in regions]
    outputs = predict(crops)
    # hidden guards only keep skin off garments, geometric parts are derived: neither competes for pixels
    silent = set(plan.aside) | set(plan.geometric)
    # all footwear competes as one column (shoes), sided by pose afterwards
    silent |= set(plan.feet)
    rival = len(prompts) - 1 if plan.pool and plan.contested is not None else None  # contests some columns only
    columns = [p for p in range(len(prompts))
               if p != person_index and p not in plan.hands and p not in silent and p != rival]
    # Everything per person is computed in its crop; only ownership is decided on the whole image.
    local_labels, local_scores, local_probs = [], [], []
    pooled = garment_groups(prompts, columns)
    roles = garment_roles(prompts, columns)
    # unsure parts extended (complete_person): garments only; the hidden competitors compete again too, so an
    # unsure "saree" never grows where they are surer
    body = set(plan.body) | set(plan.skin)
    garments = [i for i in columns if i not in body]
    competing = columns if rival is None else [*columns, rival]
    eyewear = [i for i in columns if vocabulary.canonical_name(prompts[i]) in EYEWEAR]
    # geometric parts are split from the person's free pixels after the crop's specks are dropped, so only the pass
    # on the owned pixels sees theirs
    speckled = speck_columns(plan, person_index)
    face = next((i for i, name in plan.body.items() if name == "face"), None)
    for k, ((x0, y0, x1, y1), scores) in enumerate(zip(regions, outputs)):
        own_person = None
        if scores.shape[0] == len(prompts) + 1:  # the parser's prompt-independent person map after the prompts
            own_person, scores = scores[-1], scores[:-1]
        if plan.shoes is not None:  # all footwear as one column (this crop's scores are its own: in place)
            for side in plan.feet:
                scores[plan.shoes] += scores[side]
        labels, best = SpectrumImageProcessor.label_map(scores, columns, background_threshold)
        pool_garments(labels, best, scores, pooled, columns, background_threshold)
        if rival is not None and plan.contested:
            contest(labels, best, scores, plan.contested, rival)
        # the person's keypoints for naming and geometry (reported ones are left as detected)
        keypoints = None if detections.keypoints is None else plausible_legs(detections.keypoints[k],
                                                                             config.keypoint_threshold)
        consistent_garments(labels, scores, roles)
        probs = (scores[person_index] if person_probs is None else person_probs[k, y0:y1, x0:x1].float().cpu())
        if config.min_person_evidence > 0 and _unconfirmed(scores[person_index], probs, detections.boxes[k], h,
                                                           config.min_person_evidence, config.evidence_min_height):
            local_labels.append(labels)
            local_scores.append(best)
            local_probs.append(torch.zeros_like(probs))  # owns nothing: not reported
            continue
        if person_probs is not None and own_person is not None and config.parser_person > 0:
            probs = _with_parser_person(probs, own_person, detections.boxes[k], (x0, y0), config.parser_person)
        probs = _own_hands(probs, keypoints, (x0, y0), config.keypoint_threshold)
        mask_probs = probs  # the person mask alone: the person is filled (complete_person) only where it is sure
        if keypoints is not None and config.limb_support > 0:
            band = torch.from_numpy(limb_band(tuple(probs.shape), keypoints, config.keypoint_threshold,
                                              config.limb_support, (x0, y0), seen=(probs > 0.5).numpy(),
                                              seen_share=LIMB_SEEN_SHARE))
            probs = torch.where(band, probs.clamp(min=LIMB_SUPPORT_PROB), probs)
        name_skin(labels, plan, keypoints, (x0, y0), config.keypoint_threshold)
        misnamed_hands(labels, plan, keypoints, (x0, y0), config.keypoint_threshold)
        colour = ColourImage(crops[k])  # the crop's chromaticity, computed once for the rules that read it
        grow_skin(labels, best, scores, colour, probs, plan, keypoints, (x0, y0), config.keypoint_threshold,
                   config.skin_colour, config.skin_radii, config.skin_over_guard, sure=mask_probs > 0.5)
        unsure_fill = 0 < config.fill_unsure < config.person_fill and bool(garments)
        # the person's skin-colour map, for the two rules that read it (none asks for it: not built)
        not_skin = not_skin_coloured(labels, plan, colour, mask_probs) \
            if unsure_fill or (roles.lower and keypoints is not None) else None
        hands_over_trousers(labels, plan, roles.lower, keypoints, (x0, y0), config.keypoint_threshold, not_skin)
        if config.person_fill > 0:  # after bare skin is grown: the garments take what the skin did not
            complete_person(labels, best, scores, competing, pooled, garments, mask_probs, config.person_fill)
            if unsure_fill:  # then, less sure, what is not of the skin's colour
                complete_person(labels, best, scores, competing, pooled, garments, mask_probs, config.fill_unsure,
                                 allowed=not_skin)
        side_footwear(labels, scores, plan, keypoints, (x0, y0), config.keypoint_threshold)
        eyewear_over_both_eyes(labels, eyewear, face, keypoints, (x0, y0), config.keypoint_threshold)
        for target, (source, wrist, elbow) in plan.hands.items():
            carve_hand(labels, source, target, keypoints, (x0, y0), wrist, elbow, config.keypoint_threshold)
        drop_specks(labels, probs, speckled, config.speck_share)
        fill_holes(labels, best, probs)
        split_segments(labels, best, probs, plan, keypoints, (x0, y0))
        local_labels.append(labels)
        local_scores.append(best)
        local_probs.append(probs)
    top = torch.zeros(h, w)
    owner = torch.full((h, w), -1, dtype=torch.long)
    behind = detections.is_behind
    front_free = None  # pixels no person in front claims: all a person found behind others may own
    for k in [*np.nonzero(~behind)[0], *np.nonzero(behind)[0]]:  # by descending detection score, front first:
        x0, y0, x1, y1 = regions[k]  # ties go to the first
        if behind[k] and front_free is None:
            front_free = top <= FRONT_CLAIM
        better = local_probs[k] > top[y0:y1, x0:x1]
        if behind[k]:
            better &= front_free[y0:y1, x0:x1]
        top[y0:y1, x0:x1][better] = local_probs[k][better]
        owner[y0:y1, x0:x1][better] = k
    owner[top <= 0.5] = -1
    for k, (x0, y0, x1, y1) in enumerate(regions):  # specks again on what each person owns: a neighbour's pixels
        # may cut a piece into parts
        drop_specks(local_labels[k], (owner[y0:y1, x0:x1] == k).float(), speckled, config.speck_share)
    candidates = [PersonCandidate(region=(int(x0), int(y0), int(x1), int(y1)), owned=owner[y0:y1, x0:x1] == k,
                                  labels=local_labels[k], scores=local_scores[k], score=float(detections.scores[k]),
                                  keypoints=None if detections.keypoints is None else detections.keypoints[k])
                  for k, (x0, y0, x1, y1) in enumerate(regions)]
    return assemble_persons(candidates, prompts, (h, w), threshold=threshold,
                            min_person_pixels=config.min_person_pixels, min_part_pixels=config.min_part_pixels,
                            hidden=plan.hidden)
