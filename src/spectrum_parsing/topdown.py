"""Top-down multi-person parsing: find the people first, parse each one in its own crop, paste back.

1. A :class:`~spectrum_parsing.persons.PersonDetector` (MoveNet-MultiPose by default) gives a box per person.
   When it finds nobody, the parser's own people on the whole image are kept if one is confident and large
   (``fallback_score``, ``fallback_share``): a photo that is mostly one person is never returned empty.
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

What is scored is planned per call (:func:`plan_prompts`): the user's prompts, plus hidden columns that are
never reported:

* **bare skin, named by pose**: the face, arm and leg prompts and a hidden ``skin`` prompt together find the bare
  skin; the person's keypoints then name it (:func:`spectrum_parsing.limbs.split_by_limbs`: face, left/right
  arm, left/right leg, the person's own side), so a raised fist the parser calls a face is an arm.
  ``body_parts="sides"`` (default) keeps the parser's limb type where it gave one (an arm stays an arm, a leg a
  leg; the pose gives the side), except that a leg whose knee MoveNet sees takes the skin the parser called arm
  past mid-thigh (on real photos the parser calls bare legs arms; on studio photos cut at the thighs, hands
  beside them stay arms, and so does a hand resting at the hip); ``"pose"`` lets the pose name everything;
  ``"model"`` keeps the parser's labels.
* **bare legs and arms grown by skin colour** (``skin_colour``, on by default): the parser finds faces on real
  photos far more often than bare legs and whole arms. The person's own pixels it left unlabelled, near a limb's
  skeleton and of the chromaticity of the skin it did find on that person and at least half as red
  (:mod:`.skin`), become that limb, unless a garment that covers it (:data:`LEG_GARMENTS`,
  :data:`ARM_GARMENTS`, scored hidden and kept out of the others' softmax) claims them — where that garment is
  mostly not of the skin's colour, pixels very close to it still grow (``skin_over_guard``: a shin in shadow
  the parser calls "pants"), and so do the pixels of a garment that does not cover that limb (a bare thigh the
  parser calls "upper clothes"); skin around a hand never grows into a leg, nor does a piece lying across the leg
  (:data:`ACROSS_LIMB`: the edge of a desk).
* **similar garments compete together**: the prompts of one coarse group (:data:`POOLED_GARMENTS`: upper-body
  clothes with outerwear; lower-body clothes; footwear) share the grounding softmax, so where their summed score
  beats every other column and the background, the best of them labels the pixel.
* **one lower-body garment per person**: when one of pants, jeans, shorts and skirt holds :data:`LOWER_VOTE` of
  the pixels any of them labels on the person, the others become it (trousers with a patch called skirt).
* **no dress over trousers**: one-piece garments over trousers (:data:`ONE_PIECE_VOTE`) become the best-scored
  upper-body garment.
* **holes filled**: an unlabelled piece of the person's own pixels enclosed by its labels, at most
  :data:`HOLE_SHARE` of the crop, takes the label most common around it (a patch of coat the parser was unsure of).
* **shoes sided by pose**: with "left shoe" / "right shoe" asked for, all footwear is scored as one column (a
  hidden ``shoes`` summed with the sided ones: similar phrases share the grounding softmax, so each alone rarely
  beats the background) and each shoe takes the side of the seen ankle it is at (:data:`SHOE_REACH`); footwear
  at no seen ankle is not reported.
* **hands** carved from the arms around and beyond the wrist (:data:`DERIVED_PARTS`).
* **geometric parts** (:data:`GEOMETRIC_PARTS`: PASCAL-Person-Part's head, torso, upper/lower arms and legs,
  clothing included) are not scored: the person's pixels no other prompt claims are partitioned by its keypoints
  (:func:`spectrum_parsing.limbs.split_by_segments`).
* **competitors**: every known category of another coarse group than the user's prompts (from the model's prompt
  table), pooled into one hidden column (their pixel-wise best, upper-body clothes and outerwear scored as one
  sum, lower-body clothes as another: :attr:`ScoringPlan.pool_groups`); a pixel goes to a contested prompt only if
  it beats them, so a prompt for something nobody wears ("saree" on a photo of suits) stays empty, unless the
  competitors are barely surer over the whole region the prompt claims (:data:`CONTEST_REGION_RATIO`).
  ``competitors="novel"`` (the default) contests only the phrases the model never saw as a label
  (:func:`novel_prompts`: synonyms, free phrases, unknown words), which it grounds by text similarity alone;
  ``"all"`` contests every prompt (costs part AP where the prompts are right); ``"off"`` none.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from .limbs import (
    SEGMENTS,
    body_axis,
    body_scale,
    hand_zone,
    head_span,
    limb_band,
    plausible_legs,
    region_capsules,
    split_by_limbs,
    split_by_segments,
)
from .persons import PersonDetections
from .processor import PersonCandidate, SpectrumImageProcessor, assemble_persons
from .results import PersonInstance
from .skin import skin_colour_distance
from .vocab import categories as vocabulary

__all__ = ["BODY_PART_SOURCES", "DERIVED_PARTS", "FILLED_KEYPOINTS", "PERSON_MASK_SOURCES", "ScoringPlan",
           "GarmentRoles", "TopDownConfig", "competitor_phrases", "consistent_garments", "crop_regions",
           "derived_prompts", "fill_keypoints", "garment_groups", "garment_roles", "novel_prompts", "parse_top_down",
           "plan_prompts"]

POSE_REGIONS = ("face", "left arm", "right arm", "left leg", "right leg")
"""Body parts named by pose from bare skin (the regions of :mod:`.limbs` that LIP labels)."""
BODY_PART_SOURCES = ("pose", "sides", "model")
GEOMETRIC_PARTS: dict[str, tuple[str, ...]] = {
    "head": ("head",), "torso": ("torso",),
    **{f"{part} {limb}": (f"left {part} {limb}", f"right {part} {limb}")
       for part in ("upper", "lower") for limb in ("arm", "leg")},
    **{f"{side} {part} {limb}": (f"{side} {part} {limb}",)
       for side in ("left", "right") for part in ("upper", "lower") for limb in ("arm", "leg")},
}
"""Parts that are regions of the whole person, clothing included (PASCAL-Person-Part's), by canonical name: the
body segments of :func:`spectrum_parsing.limbs.split_by_segments` each covers. Top-down parsing derives them from
the person's pixels and keypoints; they take the person's pixels no other prompt claims."""
GROWN_REGIONS = ("left leg", "right leg", "left arm", "right arm")
"""Body parts that grow by skin colour (``TopDownConfig.skin_colour``): the parser finds faces on real photos,
but misses bare legs and parts of arms."""
LEG_GARMENTS = ("pants", "shorts", "skirt", "dress", "socks", "shoes")
"""What covers legs: skin never grows into a leg where one of these scores :data:`GUARD_SCORE` or more."""
ARM_GARMENTS = ("upper clothes", "shirt", "t-shirt", "sweater", "jacket", "coat", "dress", "gloves")
"""What covers arms: skin never grows into an arm where one of these scores :data:`GUARD_SCORE` or more."""
COVERING = {"leg": LEG_GARMENTS, "arm": ARM_GARMENTS}
GUARD_SCORE = 0.4
SURROUNDINGS_SHARE = 0.5
"""A piece of the skin's colour more than this share off the person is the surroundings, not skin
(:func:`_skin_coloured_surroundings`)."""
OVER_GUARD_SHARE = 0.5
"""Skin overrides a garment's guard (``TopDownConfig.skin_over_guard``) only for a limb whose guarded pixels on the
person are at most this share of the skin's colour: more, and the garment itself has the skin's colour (a beige
sleeve), or the photo has no colour to go by (on lip_dev's colour photos the share is at most 0.32; 0.89 / 0.74
for the arms / legs on its black-and-white one)."""
KNEES = {"left leg": 13, "right leg": 14}
"""COCO keypoint of each leg's knee: with it seen, the pose's leg takes the parser's "arm" skin in sides naming."""
HIPS = {"left leg": 11, "right leg": 12}
THIGH_START = 0.5
"""... but only past this share of the thigh (hip to knee): a hand resting at the hip stays an arm."""
ACROSS_LIMB = 2.0
"""A piece of skin grown into a leg reaching more than this many times as far across the leg as along it is
dropped: the edge of a desk in front of the legs has the colour of skin, a shin lies along the leg."""
MIN_GROWN_PIECE = 0.02
"""Skin grown by colour comes in connected pieces of at least this share of the person's size squared."""
HAND_SHARE = 0.6
"""A piece labelled as one of :data:`MISNAMED_HANDS` with this share of it in a hand's zone is that hand."""
MISNAMED_HANDS = ("hair",)
"""What the parser calls a hand it does not recognise (a raised fist against the sky: hair)."""
FACE_REACH = 3.0
"""Bare skin farther than this many face radii from the person's head keypoints is not its face (a neighbour's
raised fist inside the crop, which the parser calls a face, is left unlabelled rather than named face)."""
FACE_SPANS = 2.0
"""Nor is bare skin farther than this many head spans (the widest extent of the confident nose, eyes and ears)
from the nearest of them: true faces lie within 2 on `lip_dev` and 1.3 on VITON (MoveNet keypoints)."""
DETACHED_SPANS = 0.5
"""A connected piece of skin the pose gives the face (the parser's own face pixels cut out) none of whose pixels comes
within this many head spans of the person's confident nose, eyes or ears is not its face (a fist raised above the
head: :func:`_detached_from_head`); 0 turns the rule off."""
DETACHED_JOINTS = 0.15
"""Such a piece takes the limb nearest to it by keypoints at least this confident (a raised arm's elbow and wrist,
against the sky or a wall, are often just below the naming threshold); none near: it is left unlabelled."""
PARSER_ARM_SHARE = 0.2
"""A piece of skin the pose gives the face (the parser's own face pixels cut out) is an arm when the parser called
at least this share of it arm (:func:`_arms_the_parser_saw`)."""
SKIN_COMPONENT_MAJORITY = 0.6
"""A connected piece of bare skin goes whole to the region claiming this share of it (as the label engine)."""

FOOTWEAR_SIDES = {"left shoe": "left leg", "right shoe": "right leg"}
"""Sided footwear and the leg whose foot wears it: the parser finds shoes far better than it tells their side
(LIP's left/right shoes), so shoes are found as shoes (a hidden ``shoes`` prompt beside the sided ones) and sided
by the person's pose."""

ANKLES = {"left leg": 15, "right leg": 16}
SHOE_REACH = 0.4
"""A shoe is sided only within this many body sizes (:func:`~spectrum_parsing.limbs.body_scale`) of a seen ankle:
footwear far from any seen foot (a watermark on the trousers of a person whose feet the frame cuts) stays unnamed."""

DERIVED_PARTS: dict[str, tuple[str, int, int]] = {
    "left hand": ("left arm", 9, 7),  # (parsed part it is carved from, wrist keypoint, elbow keypoint)
    "right hand": ("right arm", 10, 8),
}
"""Parts no training set labels (LIP and CCP include hands in the arms) that top-down parsing derives from a
parsed part and the person's keypoints: a hand is the arm's pixels around and beyond the wrist, within 0.9
forearm lengths of it (MoveNet keypoints, COCO order; "left" is the person's own side, as in LIP)."""


def derived_prompts(prompts: Sequence[str]) -> tuple[list[str], dict[int, tuple[int, int, int]], set[int]]:
    """The prompts to score for ``prompts`` with derived parts: the same list, plus the source parts not asked
    for (appended); ``derived``: derived prompt index -> (source index, wrist keypoint, elbow keypoint);
    ``hidden``: indices of the appended sources, scored only to carve from and never reported."""
    scored = list(prompts)
    derived: dict[int, tuple[int, int, int]] = {}
    hidden: set[int] = set()
    for i, prompt in enumerate(prompts):
        rule = DERIVED_PARTS.get(prompt.strip().lower())
        if rule is None:
            continue
        source, wrist, elbow = rule
        if source not in scored:
            scored.append(source)
            hidden.add(len(scored) - 1)
        derived[i] = (scored.index(source), wrist, elbow)
    return scored, derived, hidden


@dataclass
class ScoringPlan:
    """What a top-down parse scores. ``prompts``: every scored column (the caller's prompts first, in order, then
    hidden helpers, then — when ``pool`` is not empty — one column holding the best of the ``pool`` phrases).
    ``hands``: derived hand index -> (arm index, wrist, elbow); ``body``: prompt index -> pose region;
    ``skin``: indices whose pixels are bare skin; ``hidden``: indices never reported; ``covers``: per grown limb
    ("leg", "arm"), the garments that keep skin from growing into it (:data:`COVERING`; the hidden ones take no
    part in labelling); ``geometric``: prompt index -> the body segments it covers (:data:`GEOMETRIC_PARTS`);
    ``feet``: sided footwear index -> its leg (:data:`FOOTWEAR_SIDES`); ``shoes``: the ``shoes`` column (hidden
    unless asked for) that scores all footwear together (the sum of the footwear columns: similar phrases share the
    grounding softmax), whose pixels the pose then sides. ``contested``: the columns the pooled competitors may
    take pixels from (None: every column, the pool competing like a prompt)."""

    prompts: list[str]
    hands: dict[int, tuple[int, int, int]]
    body: dict[int, str]
    skin: list[int]
    hidden: set[int]
    pool: list[str]
    sides_only: bool = False
    geometric: dict[int, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    covers: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    feet: dict[int, str] = dataclasses.field(default_factory=dict)
    shoes: int | None = None
    contested: list[int] | None = None

    @property
    def scored(self) -> list[str]:
        """The phrases the model scores: every column but the pooled one, then the pooled phrases."""
        return [*(self.prompts[:-1] if self.pool else self.prompts), *self.pool]

    @property
    def guards(self) -> list[int]:
        """Indices into :attr:`scored` of every garment that guards a limb (:attr:`covers`)."""
        return sorted({i for indices in self.covers.values() for i in indices})

    @property
    def aside(self) -> list[int]:
        """Indices into :attr:`scored` that change no other column's score: the hidden guards (but the pooled
        footwear column, which competes)."""
        return sorted((set(self.guards) & self.hidden) - {self.shoes})

    @property
    def pooled(self) -> list[int]:
        """Indices into :attr:`scored` pooled into the last column."""
        start = len(self.prompts) - 1
        return list(range(start, start + len(self.pool))) if self.pool else []

    @property
    def pool_groups(self) -> list[list[int]]:
        """:attr:`pooled` grouped as :data:`POOLED_GARMENTS` says (the rest one by one): the pooled column is the
        pixel-wise best of each group's summed scores, so a jacket whose score "coat", "jacket" and "blazer" split
        still beats a synonym ("saree") the parser half-believes there."""
        groups: dict[object, list[int]] = {}
        for index, phrase in zip(self.pooled, self.pool):
            key = next((group for group in POOLED_GARMENTS if _coarse(phrase) in group), index)
            groups.setdefault(key, []).append(index)
        return list(groups.values())


def competitor_phrases(prompts: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """The ``candidates`` (canonical category names) that may compete with ``prompts``: those whose coarse group
    no prompt shares (a prompt's category is found in its words: "red dress" is a dress). Nothing competes with a
    prompt of unknown category in its own group, so an unknown phrase competes with everything else."""
    groups = set()
    for prompt in prompts:
        category = vocabulary.phrase_category(prompt)
        if category is not None:
            groups.add(vocabulary.BY_NAME[category].coarse)
    taken = {vocabulary.canonical_name(p) for p in prompts}
    return [c for c in candidates if c in vocabulary.BY_NAME and c != "person" and c not in taken
            and vocabulary.BY_NAME[c].coarse and vocabulary.BY_NAME[c].coarse not in groups]


def novel_prompts(prompts: Sequence[str]) -> list[int]:
    """Indices of the ``prompts`` that are not a category's own name: a synonym such as "saree" for dress, a free
    phrase such as "red dress", an unknown word. The model never saw them as labels and grounds them by text
    similarity alone, so they fire on whatever looks alike (a long jacket is the nearest thing to a saree).
    Categories withheld from training are names and are not included: contesting them cost zero-shot quality
    (CCP val withheld mIoU 7.0 -> 5.8, ``benchmarks/bench_quality.py``) for no measured gain."""
    return [i for i, p in enumerate(prompts) if not vocabulary.is_category_name(p)]


def plan_prompts(prompts: Sequence[str], body_parts: str = "sides", competitors: Sequence[str] = (),
                 grow_skin: bool = False, contested: Sequence[int] | None = None) -> ScoringPlan:
    """The :class:`ScoringPlan` of ``prompts`` (the person prompt among them): hands carved from arms, bare-skin
    parts named by pose (``body_parts`` ``"sides"`` or ``"pose"``, adding a hidden ``skin`` prompt), legs grown by
    skin colour (``grow_skin``: guarded by :data:`LEG_GARMENTS`, hidden where not asked for), ``competitors``
    pooled last, taking pixels from the ``contested`` prompt indices only (None: from every column)."""
    scored, hands, hidden = derived_prompts(prompts)
    geometric = {i: GEOMETRIC_PARTS[name] for i, name in enumerate(vocabulary.canonical_name(p) for p in scored)
                 if name in GEOMETRIC_PARTS}
    body: dict[int, str] = {}
    skin: list[int] = []
    if body_parts in ("pose", "sides"):
        for i, prompt in enumerate(scored):
            name = vocabulary.canonical_name(prompt)
            if name in POSE_REGIONS and i not in hands:
                body[i] = name
        if body:
            if "skin" not in scored:
                scored.append("skin")
                hidden.add(len(scored) - 1)
            skin = [*body, scored.index("skin")]
    covers: dict[str, list[int]] = {}
    grown = {name.split()[-1] for name in body.values() if name in GROWN_REGIONS}
    if grow_skin and grown:
        names = [vocabulary.canonical_name(p) for p in scored]
        for limb in sorted(grown):
            covers[limb] = []
            for garment in COVERING[limb]:
                if garment not in names:
                    scored.append(garment)
                    names.append(garment)
                    hidden.add(len(scored) - 1)
                covers[limb].append(names.index(garment))
    feet = {i: FOOTWEAR_SIDES[name] for i, name in enumerate(vocabulary.canonical_name(p) for p in scored)
            if name in FOOTWEAR_SIDES}
    shoes = None
    if feet and body_parts in ("pose", "sides"):
        names = [vocabulary.canonical_name(p) for p in scored]
        if "shoes" not in names:
            scored.append("shoes")
            hidden.add(len(scored) - 1)
            names.append("shoes")
        shoes = names.index("shoes")
    else:
        feet = {}
    pool = list(competitors)
    if pool:
        scored.append("(competitors)")
        hidden.add(len(scored) - 1)
    return ScoringPlan(scored, hands, body, skin, hidden, pool, sides_only=body_parts == "sides",
                       geometric=geometric, covers=covers, feet=feet, shoes=shoes,
                       contested=None if contested is None else sorted(contested))


UPPER_GARMENT_GROUPS = ("upper-body clothes", "outerwear")
POOLED_GARMENTS: tuple[tuple[str, ...], ...] = (UPPER_GARMENT_GROUPS, ("lower-body clothes",), ("footwear",))
"""Coarse groups of garments whose prompts compete together against the rest: a shirt's score is split between
"shirt", "top" and "jacket" (they share the grounding softmax), so each alone may lose to the background where
together they are sure (CCP val coarse 54.2 -> 55.1, lip_dev all 29.3 -> 29.7; pooling all clothing, or
one-piece garments too, cost CCP fine or lip_dev). Footwear since 2026-12-07: a boot's score split between "shoes",
"boots" and "sneakers" lost to the lower-body sum, and CCP's boots became jeans (CCP val fine 14.75 -> 15.08,
coarse 55.72 -> 55.93; lip_dev and cihp_dev unchanged: their sided shoes are one column already; small
accessories too cost CCP 15.08 -> 14.73 and cihp_dev mIoU 31.2 -> 29.1, bags added nothing to fine)."""


SUBGROUP_CHOICE = True
"""In a pooled group of two coarse categories (upper-body clothes with outerwear), the label is the best phrase of
the category whose phrases together score more, not the best phrase overall: "coat" alone outscored each of "t-shirt",
"shirt" and "blouse" on a third of CCP's tops, whose score those split (CCP val coarse 55.93 -> 56.71, fine 15.08 ->
15.22; lip_dev and cihp_dev unchanged: one phrase per category there). On the bundled group photo (default
prompts) the coat blotches on a pink sweater become its top, and a streak of a teal jacket becomes "upper clothes";
asking the sums to differ by 1.25x or 1.5x shrank both alike (CCP 56.31 / 56.20)."""


def _coarse(phrase: str) -> str | None:
    """The coarse group of ``phrase``'s canonical category (None for a phrase of no known category)."""
    category = vocabulary.BY_NAME.get(vocabulary.canonical_name(phrase))
    return None if category is None else category.coarse


def garment_groups(prompts: Sequence[str], columns: Sequence[int]) -> list[list[list[int]]]:
    """The ``columns`` of ``prompts`` grouped by :data:`POOLED_GARMENTS` (groups of two or more columns), each group
    as its sub-groups, one per coarse category in it (upper-body clothes, outerwear)."""
    groups = []
    for coarse in POOLED_GARMENTS:
        subs = [sub for sub in ([c for c in columns if _coarse(prompts[c]) == name] for name in coarse) if sub]
        if sum(map(len, subs)) > 1:
            groups.append(subs)
    return groups


CONTEST_REGION_RATIO = 1.3
"""A connected region a contested prompt claims is kept whole when the pooled competitors' mean score there is at
most this many times the prompt's: the parser is about as sure of both, as on a worn dress, whose skirt also looks
like a coat's tail. Elsewhere only the pixels where the prompt beats the competitors stay its. On the bundled
group photo, where nobody wears a dress, every region "saree", "gown" or "sari" claims has a ratio of at least
1.38; on CCP val's dresses keeping such regions whole lifts "gown" / "saree" IoU from 54.9 / 56.8 (pixel by pixel)
to 62.8 / 64.7 (``benchmarks/bench_body_parts.py``)."""


def contest(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor, contested: Sequence[int],
            rival: int) -> None:
    """In crop-local ``labels``: the pixels of a ``contested`` column that the pooled competitors (column
    ``rival``, hidden) score higher go to them (in place), except in regions where the competitors are on average
    at most :data:`CONTEST_REGION_RATIO` times surer."""
    lost = torch.zeros(labels.shape, dtype=torch.bool)
    for c in contested:
        regions, count = ndimage.label((labels == c + 1).numpy())
        if count == 0:
            continue
        index = np.arange(1, count + 1)
        ratio = (ndimage.mean(scores[rival].numpy(), regions, index)
                 / np.maximum(ndimage.mean(scores[c].numpy(), regions, index), 1e-6))
        judged = torch.from_numpy(np.isin(regions, index[ratio > CONTEST_REGION_RATIO]))
        lost |= judged & (scores[rival] > scores[c])
    labels[lost] = rival + 1
    best[lost] = scores[rival][lost]


def _best_of(scores: torch.Tensor, columns: Sequence[int]) -> torch.Tensor:
    """The pixel-wise best of the ``columns`` of ``scores`` (zeros for none), without a (P, H, W) copy."""
    out = torch.zeros(scores.shape[1:], dtype=scores.dtype)
    for c in columns:
        torch.maximum(out, scores[c], out=out)
    return out


def _pool(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor, groups: Sequence[Sequence[Sequence[int]]],
          columns: Sequence[int], background_threshold: float) -> None:
    """In crop-local ``labels`` (and their scores ``best``), group by group (:func:`garment_groups`): where a group's
    columns together (scores summed) beat every other column and the background, the best-scored column of its
    sub-group with the highest summed score (in place): whether a top or an outer layer is decided by all the
    phrases of each, as whether a garment is there at all is (:data:`SUBGROUP_CHOICE`)."""
    if not groups:
        return
    grouped = {c for group in groups for sub in group for c in sub}
    alone = _best_of(scores, [c for c in columns if c not in grouped])  # shared by every group's rival
    tops: list[torch.Tensor] = []
    kinds: list[torch.Tensor] = []
    totals: list[torch.Tensor] = []
    for group in groups:
        members = [c for sub in group for c in sub]
        # the processor's label map with no background: each pixel's best column (the first on a tie) and its score
        if len(group) == 1 or not SUBGROUP_CHOICE:
            kind, top = SpectrumImageProcessor.label_map(scores, members, -math.inf)
        else:
            kind, top = SpectrumImageProcessor.label_map(scores, group[0], -math.inf)
            lead = _sum_of(scores, group[0])
            for sub in group[1:]:
                sub_total = _sum_of(scores, sub)
                sub_kind, sub_top = SpectrumImageProcessor.label_map(scores, sub, -math.inf)
                better = sub_total > lead  # the sub-groups' running best sum (the first on a tie)
                top = torch.where(better, sub_top, top)
                kind = torch.where(better, sub_kind, kind)
                lead = torch.maximum(lead, sub_total)
        tops.append(top)
        kinds.append(kind)
        totals.append(_sum_of(scores, members))
    for g in range(len(groups)):
        rival = alone.clone()
        for h, top in enumerate(tops):
            if h != g:
                torch.maximum(rival, top.clamp(min=0.0), out=rival)
        win = (totals[g] >= background_threshold) & (totals[g] > rival)
        labels[win] = kinds[g][win]
        best[win] = torch.maximum(best[win], tops[g][win])


def _sum_of(scores: torch.Tensor, columns: Sequence[int]) -> torch.Tensor:
    """The pixel-wise sum of the ``columns`` of ``scores`` (zeros for none)."""
    out = torch.zeros(scores.shape[1:], dtype=scores.dtype)
    for c in columns:
        out += scores[c]
    return out


def _name_skin(labels: torch.Tensor, plan: ScoringPlan, keypoints: np.ndarray | None, origin: tuple[int, int],
               threshold: float) -> None:
    """In crop-local ``labels``, give the bare-skin pixels (any of ``plan.skin``) the body part the person's
    keypoints place them in (in place); pixels no part claims keep their label."""
    if keypoints is None or not plan.body:
        return
    mask = torch.zeros(labels.shape, dtype=torch.bool)
    for i in plan.skin:
        mask |= labels == i + 1
    if not bool(mask.any()):
        return
    regions = list(dict.fromkeys(plan.body.values()))
    target = {name: i for i, name in plan.body.items()}
    split = torch.from_numpy(split_by_limbs(mask.numpy(), keypoints, threshold=threshold, regions=regions,
                                            origin=origin, component_majority=SKIN_COMPONENT_MAJORITY,
                                            reach={"face": FACE_REACH}))
    before = labels.clone()
    face = [i for i, name in plan.body.items() if name == "face"]
    if face:
        was_face = split == regions.index("face")
        _beyond_head(split, regions.index("face"), len(regions), keypoints, origin, threshold)
        _detached_from_head(split, before, plan, regions, keypoints, origin, threshold)
        far = was_face & (split == len(regions))
        if bool(far.any()):  # the piece vote gave the face a whole piece of skin; beyond the head's reach each
            # pixel takes the limb nearest to it again (a bare upper arm joined to the face by a raised forearm)
            # (nearest capsule per pixel, no vote: the far pixels alone give them the same regions)
            unvoted = torch.from_numpy(split_by_limbs(far.numpy(), keypoints, threshold=threshold, regions=regions,
                                                      origin=origin, reach={"face": FACE_REACH}).astype(np.int64))
            back = far & (unvoted != regions.index("face")) & (unvoted != len(regions))
            split[back] = unvoted[back].to(split.dtype)
    if face and (keypoints[:5, 2] >= threshold).any():  # a "face" far from this person's head is not its face
        labels[(split == len(regions)) & (before == face[0] + 1)] = 0
    if face and plan.sides_only:
        _arms_the_parser_saw(split, before, plan, regions, keypoints, origin, threshold)
    for k, name in enumerate(regions):
        claimed = split == k
        if plan.sides_only:  # the parser's arm or leg stays that limb; the pose gives its side
            kind = name.split()[-1]
            # ... except that a leg whose knee is seen takes the skin the parser called arm (on real photos it
            # calls bare legs arms; on studio photos cut at the thighs, the hands beside them stay arms)
            takes_arms = name in KNEES and keypoints[KNEES[name], 2] >= threshold
            past_thigh = _past_thigh(tuple(labels.shape), keypoints, name, origin, threshold) if takes_arms \
                else None
            for i, other in plan.body.items():
                if other == "face" or other.split()[-1] == kind:
                    continue
                if takes_arms and other.endswith("arm"):
                    claimed &= (before != i + 1) | past_thigh
                else:
                    claimed &= before != i + 1
        labels[claimed] = target[name] + 1


def _detached_from_head(split: torch.Tensor, before: torch.Tensor, plan: ScoringPlan, regions: list[str],
                        keypoints: np.ndarray, origin: tuple[int, int], threshold: float) -> None:
    """In ``split`` (:func:`split_by_limbs`' crop-local indices into ``regions``; in place): each connected piece of
    the face region that the parser did not call face (``before``: its labels; ``plan.body`` names its face and
    arms), that does not touch the parser's face pixels nor is at least :data:`PARSER_ARM_SHARE` the parser's arm
    (:func:`_arms_the_parser_saw` names those), and that comes nowhere within :data:`DETACHED_SPANS` head spans of
    the person's confident head keypoints takes the limb nearest to it by keypoints of :data:`DETACHED_JOINTS` or
    more (pieces under :data:`MIN_GROWN_PIECE`: none), else no region. The pose gives the face whatever skin lies
    within its reach: on the bundled two-dancers photo a fist raised a head span above the head, its elbow and
    wrist scored 0.23, was "face"."""
    span = head_span(keypoints, threshold)
    if DETACHED_SPANS <= 0 or span is None:
        return
    face_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name == "face"])
    arm_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name.endswith("arm")])
    pieces, count = ndimage.label(((split == regions.index("face")) & ~torch.isin(before, face_ids)).numpy())
    if count == 0:
        return
    ys, xs = np.nonzero(pieces)
    near = _head_distance(ys, xs, keypoints, origin, threshold)
    closest = np.asarray(ndimage.minimum(near, pieces[ys, xs], index=np.arange(1, count + 1)))
    # a piece touching the face the parser saw is part of it (a neck or hairline between its face pixels)
    seen = ndimage.binary_dilation(torch.isin(before, face_ids).numpy(), structure=np.ones((3, 3), bool))
    touching = np.unique(pieces[seen & (pieces > 0)])
    # ... and a piece the parser mostly saw as an arm is left to _arms_the_parser_saw
    said_arm = np.bincount(pieces.ravel(), weights=torch.isin(before, arm_ids).numpy().ravel().astype(np.float64),
                           minlength=count + 1)[1:]
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
    far = np.nonzero((closest > DETACHED_SPANS * span) & (said_arm < PARSER_ARM_SHARE * sizes))[0] + 1
    far = far[~np.isin(far, touching)]
    detached = np.isin(pieces, far)
    if not detached.any():
        return
    # a speck (a bare chest showing between a shirt's edges) is named nothing: a limb part of a few pixels is noise
    split[torch.from_numpy(detached)] = len(regions)  # no region, unless a limb is near
    scale = body_scale(keypoints, threshold) or 0.0
    named = detached & ~np.isin(pieces, far[sizes[far - 1] < MIN_GROWN_PIECE * scale**2])  # specks: nothing
    limbs = [name for name in regions if name != "face"]
    if limbs and named.any():
        again = split_by_limbs(named, keypoints, threshold=min(DETACHED_JOINTS, threshold), regions=limbs,
                               origin=origin)
        for k, name in enumerate(limbs):
            split[torch.from_numpy(again == k)] = regions.index(name)


