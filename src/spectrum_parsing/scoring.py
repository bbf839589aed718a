"""What a top-down parse scores (:func:`plan_prompts`): the user's prompts, plus hidden columns that are never
reported.

* **bare skin**: the face, arm and leg prompts and a hidden ``skin`` prompt together find the bare skin, which the
  person's pose then names (:mod:`.body_naming`; ``body_parts`` ``"sides"`` or ``"pose"``).
* **garments that cover a limb** (:data:`LEG_GARMENTS`, :data:`ARM_GARMENTS`), scored hidden where not asked for
  and kept out of the others' softmax: skin never grows into a limb a garment covers.
* **shoes**: with "left shoe" / "right shoe" asked for, all footwear is scored as one column (a hidden ``shoes``
  summed with the sided ones: similar phrases share the grounding softmax, so each alone rarely beats the
  background); the pose sides it (:func:`~.body_naming.side_footwear`).
* **hands** (:data:`DERIVED_PARTS`): the arm they are carved from is scored, hidden where not asked for.
* **geometric parts** (:data:`GEOMETRIC_PARTS`: PASCAL-Person-Part's head, torso, upper/lower arms and legs,
  clothing included) are not scored: the person's pixels no other prompt claims are partitioned by its keypoints
  (:func:`~.person_fill.split_segments`).
* **competitors**: every known category of another coarse group than the user's prompts (from the model's prompt
  table), pooled into one hidden column (their pixel-wise best, upper-body clothes and outerwear scored as one
  sum, lower-body clothes as another: :attr:`ScoringPlan.pool_groups`); a pixel goes to a contested prompt only if
  it beats them (:func:`~.garments.contest`), so a prompt for something nobody wears ("saree" on a photo of suits)
  stays empty. ``competitors="novel"`` (the default) contests only the phrases the model never saw as a label
  (:func:`novel_prompts`: synonyms, free phrases, unknown words), which it grounds by text similarity alone;
  ``"all"`` contests every prompt (costs part AP where the prompts are right); ``"off"`` none.

Pure planning on prompt strings: no tensors, no model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from .vocab import categories as vocabulary

__all__ = ["BODY_PART_SOURCES", "DERIVED_PARTS", "GEOMETRIC_PARTS", "POOLED_GARMENTS", "POSE_REGIONS",
           "ScoringPlan", "coarse_group", "competitor_phrases", "derived_prompts", "novel_prompts", "plan_prompts"]

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
"""What covers legs: skin never grows into a leg where one of these scores :data:`~.body_naming.GUARD_SCORE` or more."""


ARM_GARMENTS = ("upper clothes", "shirt", "t-shirt", "sweater", "jacket", "coat", "dress", "gloves")
"""What covers arms: skin never grows into an arm where one of these scores
:data:`~.body_naming.GUARD_SCORE` or more."""


COVERING = {"leg": LEG_GARMENTS, "arm": ARM_GARMENTS}


FOOTWEAR_SIDES = {"left shoe": "left leg", "right shoe": "right leg"}
"""Sided footwear and the leg whose foot wears it: the parser finds shoes far better than it tells their side
(LIP's left/right shoes), so shoes are found as shoes (a hidden ``shoes`` prompt beside the sided ones) and sided
by the person's pose."""


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
            key = next((group for group in POOLED_GARMENTS if coarse_group(phrase) in group), index)
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


def coarse_group(phrase: str) -> str | None:
    """The coarse group of ``phrase``'s canonical category (None for a phrase of no known category)."""
    category = vocabulary.BY_NAME.get(vocabulary.canonical_name(phrase))
    return None if category is None else category.coarse
