"""Try-on masks: per person, a LIP-id label map and the *agnostic mask* of a garment category, in the form virtual
try-on pipelines take (VITON-HD, IDM-VTON and OOTDiffusion style preprocessing).

The agnostic mask marks what the try-on model repaints: the garment to replace and the body it covers, grown to
the old garment's silhouette (so its shape does not leak into the new one), while the face, hair, hands, feet
and the garments that stay are kept. Rule per ``garment`` (``upper``, ``lower``, ``dress``), on one person's
pixels with LIP ids (:func:`lip_label_map`):

* ``upper``: upper clothes, coat, dress and gloves, both arms, and the torso quadrilateral (shoulders to hips,
  widened by a fifth of the shoulder width); ``lower``: pants, skirt, dress, jumpsuit, socks and both legs, and
  the hips-to-ankles quadrilateral; ``dress``: both.
* Grown by ``dilate`` (a fraction of the person's box height, default 3%), clipped to the person's box widened
  by the same amount, never onto another person.
* Then the kept parts are removed again: face, hair, hat, sunglasses; hands (arm pixels within 0.4 forearm
  lengths of the wrist and beyond it, elbow and wrist scored :data:`HAND_JOINTS` or more) for ``upper``/``dress``;
  shoes and feet (leg pixels below the ankles) for ``lower``/``dress``; the garments of the other group (pants and
  skirt for ``upper``, upper clothes and coat for ``lower``).

Labels that are not LIP's are mapped to the LIP class of their group (t-shirt, shirt, sweater -> upper-clothes,
jacket -> coat, jeans, shorts -> pants...); with ``preset="lip"`` the label map is LIP's already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .limbs import L_ANKLE, L_ELBOW, L_HIP, L_SHOULDER, L_WRIST, R_ANKLE, R_ELBOW, R_HIP, R_SHOULDER, R_WRIST, hand_zone
from .results import ParsingResult
from .vocab import categories as vocabulary
from .vocab.labels import LIP_LABELS

__all__ = ["GARMENTS", "TryOnMasks", "lip_label_map", "tryon_masks"]

GARMENTS = ("upper", "lower", "dress")

HAT, HAIR, GLOVE, SUNGLASSES, UPPER, DRESS, COAT, SOCKS, PANTS, JUMPSUIT, SCARF, SKIRT = range(1, 13)
FACE, L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = range(13, 20)

_BY_GROUP = {"upper-body clothes": UPPER, "outerwear": COAT, "one-piece": DRESS, "lower-body clothes": PANTS,
             "footwear": L_SHOE, "hair": HAIR}
_LIP_BY_CANONICAL = {name: i for i, name in enumerate(vocabulary.canonical_name(n) for n in LIP_LABELS) if name}


def _lip_id(label: str) -> int:
    """The LIP id of a label: its own LIP class, else its group's (0: no LIP class, e.g. bag, belt)."""
    name = vocabulary.phrase_category(label)
    if name is None:
        return 0
    if name in _LIP_BY_CANONICAL:
        return _LIP_BY_CANONICAL[name]
    category = vocabulary.BY_NAME[name]
    if category.side and category.parent in ("shoes", "foot"):
        return L_SHOE if category.side == "left" else R_SHOE
    if name == "skirt":
        return SKIRT
    if name in ("socks", "stockings", "tights", "leggings"):
        return SOCKS if name == "socks" else PANTS
    if name == "glasses":
        return SUNGLASSES
    if name in ("gloves", "left glove", "right glove"):
        return GLOVE
    return _BY_GROUP.get(category.coarse, 0)


def lip_label_map(result: ParsingResult) -> np.ndarray:
    """The result's label map in LIP ids (uint8; 0 = background and labels LIP has no class for)."""
    if result.preset == "lip":
        return np.asarray(result.label_map).astype(np.uint8)
    lut = np.zeros(max(result.ids, default=0) + 1, dtype=np.uint8)
    for i, label in zip(result.ids, result.labels):
        lut[i] = _lip_id(label)
    return lut[np.asarray(result.label_map)]


@dataclass
class TryOnMasks:
    """One person's try-on inputs: ``agnostic`` bool (H, W), ``label_map`` uint8 (H, W) LIP ids of that person
    only, the garment category and the person's id."""

    person: int
    garment: str
    agnostic: np.ndarray
    label_map: np.ndarray


def _polygon(shape: tuple[int, int], points: Sequence[tuple[float, float]]) -> np.ndarray:
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], fill=255)
    return np.asarray(canvas) > 0


