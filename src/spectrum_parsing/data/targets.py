"""From :class:`~spectrum_parsing.data.sample.Sample` to model inputs: prompt phrases, masks, batches.

Training grounds every ground-truth segment to a text phrase. Phrases are drawn per batch: each distinct
canonical category present gets one phrase (a random synonym in a random key-phrase template, or the
canonical name itself), plus optional negative phrases for categories absent from the batch. Categories
withheld for zero-shot evaluation are removed and their pixels ignored (never counted as background).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..configs import ConfigBase, ConfigError
from ..images import to_tensor
from ..vocab import categories as vocabulary
from ..vocab.phrases import EBP_PROMPTS, PROMPT_TEMPLATES, phrase_for, templates_for, with_article, with_ebp
from .sample import IGNORE_ID, Sample, Segment

__all__ = [
    "PROMPT_TEMPLATES",
    "EBP_PROMPTS",
    "PAD_MULTIPLE",
    "templates_for",
    "with_article",
    "with_ebp",
    "phrase_for",
    "caption_for",
    "TargetConfig",
    "TrainingExample",
    "make_example",
    "collate",
    "ambiguous_phrases",
    "canonical_classes",
    "semantic_to_canonical",
]

PAD_MULTIPLE = 32
"""Batched images are padded right/bottom to a multiple of this (the backbone's coarsest stride)."""

def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_for(sample: Sample) -> str:
    """A plain caption from the labels present, e.g. "a photo of a person wearing a t-shirt and jeans, with a bag".

    Sided items are named by their generic parent ("left shoe" -> "shoes"); body parts are not mentioned.
    """
    persons = {s.person for s in sample.segments}
    count = len(persons) if sample.has_instances else min(len(persons), 1)
    if count == 0:
        return "a photo"
    worn: list[str] = []
    carried: list[str] = []
    for seg in sample.segments:
        cat = vocabulary.get(seg.category)
        if cat.kind not in ("clothing", "accessory"):
            continue
        name = cat.parent if cat.side and cat.parent else cat.name
        bucket = worn if cat.kind == "clothing" else carried
        if name not in bucket:
            bucket.append(name)
    subject = "a person" if count == 1 else ("two people" if count == 2 else f"{count} people")
    caption = f"a photo of {subject}"
    if worn:
        caption += " wearing " + _join([with_article(n) for n in worn])
    if carried:
        caption += (", with " if worn else " with ") + _join([with_article(n) for n in carried])
    return caption


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


@dataclass
class TargetConfig(ConfigBase):
    """How samples become training targets.

    ``withheld``: canonical categories held out for zero-shot evaluation; their segments - and those of their
    descendants, e.g. "left shoe" for "shoes" - are removed and their pixels ignored, and they never appear
    as phrases. ``num_negative_phrases``: categories absent from the batch added to its phrases (drawn from
    what every dataset of the batch annotates). ``use_templates``: random synonym + key-phrase template per
    phrase (else the canonical name). ``include_person``: keep full-body ``person`` segments.
    ``min_segment_pixels``: smaller segments are dropped. ``finer_names``: where a dataset annotates a broad
    garment or accessory category beside finer ones of its group (CCP's "shoes" beside "sneakers" and "boots",
    "accessories" beside "watch"), its finer segments take the broad name as a negative, not as ambiguous: the
    annotators chose the finer name (see :func:`ambiguous_phrases`). ``skin_union``: every person also gets one ``skin``
    segment, the union of its bare-body parts (face, arms, legs, hands, feet, torso and neck skin, and any
    ``skin`` it has): "skin" then means all bare body in every dataset (CCP's street photos label only that,
    VITON's studio photos only the parts), which is what derived body parts are carved from at inference.
    """

    withheld: list[str] = field(default_factory=list)
    num_negative_phrases: int = 0
    use_templates: bool = True
    include_person: bool = True
    min_segment_pixels: int = 1
    skin_union: bool = False
    finer_names: bool = False

    def __post_init__(self) -> None:
        self.withheld = list(self.withheld)
        unknown = sorted(n for n in self.withheld if n not in vocabulary.BY_NAME)
        if unknown:
            raise ConfigError(f"withheld: unknown canonical categor(ies) {unknown}")
        if "person" in self.withheld:
            raise ConfigError("withheld: 'person' cannot be withheld (parts are grouped by person masks)")
        if self.num_negative_phrases < 0:
            raise ConfigError(f"num_negative_phrases must be >= 0, got {self.num_negative_phrases}")
        if self.min_segment_pixels < 0:
            raise ConfigError(f"min_segment_pixels must be >= 0, got {self.min_segment_pixels}")

    def withheld_set(self) -> frozenset[str]:
        """Withheld categories and all their descendants."""
        return frozenset(n for n in vocabulary.BY_NAME if _ancestors(n) & set(self.withheld))


def _ancestors(name: str) -> set[str]:
    """The category and its parents, transitively."""
    out = set()
    current: str | None = name
    while current is not None and current not in out:
        out.add(current)
        current = vocabulary.BY_NAME[current].parent
    return out


@dataclass
class TrainingExample:
    """One image's training inputs."""

    image: torch.Tensor  # float (3, H, W) in [0, 1]
    masks: torch.Tensor  # bool (T, H, W)
    categories: list[str]  # canonical category per mask
    ignore: torch.Tensor | None  # bool (H, W)
    image_id: str
    persons: list[int] = field(default_factory=list)  # person id per mask
    label_space: list[str] | None = None  # canonical categories the source dataset annotates (None: unknown)
    absent: list[str] = field(default_factory=list)  # categories shown but surely not worn: offered as negatives


def canonical_classes(classes: Sequence[str]) -> list[str | None]:
    """Canonical name of every dataset class (None where it has no equivalent, e.g. background)."""
    return [vocabulary.canonical_name(name) for name in classes]


def _label_space(classes: Sequence[str]) -> list[str]:
    """Canonical categories whose absence an annotation with these classes implies (incl. descendants)."""
    direct = {c for c in canonical_classes(classes) if c is not None}
    return [n for n in vocabulary.BY_NAME if _ancestors(n) & direct]


def make_example(sample: Sample, config: TargetConfig) -> TrainingExample:
    """Training inputs of one sample: withheld categories -> ignore, person masks optional, tiny segments dropped."""
    h, w = sample.size
    withheld = config.withheld_set()
    ignore = np.zeros((h, w), dtype=bool) if sample.ignore is None else sample.ignore.astype(bool, copy=True)
    masks, categories, persons = [], [], []
    segments = _with_skin_union(sample.segments) if config.skin_union else sample.segments
    for seg in segments:
        if seg.category in withheld:
            ignore |= seg.mask
            continue
        if seg.category == "person" and not config.include_person:
            continue
        if int(seg.mask.sum()) < max(config.min_segment_pixels, 1):
            continue
        masks.append(seg.mask)
        categories.append(seg.category)
        persons.append(seg.person)
    mask_tensor = (torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, h, w, dtype=torch.bool))
    has_ignore = sample.ignore is not None or bool(ignore.any())
    space = [c for c in _label_space(sample.classes) if c not in withheld]
    return TrainingExample(
        image=to_tensor(sample.image),
        masks=mask_tensor.bool(),
        categories=categories,
        ignore=torch.from_numpy(ignore) if has_ignore else None,
        image_id=sample.image_id,
        persons=persons,
        label_space=space or None,
        # A person-free photo's tags name the garment it shows, which nobody wears: the phrase most likely to be
        # matched wrongly, so it is always offered (as a negative) with this image.
        absent=[t for t in sample.tags if t not in withheld] if sample.dataset == "no-person" else [],
    )