def _arms_the_parser_saw(split: torch.Tensor, before: torch.Tensor, plan: ScoringPlan, regions: list[str],
                         keypoints: np.ndarray, origin: tuple[int, int], threshold: float) -> None:
    """In ``split`` (in place): a connected piece of what the pose gives the face and the parser did not call face,
    where the parser itself saw an arm (:data:`PARSER_ARM_SHARE` of its pixels called arm), goes whole to the arm
    the pose without the face gives most of it (none: it stays face). A forearm raised behind the
    head, its wrist hidden, lies within the head's reach, and the pose alone names it face (the bundled selfie:
    its hand touches the head, so the piece is cut from the face by the parser's own face pixels)."""
    face_region = regions.index("face")
    limbs = [name for name in regions if name != "face"]
    arms = [k for k, name in enumerate(limbs) if name.endswith("arm")]
    if not arms:  # regions come from plan.body: no arm region, no arm label either
        return
    face_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name == "face"])
    arm_ids = torch.tensor([i + 1 for i, name in plan.body.items() if name.endswith("arm")])
    pieces, count = ndimage.label(((split == face_region) & ~torch.isin(before, face_ids)).numpy())
    if count == 0:
        return
    flat = torch.from_numpy(pieces.ravel())
    sizes = torch.bincount(flat, minlength=count + 1).double()
    said_arm = torch.bincount(flat, weights=torch.isin(before, arm_ids).ravel().double(), minlength=count + 1)
    chosen = np.nonzero((said_arm[1:] >= PARSER_ARM_SHARE * sizes[1:]).numpy())[0] + 1
    if not len(chosen):
        return
    again = split_by_limbs(np.isin(pieces, chosen), keypoints, threshold=threshold, regions=limbs, origin=origin)
    for piece in chosen:
        inside = pieces == piece
        votes = [int((again[inside] == k).sum()) for k in arms]
        if max(votes) > 0:  # the whole piece to the arm the pose gives most of it (a hand behind the head too)
            split[torch.from_numpy(inside)] = regions.index(limbs[arms[int(np.argmax(votes))]])