def _quad(keypoints: np.ndarray | None, top: tuple[int, int], bottom: tuple[int, int], shape: tuple[int, int],
          threshold: float = 0.3) -> np.ndarray:
    """The quadrilateral between two keypoint pairs (e.g. shoulders and hips), widened by a fifth of its top
    width on each side; empty when a keypoint is missing."""
    if keypoints is None:
        return np.zeros(shape, dtype=bool)
    k = np.asarray(keypoints, dtype=np.float64)
    if min(k[i, 2] for i in (*top, *bottom)) < threshold:
        return np.zeros(shape, dtype=bool)
    a, b = k[top[0], :2], k[top[1], :2]
    c, d = k[bottom[1], :2], k[bottom[0], :2]
    out = 0.2 * (a - b)  # a fifth of the top width, outwards on each side
    pts = [a + out, b - out, c - out, d + out]
    return _polygon(shape, [tuple(p) for p in pts])


HAND_JOINTS = 0.15
"""The wrist and elbow scores at which a hand is kept: lower than the other rules' 0.3, since a hand repainted is
worse than an arm pixel kept (a fist raised against a wall, elbow and wrist at 0.23: the bundled two-dancers
photo)."""


def _hands(lip: np.ndarray, keypoints: np.ndarray | None, threshold: float = HAND_JOINTS) -> np.ndarray:
    """Arm pixels around and beyond each wrist (the hands), which try-on keeps."""
    keep = np.zeros(lip.shape, dtype=bool)
    if keypoints is None:
        return keep
    for arm, wrist, elbow in ((L_ARM, L_WRIST, L_ELBOW), (R_ARM, R_WRIST, R_ELBOW)):
        w, e = keypoints[wrist], keypoints[elbow]
        if min(w[2], e[2]) >= threshold:
            keep |= (lip == arm) & hand_zone(lip.shape, w[:2], e[:2], back=0.4, min_length=3.0)
    return keep


def _feet(lip: np.ndarray, keypoints: np.ndarray | None, threshold: float = 0.3) -> np.ndarray:
    """Shoes, and leg pixels below the ankles (bare feet), which try-on keeps."""
    keep = np.isin(lip, (L_SHOE, R_SHOE))
    if keypoints is None:
        return keep
    rows = np.arange(lip.shape[0])[:, None]
    for leg, ankle in ((L_LEG, L_ANKLE), (R_LEG, R_ANKLE)):
        if keypoints[ankle, 2] >= threshold:
            keep |= (lip == leg) & (rows > keypoints[ankle, 1])
    return keep


def tryon_masks(result: ParsingResult, garment: str, dilate: float = 0.03) -> list[TryOnMasks]:
    """Per person of ``result``, the agnostic mask of ``garment`` and the person's LIP label map (see the module
    docstring for the rule)."""
    if garment not in GARMENTS:
        raise ValueError(f"garment must be one of {GARMENTS}, got {garment!r}")
    lip = lip_label_map(result)
    shape = lip.shape
    owner = np.full(shape, -1, dtype=np.int64)
    for person in result.persons:
        x0, y0, x1, y1 = person.box
        owner[y0:y1, x0:x1][person.crop.cpu().numpy()] = person.id
    upper, lower = garment in ("upper", "dress"), garment in ("lower", "dress")
    replace = set()
    if upper:
        replace |= {UPPER, COAT, DRESS, GLOVE, L_ARM, R_ARM}
    if lower:
        replace |= {PANTS, SKIRT, DRESS, JUMPSUIT, SOCKS, L_LEG, R_LEG}
    out = []
    for person in result.persons:
        mine = owner == person.id
        own_lip = np.where(mine, lip, 0).astype(np.uint8)
        keypoints = None if person.keypoints is None else np.asarray(person.keypoints, dtype=np.float64)
        region = np.isin(own_lip, sorted(replace))
        if upper:
            region |= _quad(keypoints, (L_SHOULDER, R_SHOULDER), (L_HIP, R_HIP), shape)  # shoulders to hips
        if lower:
            region |= _quad(keypoints, (L_HIP, R_HIP), (L_ANKLE, R_ANKLE), shape)  # hips to ankles
        x0, y0, x1, y1 = person.box
        grow = max(1, round(dilate * (y1 - y0)))
        region = ndimage.binary_dilation(region, iterations=grow)
        box = np.zeros(shape, dtype=bool)
        box[max(0, y0 - grow):y1 + grow, max(0, x0 - grow):x1 + grow] = True
        region &= box & ((owner == -1) | mine)
        kept = np.isin(own_lip, (FACE, HAIR, HAT, SUNGLASSES))
        if upper:
            kept |= _hands(own_lip, keypoints)
        if lower:
            kept |= _feet(own_lip, keypoints)
        if garment == "upper":
            kept |= np.isin(own_lip, (PANTS, SKIRT, L_LEG, R_LEG, L_SHOE, R_SHOE))
        if garment == "lower":
            kept |= np.isin(own_lip, (UPPER, COAT, L_ARM, R_ARM, GLOVE))
        out.append(TryOnMasks(person.id, garment, region & ~kept, own_lip))
    return out