# Parts that are bare skin wherever they are labelled (LIP, VITON, CIHP, CCP). Not "head" (it holds the hair) nor
# PASCAL-Person-Part's upper/lower arms and legs (they hold the clothing over them).
_BARE_BODY = frozenset({"skin", "face", "neck", "torso", "arm", "left arm", "right arm", "hand", "left hand",
                        "right hand", "leg", "left leg", "right leg", "foot", "left foot", "right foot"})


def _is_bare_body(category: str) -> bool:
    return category in _BARE_BODY


def _with_skin_union(segments: Sequence[Segment]) -> list[Segment]:
    """``segments`` with each person's bare-body parts also merged into one ``skin`` segment (replacing the
    person's own ``skin`` segment, if any)."""
    unions: dict[int, np.ndarray] = {}
    for seg in segments:
        if _is_bare_body(seg.category):
            unions[seg.person] = unions[seg.person] | seg.mask if seg.person in unions else seg.mask.copy()
    if not unions:
        return list(segments)
    out = [s for s in segments if s.category != "skin"]
    out.extend(Segment("skin", mask, person) for person, mask in unions.items())
    return out


# Broad categories that may stand for finer ones of their coarse group without a parent link ("shoes" may be
# sneakers, "upper clothes" a t-shirt): while one (or a descendant: "left shoe") is present, nothing of its
# coarse group is a sure negative.
_LOOSE_UMBRELLAS = frozenset({"skin", "head", "upper clothes", "accessories", "intimate", "shoes", "gloves"})
# Every broad category: never a negative while anything of its coarse group is present.
_UMBRELLAS = _LOOSE_UMBRELLAS | {c.parent for c in vocabulary.CATEGORIES if c.parent}


