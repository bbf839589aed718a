"""Garment rules of a person's labels, from the parser's scores and the labels alone (no pose but for eyewear).

* **similar garments compete together** (:func:`pool_garments`): the prompts of one coarse group
  (:data:`~.scoring.POOLED_GARMENTS`: upper-body clothes with outerwear; lower-body clothes; footwear) share the
  grounding softmax, so where their summed score beats every other column and the background, the best of them
  labels the pixel (:data:`SUBGROUP_CHOICE`).
* **competitors contest** (:func:`contest`): a contested prompt keeps a pixel only where it beats the hidden pooled
  competitors, unless they are barely surer over the whole region it claims (:data:`CONTEST_REGION_RATIO`).
* **consistent garments** (:func:`consistent_garments`): one lower-body garment per person (:data:`LOWER_VOTE`:
  trousers with a patch called skirt), no one-piece garment over trousers (:data:`ONE_PIECE_VOTE`,
  :data:`SYNONYM_VOTE`) nor as a sliver over a skirt (:data:`SKIRT_VOTE`).
* **eyewear over both eyes** (:func:`eyewear_over_both_eyes`): sunglasses that do not reach both seen eyes are a
  shadowed eye.

Every rule works in place on crop-local ``labels`` (0 = background, else 1 + column index).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from .processor import SpectrumImageProcessor
from .scoring import POOLED_GARMENTS, UPPER_GARMENT_GROUPS, coarse_group
from .vocab import categories as vocabulary

__all__ = ["EYEWEAR", "GarmentRoles", "best_of", "consistent_garments", "contest", "eyewear_over_both_eyes",
           "garment_groups", "garment_roles", "pool_garments"]

SUBGROUP_CHOICE = True
"""In a pooled group of two coarse categories (upper-body clothes with outerwear), the label is the best phrase of
the category whose phrases together score more, not the best phrase overall: "coat" alone outscored each of "t-shirt",
"shirt" and "blouse" on a third of CCP's tops, whose score those split (CCP val coarse 55.93 -> 56.71, fine 15.08 ->
15.22; lip_dev and cihp_dev unchanged: one phrase per category there). On the bundled group photo (default
prompts) the coat blotches on a pink sweater become its top, and a streak of a teal jacket becomes "upper clothes";
asking the sums to differ by 1.25x or 1.5x shrank both alike (CCP 56.31 / 56.20)."""


def garment_groups(prompts: Sequence[str], columns: Sequence[int]) -> list[list[list[int]]]:
    """The ``columns`` of ``prompts`` grouped by :data:`~.scoring.POOLED_GARMENTS` (groups of two or more columns),
    each group as its sub-groups, one per coarse category in it (upper-body clothes, outerwear)."""
    groups = []
    for coarse in POOLED_GARMENTS:
        subs = [sub for sub in ([c for c in columns if coarse_group(prompts[c]) == name] for name in coarse) if sub]
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


def best_of(scores: torch.Tensor, columns: Sequence[int]) -> torch.Tensor:
    """The pixel-wise best of the ``columns`` of ``scores`` (zeros for none), without a (P, H, W) copy."""
    out = torch.zeros(scores.shape[1:], dtype=scores.dtype)
    for c in columns:
        torch.maximum(out, scores[c], out=out)
    return out


def pool_garments(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor,
                  groups: Sequence[Sequence[Sequence[int]]], columns: Sequence[int], background_threshold: float
                  ) -> None:
    """In crop-local ``labels`` (and their scores ``best``), group by group (:func:`garment_groups`): where a group's
    columns together (scores summed) beat every other column and the background, the best-scored column of its
    sub-group with the highest summed score (in place): whether a top or an outer layer is decided by all the
    phrases of each, as whether a garment is there at all is (:data:`SUBGROUP_CHOICE`)."""
    if not groups:
        return
    grouped = {c for group in groups for sub in group for c in sub}
    alone = best_of(scores, [c for c in columns if c not in grouped])  # shared by every group's rival
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
                        upper=[i for i in columns if coarse_group(prompts[i]) in UPPER_GARMENT_GROUPS])


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


def eyewear_over_both_eyes(labels: torch.Tensor, eyewear: Sequence[int], face: int | None,
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