HAND_OVER_TROUSERS = 0.1
"""A piece of a person's skin named leg is a hand hanging over its trousers when the person's lower-body garment
(:data:`LOWER_GARMENTS`) continues further down the body than the piece, by more than this share of the body's size
(:func:`~spectrum_parsing.limbs.body_scale`), in most (:data:`OVER_TROUSERS_SHARE`) of the piece's columns across
the body that the garment is in, and the garment is in most of them: a bare leg shows below shorts or a skirt,
never above the garment's lower end (0 turns the rule off)."""
OVER_TROUSERS_SHARE = 0.5
WRIST_UNSEEN = 0.15
"""A wrist scored below this is unseen (:func:`_hands_over_trousers`): the lowered wrists MoveNet misses behind the
group photo's desk score 0.06-0.10; at 0.3, roughly where the hand is."""


def _hands_over_trousers(labels: torch.Tensor, plan: ScoringPlan, lower: Sequence[int],
                         keypoints: np.ndarray | None, origin: tuple[int, int], threshold: float,
                         not_skin: torch.Tensor | None = None) -> None:
    """In crop-local ``labels`` (in place): each connected piece labelled a leg that lies over the person's
    lower-body garment (``lower`` columns; see :data:`HAND_OVER_TROUSERS`) becomes the arm of the same side (or
    unlabelled when that arm is not asked for), where the pose does not see that arm's wrist (:data:`WRIST_UNSEEN`:
    a wrist it is even half sure of places the hand, and a knee above bare shins the parser calls "pants" stays a
    leg). The bundled group photo: people stand behind a desk, the pose guesses their knees at hand height and
    misses their lowered wrists, and the hands over their trousers were named legs. Measured column by column
    across the body (a knee bent forward in a lunge lies higher than the hem of the other leg's shorts).
    ``not_skin``: the pixels not of the person's skin colour (:func:`_not_skin_coloured`); only there does the
    garment count (bare shins the parser calls "pants" are no trousers below a knee)."""
    if keypoints is None or not lower or HAND_OVER_TROUSERS <= 0:
        return
    wrists = {"left leg": 9, "right leg": 10}  # the wrist of the arm on the leg's side
    legs = {name: i for i, name in plan.body.items() if name in KNEES and keypoints[wrists[name], 2] < WRIST_UNSEEN}
    arms = {name: i for i, name in plan.body.items() if name in ("left arm", "right arm")}
    garment = torch.isin(labels, torch.tensor([i + 1 for i in lower]))
    garment = (garment if not_skin is None else garment & not_skin).numpy()
    scale = body_scale(keypoints, threshold)
    if not legs or scale is None or not garment.any():
        return
    axis = body_axis(keypoints, threshold)
    ys, xs = np.mgrid[0:labels.shape[0], 0:labels.shape[1]]
    down = (xs + origin[0]) * axis[0] + (ys + origin[1]) * axis[1]  # how far down the body
    across = np.rint(xs * -axis[1] + ys * axis[0]).astype(np.int64)  # the column across the body
    across -= across.min()
    width = int(across.max()) + 1
    garment_end = np.full(width, -np.inf)
    np.maximum.at(garment_end, across[garment], down[garment])  # how far down the garment reaches, per column
    for name, index in legs.items():
        pieces, count = ndimage.label((labels == index + 1).numpy())
        if count == 0:
            continue
        inside = pieces > 0
        key = (pieces[inside] - 1) * width + across[inside]  # (piece, column)
        piece_end = np.full(count * width, -np.inf)
        np.maximum.at(piece_end, key, down[inside])
        piece_end = piece_end.reshape(count, width)
        spanned = np.isfinite(piece_end)
        dressed = spanned & np.isfinite(garment_end)[None]  # the piece's columns the garment is in at all
        over = dressed & (garment_end[None] > piece_end + HAND_OVER_TROUSERS * scale)
        share = OVER_TROUSERS_SHARE
        hands = np.nonzero((over.sum(1) >= share * dressed.sum(1)) & (dressed.sum(1) >= share * spanned.sum(1))
                           & (over.sum(1) > 0))[0] + 1
        if len(hands):
            arm = arms.get(name.replace("leg", "arm"))
            labels[torch.from_numpy(np.isin(pieces, hands))] = 0 if arm is None else arm + 1


