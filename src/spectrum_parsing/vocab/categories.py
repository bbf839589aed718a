"""The canonical vocabulary: every dataset's labels map into these categories, kept in this one place.

Each category has a kind (``person`` for the full-body mask, ``body`` part, ``clothing``, ``accessory``), an
optional side (``left``/``right``, the person's own side) with its mirror category, a generic parent
(``left shoe`` -> ``shoes``), synonyms used to parse user prompts, and a coarse group (used for CCP's coarse
mIoU: background, skin, hair, upper-body clothes, lower-body clothes, one-piece, outerwear, footwear, bags,
small accessories).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

COARSE_GROUPS: tuple[str, ...] = (
    "background", "skin", "hair", "upper-body clothes", "lower-body clothes", "one-piece", "outerwear",
    "footwear", "bags", "small accessories",
)


@dataclass(frozen=True)
class Category:
    """One canonical category."""

    name: str
    kind: str  # "person" | "body" | "clothing" | "accessory"
    coarse: str  # one of COARSE_GROUPS ("" for person)
    synonyms: tuple[str, ...] = ()
    side: str | None = None
    parent: str | None = None
    mirror: str | None = field(default=None)


def _sided(base: str, kind: str, coarse: str, parent: str, synonyms: tuple[str, ...] = ()) -> list[Category]:
    left, right = f"left {base}", f"right {base}"
    return [
        Category(left, kind, coarse, tuple(f"left {s}" for s in synonyms), "left", parent, right),
        Category(right, kind, coarse, tuple(f"right {s}" for s in synonyms), "right", parent, left),
    ]


_C = Category
CATEGORIES: list[Category] = [
    _C("person", "person", "", ("human", "people", "full body", "man", "woman")),
    # ---- body parts
    _C("hair", "body", "hair"),
    _C("face", "body", "skin", ("head skin",)),
    _C("head", "body", "skin"),
    _C("neck", "body", "skin"),
    _C("skin", "body", "skin", ("body skin",)),
    _C("torso", "body", "skin", ("upper body skin", "chest")),
    _C("arm", "body", "skin", ("arms",)),
    *_sided("arm", "body", "skin", "arm"),
    _C("upper arm", "body", "skin", ("upper arms",)),
    *_sided("upper arm", "body", "skin", "upper arm"),
    _C("lower arm", "body", "skin", ("lower arms", "forearm", "forearms")),
    *_sided("lower arm", "body", "skin", "lower arm", ("forearm",)),
    _C("hand", "body", "skin", ("hands",)),
    *_sided("hand", "body", "skin", "hand"),
    _C("leg", "body", "skin", ("legs",)),
    *_sided("leg", "body", "skin", "leg"),
    _C("upper leg", "body", "skin", ("upper legs", "thigh", "thighs")),
    *_sided("upper leg", "body", "skin", "upper leg", ("thigh",)),
    _C("lower leg", "body", "skin", ("lower legs", "shin", "calf")),
    *_sided("lower leg", "body", "skin", "lower leg", ("shin",)),
    _C("foot", "body", "skin", ("feet",)),
    *_sided("foot", "body", "skin", "foot"),
    # ---- clothing: upper body
    _C("upper clothes", "clothing", "upper-body clothes", ("upper-clothes", "top wear", "upper garment")),
    _C("t-shirt", "clothing", "upper-body clothes", ("tee", "t shirt", "tshirt")),
    _C("shirt", "clothing", "upper-body clothes"),
    _C("blouse", "clothing", "upper-body clothes"),
    _C("top", "clothing", "upper-body clothes", ("tank top", "crop top")),
    _C("sweater", "clothing", "upper-body clothes", ("pullover",)),
    _C("sweatshirt", "clothing", "upper-body clothes"),
    _C("hoodie", "clothing", "upper-body clothes"),
    _C("jumper", "clothing", "upper-body clothes"),
    _C("vest", "clothing", "upper-body clothes", ("waistcoat",)),
    _C("bra", "clothing", "upper-body clothes"),
    # ---- clothing: outerwear
    _C("coat", "clothing", "outerwear", ("overcoat",)),
    _C("jacket", "clothing", "outerwear"),
    _C("blazer", "clothing", "outerwear"),
    _C("cardigan", "clothing", "outerwear"),
    _C("cape", "clothing", "outerwear", ("poncho",)),
    _C("suit", "clothing", "outerwear"),
    # ---- clothing: lower body
    _C("pants", "clothing", "lower-body clothes", ("trousers",)),
    _C("jeans", "clothing", "lower-body clothes", ("denim pants",)),
    _C("shorts", "clothing", "lower-body clothes"),
    _C("skirt", "clothing", "lower-body clothes"),
    _C("leggings", "clothing", "lower-body clothes"),
    _C("tights", "clothing", "lower-body clothes", ("pantyhose",)),
    _C("stockings", "clothing", "lower-body clothes"),
    _C("socks", "clothing", "lower-body clothes", ("sock",)),
    _C("panties", "clothing", "lower-body clothes", ("underpants",)),
    # ---- clothing: one-piece
    _C("dress", "clothing", "one-piece", ("gown", "saree", "sari")),
    _C("jumpsuit", "clothing", "one-piece", ("jumpsuits", "overalls")),
    _C("romper", "clothing", "one-piece", ("playsuit",)),
    _C("bodysuit", "clothing", "one-piece"),
    _C("swimwear", "clothing", "one-piece", ("swimsuit", "bikini")),
    _C("intimate", "clothing", "one-piece", ("lingerie", "underwear")),
    # ---- footwear
    _C("shoes", "clothing", "footwear", ("shoe", "footwear")),
    *_sided("shoe", "clothing", "footwear", "shoes"),
    _C("boots", "clothing", "footwear", ("boot",)),
    _C("heels", "clothing", "footwear", ("high heels",)),
    _C("pumps", "clothing", "footwear"),
    _C("sneakers", "clothing", "footwear", ("trainers",)),
    _C("sandals", "clothing", "footwear"),
    _C("flats", "clothing", "footwear"),
    _C("loafers", "clothing", "footwear"),
    _C("clogs", "clothing", "footwear"),
    _C("wedges", "clothing", "footwear"),
    # ---- bags
    _C("bag", "accessory", "bags", ("handbag", "backpack")),
    _C("purse", "accessory", "bags"),
    _C("wallet", "accessory", "bags"),
    # ---- small accessories
    _C("hat", "accessory", "small accessories", ("cap", "beanie")),
    _C("glasses", "accessory", "small accessories", ("eyeglasses", "spectacles")),
    _C("sunglasses", "accessory", "small accessories"),
    _C("scarf", "accessory", "small accessories"),
    _C("gloves", "accessory", "small accessories", ("glove",)),
    *_sided("glove", "accessory", "small accessories", "gloves"),
    _C("belt", "accessory", "small accessories"),
    _C("tie", "accessory", "small accessories", ("necktie",)),
    _C("necklace", "accessory", "small accessories"),
    _C("earrings", "accessory", "small accessories"),
    _C("bracelet", "accessory", "small accessories"),
    _C("ring", "accessory", "small accessories"),
    _C("watch", "accessory", "small accessories", ("wristwatch",)),
    _C("accessories", "accessory", "small accessories", ("accessory",)),
]

BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
if len(BY_NAME) != len(CATEGORIES):  # pragma: no cover - guards edits of the table above
    raise RuntimeError("duplicate canonical category names")

_LOOKUP: dict[str, str] = {}
for _cat in CATEGORIES:
    for _alias in (_cat.name, *_cat.synonyms):
        _LOOKUP.setdefault(_alias.lower(), _cat.name)


def get(name: str) -> Category:
    """The canonical category called ``name`` (KeyError naming it if unknown)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown canonical category {name!r}") from None


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _words(text: str) -> str:
    """Lower-case words separated by single spaces ('_' and camelCase split words; '-' is kept)."""
    return " ".join(_CAMEL.sub(" ", text).lower().replace("_", " ").split())