def _negative_candidates(present: Sequence[str], examples: Sequence[TrainingExample],
                         withheld: frozenset[str]) -> list[str]:
    """Categories that are surely absent from every image of the batch."""
    related: set[str] = set()
    coarse_present = {vocabulary.get(c).coarse for c in present}
    coarse_umbrella = {vocabulary.get(c).coarse for c in present if _ancestors(c) & _LOOSE_UMBRELLAS}
    for c in present:
        related |= _ancestors(c)
    candidates = []
    for name, cat in vocabulary.BY_NAME.items():
        if name == "person" or name in withheld or name in related:
            continue
        if _ancestors(name) & set(present):  # a descendant of something present
            continue
        if (name in _UMBRELLAS and cat.coarse in coarse_present) or cat.coarse in coarse_umbrella:
            continue
        if any(ex.label_space is not None and name not in ex.label_space for ex in examples):
            continue
        candidates.append(name)
    return candidates


def ambiguous_phrases(category: str, label_space: Sequence[str] | None, categories: Sequence[str],
                      finer_names: bool = False) -> list[bool]:
    """Which batch phrases (by canonical ``categories``) a segment of ``category`` may truly be.

    A segment's dataset only rules out what it annotates: LIP's "pants" may be CCP's "jeans", LIP's "upper
    clothes" a "t-shirt", CCP's "skin" a LIP "left arm". A phrase is *ambiguous* for the segment - neither a
    positive nor a sure negative - when it is another category of the same coarse group that the segment's
    dataset does not annotate (``label_space``), a broad category of that group ("upper clothes", "shoes"), a
    parent or child, or a sided category ("left shoe") for an unsided segment ("sneakers").
    The grounding loss leaves ambiguous phrases out of the segment's softmax instead of pushing them down.
    With ``label_space=None`` (unknown) nothing is ambiguous. ``finer_names``: a broad garment or accessory
    category the dataset itself annotates ("shoes" in CCP, beside "sneakers") is a sure negative for its other
    categories, unless it is their parent; broad body categories ("skin") stay ambiguous (a face is skin).
    Without it such a broad name is never pushed down, and at inference it wins over the finer one (CCP val:
    sneakers, boots and heels mostly labelled "shoes").
    """
    if label_space is None:
        return [False] * len(categories)
    space = set(label_space)
    coarse = vocabulary.get(category).coarse
    lineage = _ancestors(category)
    out = []
    for other in categories:
        if other == category or other == "person" or vocabulary.get(other).coarse != coarse:
            out.append(False)
            continue
        related = other in lineage or category in _ancestors(other)  # parent/child: "shoes" vs "left shoe"
        # A sided phrase ("left shoe") may name an unsided segment ("sneakers") whatever the dataset annotates.
        sided = vocabulary.get(other).side is not None and vocabulary.get(category).side is None
        broad = other in _LOOSE_UMBRELLAS and not (finer_names and other in space
                                                    and vocabulary.get(other).kind != "body")
        out.append(related or sided or other not in space or broad)
    return out