def _past_thigh(shape: tuple[int, int], keypoints: np.ndarray, leg: str, origin: tuple[int, int],
                threshold: float) -> torch.Tensor:
    """Bool crop-local mask: pixels past :data:`THIGH_START` of the way from the leg's hip to its knee (projected
    on that line); all True when the hip is unsure (the thigh's start is unknown)."""
    hip, knee = keypoints[HIPS[leg]], keypoints[KNEES[leg]]
    if hip[2] < threshold:
        return torch.ones(shape, dtype=torch.bool)
    axis = knee[:2] - hip[:2]
    length2 = float(axis @ axis)
    if length2 < 1.0:
        return torch.ones(shape, dtype=torch.bool)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    t = ((xs + origin[0] - hip[0]) * axis[0] + (ys + origin[1] - hip[1]) * axis[1]) / length2
    return torch.from_numpy(t >= THIGH_START)


def _side_footwear(labels: torch.Tensor, scores: torch.Tensor, plan: ScoringPlan, keypoints: np.ndarray | None,
                   origin: tuple[int, int], threshold: float) -> None:
    """In crop-local ``labels``: the pixels of ``plan.shoes`` (all footwear) take the side of the leg whose seen
    ankle they are at (:data:`FOOTWEAR_SIDES`, :data:`SHOE_REACH`; in place); elsewhere, and on a side nobody
    asked for, they stay ``shoes`` (hidden unless asked for). Without keypoints the parser's better-scored side
    (``scores``) names them."""
    if plan.shoes is None:
        return
    mask = labels == plan.shoes + 1
    if not bool(mask.any()):
        return
    if keypoints is None:
        sides = list(plan.feet)
        labels[mask] = torch.tensor(sides)[scores[sides].argmax(0)[mask]] + 1
        return
    legs = ("left leg", "right leg")
    split = torch.from_numpy(split_by_limbs(mask.numpy(), keypoints, threshold=threshold, regions=legs,
                                            origin=origin))
    scale = body_scale(keypoints, threshold)
    ys, xs = np.mgrid[0:labels.shape[0], 0:labels.shape[1]]
    for index, leg in plan.feet.items():
        ankle = keypoints[ANKLES[leg]]
        if scale is None or ankle[2] < threshold:
            continue
        near = np.hypot(xs + origin[0] - ankle[0], ys + origin[1] - ankle[1]) <= SHOE_REACH * scale
        labels[(split == legs.index(leg)) & torch.from_numpy(near)] = index + 1