def canonical_name(text: str) -> str | None:
    """Map a label or prompt (name or synonym, any case, '-'/'_' and camelCase as spaces) to a canonical name,
    or None."""
    key = _words(text)
    return _LOOKUP.get(key) or _LOOKUP.get(key.replace("-", " "))


def is_category_name(text: str) -> bool:
    """Whether ``text`` is a category's own name (any case, '-'/'_' and camelCase as spaces), not a synonym or a
    free phrase: "Upper-clothes" and "left shoe" are, "saree" (a dress) and "red dress" are not."""
    key = _words(text)
    return key in BY_NAME or key.replace("-", " ") in BY_NAME


def side_pairs(classes: Sequence[str]) -> list[tuple[int, int]]:
    """(left id, right id) pairs of a label list: a class naming a left category and the class naming its mirror
    (the first class of each canonical name); the one source of left/right pairs for flips."""
    first: dict[str, int] = {}
    for i, label in enumerate(classes):
        name = canonical_name(label)
        if name is not None:
            first.setdefault(name, i)
    return sorted((i, first[BY_NAME[name].mirror]) for name, i in first.items()
                  if BY_NAME[name].side == "left" and BY_NAME[name].mirror in first)


def mirror(name: str) -> str:
    """The left/right counterpart of a sided category; the name itself otherwise."""
    return BY_NAME[name].mirror or name


def names(kind: str | None = None) -> list[str]:
    """Canonical names, optionally only those of one kind."""
    return [c.name for c in CATEGORIES if kind is None or c.kind == kind]


def phrase_category(text: str) -> str | None:
    """The canonical category a free phrase names: its own canonical name, else the longest category name or
    synonym it contains as whole words ("red summer dress" -> "dress", "high heels" -> "heels"), else None."""
    name = canonical_name(text)
    if name is not None:
        return name
    words = f" {_words(text.replace('-', ' '))} "
    found = [key for key in _LOOKUP if f" {key} " in words]
    return _LOOKUP[max(found, key=len)] if found else None


def coarse_group(name: str) -> str:
    """The coarse group of a canonical category (``background`` for None)."""
    return "background" if name is None else BY_NAME[name].coarse