def collate(examples: Sequence[TrainingExample], config: TargetConfig,
            rng: np.random.Generator | None = None) -> dict[str, object]:
    """Batch examples: padded images, the batch's phrases and per-image targets for the criterion.

    Returns ``images`` (B, 3, Hp, Wp) zero-padded right/bottom to a multiple of :data:`PAD_MULTIPLE`,
    ``image_sizes`` [(h, w)], ``phrases`` (one per distinct category, first-appearance order, then negatives),
    ``categories`` (canonical name per phrase), ``image_ids`` and ``targets``: per image ``labels`` (long, into
    phrases), ``masks`` (bool (T, Hp, Wp), padded False), ``ignore`` (bool (Hp, Wp), padding True) and
    ``ambiguous`` (bool (T, P): phrases neither positive nor negative for a target, see
    :func:`ambiguous_phrases`).
    ``rng`` is needed for templates and negatives; without it phrases are canonical names and no negatives.
    """
    if not examples:
        raise ValueError("collate needs at least one example")
    sizes = [(int(ex.image.shape[1]), int(ex.image.shape[2])) for ex in examples]
    hp = math.ceil(max(h for h, _ in sizes) / PAD_MULTIPLE) * PAD_MULTIPLE
    wp = math.ceil(max(w for _, w in sizes) / PAD_MULTIPLE) * PAD_MULTIPLE

    present = list(dict.fromkeys(c for ex in examples for c in ex.categories))
    categories = list(present)
    withheld = config.withheld_set()
    categories += list(dict.fromkeys(c for ex in examples for c in ex.absent
                                     if c not in present and c not in withheld and c in vocabulary.BY_NAME))
    if rng is not None and config.num_negative_phrases > 0:
        pool = [c for c in _negative_candidates(present, examples, withheld) if c not in categories]
        take = min(config.num_negative_phrases, len(pool))
        categories += [pool[i] for i in rng.choice(len(pool), size=take, replace=False)] if take else []
    phrases: list[str] = []
    for cat in categories:
        phrase = phrase_for(cat, rng if config.use_templates else None)
        phrases.append(phrase if phrase not in phrases else cat)
    index = {c: i for i, c in enumerate(categories)}

    images = torch.zeros(len(examples), 3, hp, wp, dtype=torch.float32)
    targets = []
    for b, (ex, (h, w)) in enumerate(zip(examples, sizes)):
        images[b, :, :h, :w] = ex.image
        masks = torch.zeros(ex.masks.shape[0], hp, wp, dtype=torch.bool)
        masks[:, :h, :w] = ex.masks
        ignore = torch.ones(hp, wp, dtype=torch.bool)
        ignore[:h, :w] = ex.ignore if ex.ignore is not None else False
        labels = torch.tensor([index[c] for c in ex.categories], dtype=torch.long)
        ambiguous = torch.tensor([ambiguous_phrases(c, ex.label_space, categories, config.finer_names)
                                  for c in ex.categories],
                                 dtype=torch.bool).reshape(len(ex.categories), len(categories))
        targets.append({"labels": labels, "masks": masks, "ignore": ignore, "ambiguous": ambiguous})
    return {
        "images": images,
        "image_sizes": sizes,
        "phrases": phrases,
        "categories": categories,
        "image_ids": [ex.image_id for ex in examples],
        "targets": targets,
    }


def semantic_to_canonical(sample: Sample) -> tuple[np.ndarray, list[str]]:
    """The dataset semantic map in canonical terms, for evaluation.

    Returns ``(labels, names)``: ``labels`` int32 (H, W) with 0 = background, ``i + 1`` = ``names[i]`` (the
    distinct canonical names of the dataset's classes, in class order) and ``IGNORE_ID`` for ignored pixels
    and for classes with no canonical equivalent (other than class 0, background). This matches the
    ``semantic`` map of :meth:`SpectrumModel.parse` when ``names`` are used as prompts.
    """
    canon = canonical_classes(sample.classes)
    names = list(dict.fromkeys(c for c in canon if c is not None))
    lut = np.full(max(len(canon), IGNORE_ID + 1), IGNORE_ID, dtype=np.int32)
    for i, c in enumerate(canon):
        lut[i] = names.index(c) + 1 if c is not None else (0 if i == 0 else IGNORE_ID)
    lut[IGNORE_ID] = IGNORE_ID
    sem = sample.semantic.astype(np.int64)
    labels = np.full(sem.shape, IGNORE_ID, dtype=np.int32)
    valid = (sem >= 0) & (sem < lut.shape[0])
    labels[valid] = lut[sem[valid]]
    if sample.ignore is not None:
        labels[sample.ignore] = IGNORE_ID
    return labels, names