def _beyond_head(split: torch.Tensor, face: int, unclaimed: int, keypoints: np.ndarray, origin: tuple[int, int],
                 threshold: float) -> None:
    """In ``split`` (:func:`split_by_limbs`' crop-local regions), pixels of the ``face`` region farther than
    :data:`FACE_SPANS` head spans from the person's nearest confident head keypoint become ``unclaimed`` (in
    place). The face capsule's radius follows the body's size; the head's own span bounds a face more tightly
    (a fist raised just above a head)."""
    span = head_span(keypoints, threshold)
    ys, xs = torch.nonzero(split == face, as_tuple=True)
    if span is None or len(ys) == 0:
        return
    far = torch.from_numpy(_head_distance(ys.numpy(), xs.numpy(), keypoints, origin, threshold) > FACE_SPANS * span)
    split[ys[far], xs[far]] = unclaimed


def _head_distance(ys: np.ndarray, xs: np.ndarray, keypoints: np.ndarray, origin: tuple[int, int],
                   threshold: float) -> np.ndarray:
    """Each crop-local pixel's (``ys``, ``xs``) distance to the person's nearest confident nose, eye or ear."""
    head = keypoints[:5][keypoints[:5, 2] >= threshold, :2] - np.asarray(origin, dtype=np.float64)
    return np.min(np.hypot(xs[:, None] - head[None, :, 0], ys[:, None] - head[None, :, 1]), 1)


def _hand_zones(shape: tuple[int, int], keypoints: np.ndarray, origin: tuple[int, int], threshold: float
                ) -> dict[str, np.ndarray]:
    """Crop-local bool zone (:func:`~spectrum_parsing.limbs.hand_zone`, 0.15 forearm back) of each arm ("left
    arm", "right arm") whose wrist and elbow are sure and at least 3 px apart."""
    zones = {}
    for name, (wrist, elbow) in (("left arm", (9, 7)), ("right arm", (10, 8))):
        w, e = keypoints[wrist], keypoints[elbow]
        if min(w[2], e[2]) >= threshold and float(np.hypot(*(w[:2] - e[:2]))) >= 3:
            zones[name] = hand_zone(shape, w[:2], e[:2], back=0.15, origin=origin)
    return zones


def _misnamed_hands(labels: torch.Tensor, plan: ScoringPlan, keypoints: np.ndarray | None,
                    origin: tuple[int, int], threshold: float) -> None:
    """In crop-local ``labels``: a connected piece the parser called one of :data:`MISNAMED_HANDS` that lies
    mostly (:data:`HAND_SHARE`) in the zone of one of the person's hands — a raised fist against the sky called
    hair — becomes that arm (in place). Legs are not among them: on studio photos a hand hangs beside the thigh,
    and turning leg pieces there into arms cost 8 points of VITON body mIoU (82.9 -> 75.1)."""
    if keypoints is None:
        return
    arms = {name: i for i, name in plan.body.items() if name in ("left arm", "right arm")}
    sources = [i for i, p in enumerate(plan.prompts)
               if vocabulary.canonical_name(p) in MISNAMED_HANDS and i not in plan.hidden]
    if not sources or not arms:
        return
    zones = {name: zone for name, zone in _hand_zones(tuple(labels.shape), keypoints, origin, threshold).items()
             if name in arms}
    for source in sources:
        pieces, count = ndimage.label((labels == source + 1).numpy())
        if count == 0:
            continue
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        for name, zone in zones.items():
            inside = np.bincount(pieces[zone], minlength=count + 1)
            hands = np.nonzero(inside[1:] >= HAND_SHARE * sizes[1:])[0] + 1
            if len(hands):
                labels[torch.from_numpy(np.isin(pieces, hands))] = arms[name] + 1


def _grow_skin(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor, crop: np.ndarray, person: torch.Tensor,
               plan: ScoringPlan,
               keypoints: np.ndarray | None, origin: tuple[int, int], threshold: float, distance: float,
               max_radii: float, over_guard: float = 0.0, sure: torch.Tensor | None = None) -> None:
    """In crop-local ``labels``: the person's own pixels (``person`` probability > 0.5) the parser left as
    background, near one of its limbs (``max_radii`` capsule radii) and within ``distance`` standard deviations of
    the colour of the person's own skin the parser did find, become the body part the pose places them in (in
    place); their score in ``best`` is the mean score of that skin. Not under a garment that covers the limb,
    unless within ``over_guard`` standard deviations of that colour (:func:`_skin_under_guard`); pixels under a
    garment that does not cover the limb grow too (:func:`_misworn_skin`); pieces of that colour mostly off the
    person never do (:func:`_skin_coloured_surroundings`). ``sure``: the person mask proper (without the limb band),
    where given: legs grow only inside it (the pose guesses legs behind a desk of the skin's colour: the bundled
    group photo), arms also in the band, where they continue the person's skin inside it
    (:func:`_unanchored_growth`). A leg grows only where its knee or ankle is seen, not from a lone hip (the bundled
    two-dancers photo: a beige cardigan's hem below a lone hip became "right leg")."""
    if keypoints is None or not plan.body or not plan.covers or distance <= 0:
        return
    seeds = torch.zeros(labels.shape, dtype=torch.bool)
    for i in plan.skin:
        seeds |= labels == i + 1
    seeds &= person > 0.5  # the person's own skin: a neighbour's arm in the crop has another colour
    colour = skin_colour_distance(crop, seeds.numpy())  # one colour model per person, every threshold from it
    if colour is None:
        return
    before, before_best = (labels.clone(), best.clone()) if sure is not None else (labels, best)
    candidates = (labels == 0) & (person > 0.5)
    hands = torch.zeros(labels.shape, dtype=torch.bool)
    for zone in _hand_zones(tuple(labels.shape), keypoints, origin, threshold).values():
        hands |= torch.from_numpy(zone)  # hands are arms: skin there never grows into a leg
    # where each limb may grow, not under a garment that covers it. asked: no garment the user prompted scores
    # GUARD_SCORE there; free: none at all, hidden ones included
    asked, free = {}, {}
    for limb, idx in plan.covers.items():
        shown = [i for i in idx if i not in plan.aside]
        hidden = [i for i in idx if i in plan.aside]
        asked[limb] = _best_of(scores, shown) < GUARD_SCORE if shown else torch.ones(labels.shape, dtype=torch.bool)
        free[limb] = asked[limb] & (_best_of(scores, hidden) < GUARD_SCORE) if hidden else asked[limb].clone()
    worn = {limb: torch.from_numpy(np.isin(labels.numpy(), [i + 1 for i in idx])) for limb, idx in plan.covers.items()}
    if over_guard > 0:
        _skin_under_guard(free, asked, colour, candidates, person, over_guard)
        candidates = candidates | _misworn_skin(labels, colour, person, plan.covers, over_guard)
    if "leg" in free:
        free["leg"] &= ~hands
    candidates &= torch.stack(list(free.values())).any(0)
    if not bool(candidates.any()):
        return
    skin_coloured = colour <= distance
    grown = skin_coloured & candidates.numpy() & ~_skin_coloured_surroundings(skin_coloured, person)
    scale = body_scale(keypoints, threshold)
    if not grown.any() or scale is None:
        return
    pieces, count = ndimage.label(grown)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    keep = sizes >= MIN_GROWN_PIECE * scale**2
    keep[0] = False
    grown = keep[pieces]
    regions = list(dict.fromkeys(plan.body.values()))
    target = {name: i for i, name in plan.body.items()}
    split = torch.from_numpy(split_by_limbs(grown, keypoints, threshold=threshold, regions=regions, origin=origin,
                                            max_radii=max_radii))
    regions = [name if name in GROWN_REGIONS else "" for name in regions]
    seed_score = best[seeds].mean()
    capsules, _ = region_capsules(keypoints, threshold)
    for k, name in enumerate(regions):
        limb = name.split()[-1] if name else ""
        if limb not in free:
            continue
        claimed = (split == k) & free[limb] & ~worn[limb]  # never over a garment the parser put on this limb
        if limb == "leg" and sure is not None:  # legs only inside the mask: the pose guesses legs behind a desk
            claimed &= sure
        if limb == "leg" and max(keypoints[KNEES[name], 2], keypoints[ANKLES[name], 2]) < threshold:
            continue  # a lone hip: the thigh the pose runs down from it crosses a coat's hem as often as a leg
        if limb == "leg" and capsules[name]:
            claimed &= torch.from_numpy(_along_limb(claimed.numpy(), capsules[name], origin))
        labels[claimed] = target[name] + 1
        best[claimed] = seed_score
    if sure is not None:
        _unanchored_growth(labels, before, best, before_best, sure, plan)


