"""Prompt phrases: key-phrase templates, synonyms in templates, and the expanded body-part (EBP) prompts.

Shared by training (phrases drawn per batch) and inference (EBP prompts added to the user's); imports nothing
from data, training or inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import categories as vocabulary

__all__ = ["EBP_PROMPTS", "PROMPT_TEMPLATES", "phrase_for", "templates_for", "training_phrases", "with_article",
           "with_ebp"]

# Key-phrase templates by group. "{}" takes the bare phrase ("left hand", "jeans"); "{a}" takes it with an
# indefinite article when it is a singular count noun ("a t-shirt", "an overcoat", but "jeans", "hair").
# Every category uses the "any" templates plus those of its group: clothing is *worn*, bags are *carried*,
# body parts are *a person's*; the gendered variants are only used where they read naturally (garments,
# accessories, and the head region: hair, face, head, neck) and never for the rest of the body.
PROMPT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "any": ("{}", "a photo of {a}", "a picture of {a}"),
    "person": ("a full-body photo of {a}", "{a} standing", "a photo of {a} in the street"),
    "body": ("a photo of a person's {}", "the {} of a person", "a person's {}"),
    "head": ("a woman's {}", "a man's {}", "a close-up of a person's {}"),
    "clothing": (
        "a person wearing {a}", "a woman wearing {a}", "a man wearing {a}", "a photo of a person wearing {a}",
        "{a} worn by a person",
    ),
    "accessory": ("a person wearing {a}", "a person with {a}", "a woman with {a}", "a man with {a}"),
    "bags": ("a person carrying {a}", "a woman with {a}", "a man with {a}"),
}

_HEAD_REGION = frozenset({"hair", "face", "head", "neck"})

# Expanded body-part prompts ("+ EBP"): the fine body-part set the vocabulary supports, added at inference.
EBP_PROMPTS: tuple[str, ...] = (
    "hair", "face", "neck", "torso",
    "left upper arm", "right upper arm", "left lower arm", "right lower arm", "left hand", "right hand",
    "left upper leg", "right upper leg", "left lower leg", "right lower leg", "left foot", "right foot",
)

_UNCOUNTABLE = frozenset({"hair", "skin", "intimate", "body skin", "head skin", "upper body skin", "lingerie"})


def with_article(phrase: str) -> str:
    """The phrase with "a"/"an" if it reads as a singular count noun ("a t-shirt"; "jeans", "hair" unchanged)."""
    words = phrase.split()
    if not words:
        return phrase
    last = words[-1].lower()
    plural = last.endswith("s") and not last.endswith("ss")
    if plural or last in {"feet", "people"} or phrase.lower() in _UNCOUNTABLE or last.endswith("wear"):
        return phrase
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def templates_for(category: str) -> tuple[str, ...]:
    """Templates that suit a canonical category (see :data:`PROMPT_TEMPLATES`)."""
    cat = vocabulary.get(category)
    if cat.kind == "person":
        return PROMPT_TEMPLATES["any"] + PROMPT_TEMPLATES["person"]
    if cat.kind == "body":
        extra = PROMPT_TEMPLATES["head"] if cat.name in _HEAD_REGION else ()
        return PROMPT_TEMPLATES["any"] + PROMPT_TEMPLATES["body"] + extra
    if cat.coarse == "bags":
        return PROMPT_TEMPLATES["any"] + PROMPT_TEMPLATES["bags"]
    return PROMPT_TEMPLATES["any"] + PROMPT_TEMPLATES[cat.kind]


def _fill(template: str, phrase: str) -> str:
    return template.replace("{a}", with_article(phrase)).replace("{}", phrase)


def phrase_for(category: str, rng: np.random.Generator | None = None) -> str:
    """Training phrase for a canonical category: a random synonym in a random template.

    With ``rng=None`` the canonical name itself (deterministic).
    """
    cat = vocabulary.get(category)
    if rng is None:
        return cat.name
    names = (cat.name, *cat.synonyms)
    name = names[int(rng.integers(len(names)))]
    templates = templates_for(category)
    return _fill(templates[int(rng.integers(len(templates)))], name)


def training_phrases() -> list[str]:
    """Every phrase :func:`phrase_for` can return, for every category (each synonym in each template, and the
    bare canonical names), sorted: what a prompt table must hold for training to run without the text encoder."""
    phrases = set()
    for cat in vocabulary.CATEGORIES:
        phrases.add(cat.name)
        for name in (cat.name, *cat.synonyms):
            phrases.update(_fill(t, name) for t in templates_for(cat.name))
    return sorted(phrases)


def with_ebp(prompts: Sequence[str], ebp: Sequence[str] = EBP_PROMPTS) -> list[str]:
    """User prompts (first, in order) followed by the EBP prompts (``ebp``) they do not already cover.

    User prompts that differ only in case/spacing are kept once (the first spelling). An EBP prompt is
    skipped when a user prompt names the same canonical category (e.g. "Hair" or "head skin" covers "hair",
    "face").
    """
    seen: dict[str, str] = {}
    for prompt in prompts:
        seen.setdefault(" ".join(prompt.lower().split()), prompt)
    out = list(seen.values())
    taken = {vocabulary.canonical_name(p) or key for key, p in seen.items()}
    out.extend(p for p in ebp if p not in taken)
    return out