def _skin_coloured_surroundings(skin_coloured: np.ndarray, person: torch.Tensor) -> np.ndarray:
    """Bool crop-local mask: the connected pieces of ``skin_coloured`` (the pixels of the person's skin colour,
    anywhere in the crop) lying mostly (more than :data:`SURROUNDINGS_SHARE`) off the person (``person`` <= 0.5):
    a wooden desk in front of the legs, whose part inside the person's mask is no skin either."""
    if not skin_coloured.any():
        return skin_coloured
    pieces, count = ndimage.label(skin_coloured)
    off = np.bincount(pieces[(person <= 0.5).numpy()], minlength=count + 1)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    drop = off > SURROUNDINGS_SHARE * sizes
    drop[0] = False
    return drop[pieces]


def _unanchored_growth(labels: torch.Tensor, before: torch.Tensor, best: torch.Tensor, before_best: torch.Tensor,
                       sure: torch.Tensor, plan: ScoringPlan) -> None:
    """Undo (in place) skin grown outside the person mask proper (``sure``: the limb band only) in connected pieces
    of bare skin that hold no skin inside the mask: a shin BlazePose's mask stopped short of continues the knee's
    skin, the corner of a wooden desk across legs the pose guessed behind it continues nothing."""
    skin_ids = torch.tensor([i + 1 for i in plan.skin] + [i + 1 for i in plan.body], dtype=labels.dtype)
    skin = torch.isin(labels, skin_ids).numpy()
    outside = ((labels != before) & ~sure).numpy()
    if not outside.any():
        return
    pieces, count = ndimage.label(skin)
    anchored = np.zeros(count + 1, dtype=bool)
    anchored[np.unique(pieces[skin & sure.numpy()])] = True
    anchored[0] = False
    undo = torch.from_numpy(outside & ~anchored[pieces])
    labels[undo] = before[undo]
    best[undo] = before_best[undo]


def _skin_under_guard(free: dict[str, torch.Tensor], asked: dict[str, torch.Tensor], colour: np.ndarray,
                      candidates: torch.Tensor, person: torch.Tensor, distance: float) -> None:
    """Widen each limb's ``free`` mask (in place) to the ``candidates`` within ``distance`` standard deviations of the
    colour of the person's found skin (``colour``: each pixel's distance to it), even where a hidden garment that
    covers the limb scores :data:`GUARD_SCORE`: on real photos the parser calls a bare shin in shadow "pants". A
    garment the user asked for still guards (``asked``: per limb, where none of them scores that much): the parser
    weighed it against the background there, and beige trousers have the skin's colour. Not for a limb whose
    guarded pixels on the person are more than :data:`OVER_GUARD_SHARE` of that colour (a garment of the skin's
    colour, or a black-and-white photo, where everything is)."""
    on_person = person > 0.5
    strong = torch.from_numpy(colour <= distance)
    for limb, f in free.items():
        guarded = ~f & on_person
        if int(guarded.sum()) and int((strong & guarded).sum()) <= OVER_GUARD_SHARE * int(guarded.sum()):
            free[limb] = f | (strong & candidates & asked[limb])


def _misworn_skin(labels: torch.Tensor, colour: np.ndarray, person: torch.Tensor, covers: dict[str, list[int]],
                  distance: float) -> torch.Tensor:
    """Bool crop-local mask: the person's pixels the parser labelled with a garment (any of ``covers``) that are
    within ``distance`` standard deviations of the colour of its found skin (``colour``: each pixel's distance to
    it) — a bare thigh the parser calls "upper clothes" — for the garments at most :data:`OVER_GUARD_SHARE` of
    whose pixels on the person are of that colour. The caller grows them only into a limb that garment does not
    cover."""
    out = torch.zeros(labels.shape, dtype=torch.bool)
    on_person = (person > 0.5).numpy()
    garments = sorted({i for idx in covers.values() for i in idx})
    dressed = np.isin(labels.numpy(), [i + 1 for i in garments]) & on_person
    if not dressed.any():
        return out
    strong = colour <= distance
    flat = labels.numpy()
    for i in garments:
        pixels = dressed & (flat == i + 1)
        count = int(pixels.sum())
        if count and int((strong & pixels).sum()) <= OVER_GUARD_SHARE * count:
            out |= torch.from_numpy(strong & pixels)
    return out


def _along_limb(mask: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray]], origin: tuple[int, int]
                ) -> np.ndarray:
    """The connected pieces of crop-local ``mask`` that do not lie across the limb: a piece reaching more than
    :data:`ACROSS_LIMB` times as far across the limb's axis (its first joint to its end, ``segments`` in image
    pixels) as along it is dropped (the edge of a desk in front of the legs, not a shin)."""
    axis = segments[-1][1] - segments[0][0]
    length = float(np.hypot(*axis))
    if length < 1.0 or not mask.any():
        return mask
    axis = axis / length
    pieces, count = ndimage.label(mask)
    ys, xs = np.nonzero(pieces)
    ids = pieces[ys, xs]
    along = (xs + origin[0]) * axis[0] + (ys + origin[1]) * axis[1]
    across = -(xs + origin[0]) * axis[1] + (ys + origin[1]) * axis[0]
    keep = np.ones(count + 1, dtype=bool)
    keep[0] = False
    for piece in range(1, count + 1):
        sel = ids == piece
        extent_along = np.ptp(along[sel]) + 1.0
        extent_across = np.ptp(across[sel]) + 1.0
        keep[piece] = extent_across <= ACROSS_LIMB * extent_along
    return keep[pieces]


LOWER_VOTE = 0.6
"""A person wears one lower-body garment: when one of :data:`LOWER_GARMENTS` holds this share of the pixels any
of them labels on the person, the others become it (trousers with a patch the parser called skirt)."""
LOWER_GARMENTS = ("pants", "jeans", "shorts", "skirt")


def _one_lower_garment(labels: torch.Tensor, lower: Sequence[int]) -> None:
    """In crop-local ``labels``: the pixels of the person's minority lower-body garments (``lower``: the columns of
    :data:`LOWER_GARMENTS`) become the majority one when it holds :data:`LOWER_VOTE` of them (in place)."""
    if len(lower) < 2:
        return
    counts = torch.stack([(labels == i + 1).sum() for i in lower])
    total = int(counts.sum())
    top = int(counts.argmax())
    if total == 0 or int(counts[top]) < LOWER_VOTE * total:
        return
    labels[torch.isin(labels, torch.tensor([i + 1 for i in lower]))] = lower[top] + 1


ONE_PIECE_GARMENTS = ("dress", "jumpsuit")
"""Garments that cover the torso and the legs."""
TROUSERS = ("pants", "jeans", "shorts")
SKIRTS = ("skirt",)
ONE_PIECE_VOTE = 0.25
"""A one-piece garment over trousers holding at least this share of its pixels is the parser's mistake (a pale
jersey above pale trousers, a belted jacket's tail), and becomes the upper-body garment the parser scores best
there: `lip_dev` all 32.06 -> 32.08 (a baseball jersey), CCP val dress IoU 39.75 -> 40.83 (fine mIoU 14.64 ->
14.65), and on the bundled group photo a jacket's tail is coat instead of dress."""
SKIRT_VOTE = 4.0
"""A one-piece garment with a skirt holding at least this many times its pixels is a sliver between a top and a
skirt (`lip_dev` photo 18: 188 px of "dress" at a waist) and takes the best-scored upper garment or skirt there:
`lip_dev` all 33.90 -> 33.98, CCP val skirt 28.5 -> 29.7 (dress 41.4 -> 41.3, fine 14.73 -> 14.75), VITON
unchanged. A dress whose lower half the parser calls skirt keeps its dress (the vote is far higher than over
trousers: a dress is often read as top and skirt)."""
SYNONYM_VOTE = 1.0
"""A synonym of a one-piece garment (a phrase the model never saw as a label: "saree", "gown", "overalls") over
trousers holding at least as many pixels as it is the parser's mistake too (a baseball jersey and a held red cloth
called "saree" on `lip_dev`, their wearers in trousers), judged more cautiously than a category name (the user chose
the phrase)."""


def _no_one_piece_over_trousers(labels: torch.Tensor, scores: torch.Tensor, one_piece: Sequence[int],
                                trousers: Sequence[int], upper: Sequence[int], vote: float | None = None) -> None:
    """In crop-local ``labels``: when ``trousers`` hold at least ``vote`` (default :data:`ONE_PIECE_VOTE`) times
    the one-piece garments' pixels, those pixels take the best-scored of ``upper`` (in place; their scores are
    kept)."""
    if not one_piece or not trousers or not upper:
        return
    vote = ONE_PIECE_VOTE if vote is None else vote
    piece = torch.isin(labels, torch.tensor([i + 1 for i in one_piece]))
    n_piece = int(piece.sum())
    if n_piece == 0:
        return
    n_trousers = int(torch.isin(labels, torch.tensor([i + 1 for i in trousers])).sum())
    if n_trousers < vote * n_piece:
        return
    arg = torch.stack([scores[c][piece] for c in upper]).argmax(0)  # at the one-piece pixels only
    labels[piece] = torch.as_tensor(list(upper))[arg] + 1


class GarmentRoles(NamedTuple):
    """The columns of one prompt list that each garment-consistency rule reads (:func:`garment_roles`)."""

    lower: list[int]
    one_piece: list[int]
    synonyms: list[int]
    trousers: list[int]
    skirts: list[int]
    upper: list[int]


def garment_roles(prompts: Sequence[str], columns: Sequence[int]) -> GarmentRoles:
    """Which of ``columns`` (indices into ``prompts`` that may label a pixel) are lower-body garments, one-piece
    garments (category names), their synonyms ("saree"), trousers, skirts and upper-body garments; computed once per
    prompt list, read by :func:`consistent_garments` for every person."""
    def named(group: Sequence[str]) -> list[int]:
        return [i for i in columns if vocabulary.canonical_name(prompts[i]) in group]

    one_piece = named(ONE_PIECE_GARMENTS)
    return GarmentRoles(lower=named(LOWER_GARMENTS),
                        one_piece=[i for i in one_piece if vocabulary.is_category_name(prompts[i])],
                        synonyms=[i for i in one_piece if not vocabulary.is_category_name(prompts[i])],
                        trousers=named(TROUSERS), skirts=named(SKIRTS),
                        upper=[i for i in columns if _coarse(prompts[i]) in UPPER_GARMENT_GROUPS])


def consistent_garments(labels: torch.Tensor, scores: torch.Tensor, roles: GarmentRoles,
                        region: torch.Tensor | None = None) -> None:
    """One person's garments made consistent, in place, from the labels alone (no pose): one lower-body garment
    (:data:`LOWER_VOTE`), no one-piece garment over trousers (:data:`ONE_PIECE_VOTE`; its synonyms:
    :data:`SYNONYM_VOTE`) or as a sliver over a skirt (:data:`SKIRT_VOTE`). ``labels``: 0 or 1 + prompt index;
    ``scores``: (P, H, W) per-prompt scores; ``roles``: :func:`garment_roles` of the prompts; ``region``: the
    person's pixels when ``labels`` covers more than one person (a whole-image parse; the votes count that person's
    pixels only)."""
    local = labels if region is None else torch.where(region, labels, torch.zeros_like(labels))
    _one_lower_garment(local, roles.lower)
    _no_one_piece_over_trousers(local, scores, roles.one_piece, roles.trousers, roles.upper)
    _no_one_piece_over_trousers(local, scores, roles.synonyms, roles.trousers, roles.upper, vote=SYNONYM_VOTE)
    _no_one_piece_over_trousers(local, scores, roles.one_piece, roles.skirts, [*roles.upper, *roles.skirts],
                                vote=SKIRT_VOTE)
    if region is not None:
        labels[region] = local[region]


EYEWEAR = ("sunglasses", "glasses")
"""Garments worn over both eyes."""
EYE_REACH = 0.25
"""Eyewear reaches each of the person's seen eyes within this many eye-to-eye distances (sunglasses lie over the
eyes, which the pose finds under them); when both eyes are seen and one is out of reach, the pixels are a shadowed
eye (`lip_dev`: a dark eye socket called sunglasses on 2 of 25 photos, neither wearing any)."""
EYES = (1, 2)


def _eyewear_over_both_eyes(labels: torch.Tensor, eyewear: Sequence[int], face: int | None,
                            keypoints: np.ndarray | None, origin: tuple[int, int], threshold: float) -> None:
    """In crop-local ``labels``: the pixels of ``eyewear`` columns that do not reach both of the person's seen eyes
    (:data:`EYE_REACH`) become ``face`` (a column; None: unlabelled). Nothing changes unless both eyes are scored
    >= ``threshold`` (a face in profile shows one eye and one lens)."""
    if not eyewear or keypoints is None or (keypoints[list(EYES), 2] < threshold).any():
        return
    eyes = keypoints[list(EYES), :2] - np.asarray(origin, dtype=np.float64)
    reach = EYE_REACH * float(np.linalg.norm(eyes[0] - eyes[1]))
    for column in eyewear:
        worn = labels == column + 1
        if not bool(worn.any()):
            continue
        ys, xs = np.nonzero(worn.numpy())
        nearest = [float(np.min(np.hypot(xs - x, ys - y))) for x, y in eyes]
        if max(nearest) > reach:
            labels[worn] = 0 if face is None else face + 1


FILL_PERSON = 0.9
"""The person-mask probability above which :func:`_complete_person` trusts that a pixel is the person's (at 0.5,
masks spilling onto a neighbour made ``cihp_dev`` mIoU 30.4 -> 28.6)."""
FILL_MIN_SHARE = 0.02
"""A part :func:`_complete_person` extends already covers at least this share of the person's own pixels (a speck
of scarf is not grown into a scarf)."""


FILL_SKIN_GUARD = 3.0
"""The second, less sure fill (``TopDownConfig.fill_unsure``) leaves the pixels within this many standard deviations
of the colour of the person's own bare skin alone: on ``cihp_dev`` the parser leaves bare chests unlabelled where
it half-believes the shirt around them, and a fill without the guard made them shirt (torso-skin IoU 30.6 ->
24.2). Any of 2-5 measured the same there (scratch runs)."""


def _not_skin_coloured(labels: torch.Tensor, plan: ScoringPlan, crop: np.ndarray, person: torch.Tensor
                       ) -> torch.Tensor | None:
    """Crop-local bool mask of the pixels farther than :data:`FILL_SKIN_GUARD` standard deviations from the colour
    of the person's own labelled bare skin (body parts and skin, on its mask); None when it shows too little skin
    for a colour model (nothing then to keep a garment from)."""
    seeds = torch.zeros(labels.shape, dtype=torch.bool)
    for i in (*plan.skin, *plan.body):
        seeds |= labels == i + 1
    colour = skin_colour_distance(crop, (seeds & (person > 0.5)).numpy())
    return None if colour is None else torch.from_numpy(colour > FILL_SKIN_GUARD)


def _complete_person(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor, columns: Sequence[int],
                     pooled: Sequence[Sequence[Sequence[int]]], garments: Sequence[int], person: torch.Tensor,
                     floor: float, allowed: torch.Tensor | None = None) -> None:
    """In crop-local ``labels`` (and their scores ``best``, in place): the person's own pixels (``person``
    probability above :data:`FILL_PERSON`) left unlabelled are labelled again as at first (``columns`` compete,
    ``pooled`` groups summed) with ``floor`` for the background threshold. They take the result where it is one of
    ``garments`` that the parser already labelled on at least :data:`FILL_MIN_SHARE` of the person's pixels and
    where they touch that part: a part is extended, never invented nor copied into a hole of another. They are
    scored as that part's labelled pixels on average, so a part's score stays the parser's. ``allowed``: a bool
    mask of the pixels this fill considers the person's (its parts counted, extended and filled there only;
    None: all)."""
    own = person > FILL_PERSON
    if allowed is not None:
        own &= allowed
    free = (labels == 0) & own
    if not garments or not bool(free.any()):
        return
    picked = scores[:, free]  # (P, N): only the free pixels are relabelled
    part, top = SpectrumImageProcessor.label_map(picked, columns, floor)
    _pool(part, top, picked, pooled, columns, floor)
    again = torch.zeros_like(labels)
    again[free] = part.to(labels.dtype)
    enough = FILL_MIN_SHARE * float(own.sum())
    # the parts each column has on the person (a fill only turns free pixels into its own column: counts hold)
    counts = torch.bincount(labels[own].long(), minlength=max(garments) + 2)
    offered = set(torch.unique(part).tolist())
    for column in garments:
        if column + 1 not in offered or float(counts[column + 1]) < enough:
            continue
        seen = (labels == column + 1) & own
        fill = free & (again == column + 1)
        # only what touches the part: grown from it, never an island of its own
        pieces, _ = ndimage.label((fill | seen).numpy())
        touching = np.unique(pieces[seen.numpy()])
        fill &= torch.from_numpy(np.isin(pieces, touching[touching > 0]))
        if bool(fill.any()):
            best[fill] = best[seen].mean().to(best.dtype)
            labels[fill] = column + 1


HOLE_SHARE = 0.01
"""Holes in a person's labels (unlabelled pieces enclosed by labelled pixels, on the person's own mask) of at most
this share of the crop take the label most common around them (a patch of coat the parser was unsure of)."""


def _fill_holes(labels: torch.Tensor, best: torch.Tensor, person: torch.Tensor) -> None:
    """In crop-local ``labels`` (and their scores ``best``): small enclosed unlabelled pieces on the person's own
    pixels (``person`` probability > 0.5) take the label most common on their rim, scored as the rim (in place)."""
    labelled = (labels > 0).numpy()
    gaps, _ = ndimage.label(~labelled)  # unlabelled pieces; those touching the crop's edge are not enclosed
    edge = np.unique(np.concatenate([gaps[0], gaps[-1], gaps[:, 0], gaps[:, -1]]))
    holes = (gaps > 0) & ~np.isin(gaps, edge) & (person > 0.5).numpy()
    if not holes.any():
        return
    pieces, count = ndimage.label(holes)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    keep = sizes <= HOLE_SHARE * labels.numel()
    keep[0] = False
    # each rim pixel (labelled, next to a hole) votes for its label in the hole it touches
    rim_of = pieces.copy()  # the hole a pixel touches (4-neighbours; the highest-numbered where two meet)
    np.maximum(rim_of[1:], pieces[:-1], out=rim_of[1:])
    np.maximum(rim_of[:-1], pieces[1:], out=rim_of[:-1])
    np.maximum(rim_of[:, 1:], pieces[:, :-1], out=rim_of[:, 1:])
    np.maximum(rim_of[:, :-1], pieces[:, 1:], out=rim_of[:, :-1])
    lab = labels.numpy()
    rim = (rim_of > 0) & keep[rim_of] & (lab > 0)
    votes = np.zeros((count + 1, int(lab.max()) + 1))
    np.add.at(votes, (rim_of[rim], lab[rim]), 1.0)
    rim_score = np.bincount(rim_of[rim], weights=best.numpy()[rim], minlength=count + 1)
    voters = votes.sum(1)
    winner = votes.argmax(1)
    keep &= voters > 0
    fill = keep[pieces]
    if fill.any():
        labels[torch.from_numpy(fill)] = torch.from_numpy(winner[pieces[fill]]).to(labels.dtype)
        best[torch.from_numpy(fill)] = torch.from_numpy(rim_score / np.maximum(voters, 1))[pieces[fill]].to(best.dtype)


def _split_segments(labels: torch.Tensor, best: torch.Tensor, person: torch.Tensor, plan: ScoringPlan,
                    keypoints: np.ndarray | None, origin: tuple[int, int]) -> None:
    """In crop-local ``labels``: the person's pixels (``person`` probability > 0.5) no prompt claims go to the
    geometric part (``plan.geometric``) whose body segment they lie in, scored by the person probability."""
    if keypoints is None or not plan.geometric:
        return
    free = (labels == 0) & (person > 0.5)
    if not bool(free.any()):
        return
    split = torch.from_numpy(split_by_segments(free.numpy(), keypoints, origin=origin))
    for index, segments in plan.geometric.items():
        claimed = torch.zeros_like(free)
        for segment in segments:
            claimed |= split == SEGMENTS.index(segment)
        labels[claimed] = index + 1
        best[claimed] = person[claimed]


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


def _carve(labels: torch.Tensor, source: int, target: int, keypoints: np.ndarray | None, origin: tuple[int, int],
           wrist: int, elbow: int, threshold: float) -> None:
    """In crop-local ``labels``, relabel ``source`` pixels near and beyond the wrist as ``target`` (in place)."""
    if keypoints is None:
        return
    w, e = keypoints[wrist], keypoints[elbow]
    if min(w[2], e[2]) < threshold or float(np.hypot(w[0] - e[0], w[1] - e[1])) < 3:
        return
    hand = torch.from_numpy(hand_zone(tuple(labels.shape), w[:2], e[:2], back=0.15, origin=origin))
    labels[(labels == source + 1) & hand] = target + 1


LIMB_SUPPORT_PROB = 0.51
"""The person probability a pixel of a sure limb (``TopDownConfig.limb_support``) gets at least: just over the
ownership cut (0.5), so a neighbour whose own mask is sure there keeps it."""
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
    # inside the mask, as the pose guesses legs behind a desk of skin's colour (_grow_skin, _unanchored_growth;
    # limbs.limb_band; 0: off; benchmarks/bench_body_parts.py).
    limb_support: float = 1.0
    # The person's own pixels (person mask > FILL_PERSON) the parser left unlabelled are labelled again with
    # person_fill as the background threshold, and take a garment the parser already labelled on the person: the
    # mask is sure something of the person is there, the parser only unsure what (the middle of a dark coat;
    # lip_dev all 32.1 -> 33.6; 0: off; _complete_person, benchmarks/bench_body_parts.py).
    person_fill: float = 0.1
    # ... and then again with fill_unsure as the background threshold, except on pixels of the colour of the
    # person's own bare skin (FILL_SKIN_GUARD): the middle of a dark jacket seen from behind, where the parser is
    # sure of nothing but the mask is sure of the person (lip_dev all 35.46 -> 36.19, cihp_dev mIoU 33.42 -> 33.77;
    # 0: off; _complete_person, benchmarks/bench_body_parts.py).
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
                     "evidence_min_height", "person_fill", "fill_unsure"):
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
    # unsure parts extended (_complete_person): garments only; the hidden competitors compete again too, so an
    # unsure "saree" never grows where they are surer
    body = set(plan.body) | set(plan.skin)
    garments = [i for i in columns if i not in body]
    competing = columns if rival is None else [*columns, rival]
    eyewear = [i for i in columns if vocabulary.canonical_name(prompts[i]) in EYEWEAR]
    face = next((i for i, name in plan.body.items() if name == "face"), None)
    for k, ((x0, y0, x1, y1), scores) in enumerate(zip(regions, outputs)):
        own_person = None
        if scores.shape[0] == len(prompts) + 1:  # the parser's prompt-independent person map after the prompts
            own_person, scores = scores[-1], scores[:-1]
        if plan.shoes is not None:  # all footwear as one column (this crop's scores are its own: in place)
            for side in plan.feet:
                scores[plan.shoes] += scores[side]
        labels, best = SpectrumImageProcessor.label_map(scores, columns, background_threshold)
        _pool(labels, best, scores, pooled, columns, background_threshold)
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
        mask_probs = probs  # the person mask alone: the person is filled (_complete_person) only where it is sure
        if keypoints is not None and config.limb_support > 0:
            band = torch.from_numpy(limb_band(tuple(probs.shape), keypoints, config.keypoint_threshold,
                                              config.limb_support, (x0, y0), seen=(probs > 0.5).numpy(),
                                              seen_share=LIMB_SEEN_SHARE))
            probs = torch.where(band, probs.clamp(min=LIMB_SUPPORT_PROB), probs)
        _name_skin(labels, plan, keypoints, (x0, y0), config.keypoint_threshold)
        _misnamed_hands(labels, plan, keypoints, (x0, y0), config.keypoint_threshold)
        _grow_skin(labels, best, scores, crops[k], probs, plan, keypoints, (x0, y0), config.keypoint_threshold,
                   config.skin_colour, config.skin_radii, config.skin_over_guard, sure=mask_probs > 0.5)
        unsure_fill = 0 < config.fill_unsure < config.person_fill and bool(garments)
        # the person's skin-colour map, for the two rules that read it (none asks for it: not built)
        not_skin = _not_skin_coloured(labels, plan, crops[k], mask_probs) \
            if unsure_fill or (roles.lower and keypoints is not None) else None
        _hands_over_trousers(labels, plan, roles.lower, keypoints, (x0, y0), config.keypoint_threshold, not_skin)
        if config.person_fill > 0:  # after bare skin is grown: the garments take what the skin did not
            _complete_person(labels, best, scores, competing, pooled, garments, mask_probs, config.person_fill)
            if unsure_fill:  # then, less sure, what is not of the skin's colour
                _complete_person(labels, best, scores, competing, pooled, garments, mask_probs, config.fill_unsure,
                                 allowed=not_skin)
        _side_footwear(labels, scores, plan, keypoints, (x0, y0), config.keypoint_threshold)
        _eyewear_over_both_eyes(labels, eyewear, face, keypoints, (x0, y0), config.keypoint_threshold)
        for target, (source, wrist, elbow) in plan.hands.items():
            _carve(labels, source, target, keypoints, (x0, y0), wrist, elbow, config.keypoint_threshold)
        if HOLE_SHARE > 0:
            _fill_holes(labels, best, probs)
        _split_segments(labels, best, probs, plan, keypoints, (x0, y0))
        local_labels.append(labels)
        local_scores.append(best)
        local_probs.append(probs)
    top = torch.zeros(h, w)
    owner = torch.full((h, w), -1, dtype=torch.long)
    for k, (x0, y0, x1, y1) in enumerate(regions):  # by descending detection score: ties go to the first
        better = local_probs[k] > top[y0:y1, x0:x1]
        top[y0:y1, x0:x1][better] = local_probs[k][better]
        owner[y0:y1, x0:x1][better] = k
    owner[top <= 0.5] = -1
    candidates = [PersonCandidate(region=(int(x0), int(y0), int(x1), int(y1)), owned=owner[y0:y1, x0:x1] == k,
                                  labels=local_labels[k], scores=local_scores[k], score=float(detections.scores[k]),
                                  keypoints=None if detections.keypoints is None else detections.keypoints[k])
                  for k, (x0, y0, x1, y1) in enumerate(regions)]
    return assemble_persons(candidates, prompts, (h, w), threshold=threshold,
                            min_person_pixels=config.min_person_pixels, min_part_pixels=config.min_part_pixels,
                            hidden=plan.hidden)
