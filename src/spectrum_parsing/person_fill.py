"""The person's own pixels the parser left unlabelled, filled.

* **unsure parts extended** (:func:`complete_person`): where the person mask is sure (:data:`FILL_PERSON`), pixels
  the parser left as background are labelled again with a lower background threshold and take a garment the parser
  already labelled on the person, where they touch it (``TopDownConfig.person_fill``); then once more, less sure,
  except on pixels of the person's own skin colour (``TopDownConfig.fill_unsure``, :func:`not_skin_coloured`,
  :data:`FILL_SKIN_GUARD`).
* **specks dropped** (:func:`drop_specks`): a piece of a garment (or hair, a hat, a bag) on the person's own pixels
  much smaller than that label's largest piece there (:data:`SPECK_SHARE`) is unlabelled, before holes are filled
  and again on the pixels the person finally owns (a neighbour may cut a piece), in both modes:
  two coat patches on a sweater, a speck of "right shoe" on a hand, flecks of "pants" beside a desk.
* **holes filled** (:func:`fill_holes`): an unlabelled piece of the person's own pixels enclosed by its labels, at
  most :data:`HOLE_SHARE` of the crop, takes the label most common around it (a patch of coat the parser was
  unsure of).
* **geometric parts** (:func:`split_segments`): the person's pixels no prompt claims go to the PASCAL-Person-Part
  region (:data:`~.scoring.GEOMETRIC_PARTS`) whose body segment they lie in.

Every rule works in place on crop-local ``labels`` (0 = background, else 1 + column index) and their scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from .garments import pool_garments
from .limbs import SEGMENTS, split_by_segments
from .processor import SpectrumImageProcessor
from .scoring import ScoringPlan
from .skin import ColourImage, skin_colour_distance

__all__ = ["SPECK_SHARE", "complete_person", "drop_specks", "fill_holes", "not_skin_coloured", "speck_columns",
           "split_segments"]

FILL_PERSON = 0.9
"""The person-mask probability above which :func:`complete_person` trusts that a pixel is the person's (at 0.5,
masks spilling onto a neighbour made ``cihp_dev`` mIoU 30.4 -> 28.6)."""


FILL_MIN_SHARE = 0.02
"""A part :func:`complete_person` extends already covers at least this share of the person's own pixels (a speck
of scarf is not grown into a scarf)."""


FILL_SKIN_GUARD = 3.0
"""The second, less sure fill (``TopDownConfig.fill_unsure``) leaves the pixels within this many standard deviations
of the colour of the person's own bare skin alone: on ``cihp_dev`` the parser leaves bare chests unlabelled where
it half-believes the shirt around them, and a fill without the guard made them shirt (torso-skin IoU 30.6 ->
24.2). Any of 2-5 measured the same there (scratch runs)."""


def not_skin_coloured(labels: torch.Tensor, plan: ScoringPlan, crop: np.ndarray | ColourImage, person: torch.Tensor
                       ) -> torch.Tensor | None:
    """Crop-local bool mask of the pixels farther than :data:`FILL_SKIN_GUARD` standard deviations from the colour
    of the person's own labelled bare skin (body parts and skin, on its mask); None when it shows too little skin
    for a colour model (nothing then to keep a garment from)."""
    seeds = torch.zeros(labels.shape, dtype=torch.bool)
    for i in (*plan.skin, *plan.body):
        seeds |= labels == i + 1
    colour = skin_colour_distance(crop, (seeds & (person > 0.5)).numpy())
    return None if colour is None else torch.from_numpy(colour > FILL_SKIN_GUARD)


def complete_person(labels: torch.Tensor, best: torch.Tensor, scores: torch.Tensor, columns: Sequence[int],
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
    pool_garments(part, top, picked, pooled, columns, floor)
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


SPECK_SHARE = 0.1
"""A connected piece of one label on the person's own pixels smaller than this share of that label's largest piece
there is a speck (:func:`drop_specks`; ``TopDownConfig.speck_share`` overrides it, 0 turns it off). Recorded through
the shipped path (``benchmarks/bench_body_parts.py --rows spectrum-lite2 "spectrum-lite2:speck_share=0"``, the rule
on vs off, in the crops, on the owned pixels and in the whole-image parse): `lip_dev` body 63.25 -> 63.36 (hair 66.2
-> 66.8), all 36.29 -> 36.36, absent prompts 0.41% -> 0.37%; `cihp_dev` part AP^r 21.4 -> 21.7; CCP val and VITON
level (``bench_quality.py``: 15.29 / 56.90, 76.68 / 53.18). At 0.3 (scratch, crops only) `lip_dev` all 36.43 but CCP
coarse 56.47 and `cihp_dev` mIoU 35.92: it drops real pieces of a garment an arm splits."""


def speck_columns(plan: ScoringPlan, person_index: int) -> list[int]:
    """The columns of ``plan`` whose specks are dropped: every reported label (hands, shoes and geometric parts
    included) but the bare skin the pose names and the person."""
    skin = set(plan.body) | set(plan.skin)
    return [i for i in range(len(plan.prompts)) if i not in skin and i not in plan.hidden and i != person_index]


def drop_specks(labels: torch.Tensor, person: torch.Tensor, columns: Sequence[int], share: float = SPECK_SHARE
                ) -> None:
    """In crop-local ``labels`` (in place): the connected pieces of each of ``columns`` on the person's own pixels
    (``person`` probability > 0.5) smaller than ``share`` of that column's largest piece there become unlabelled
    (:func:`fill_holes` may then give an enclosed one the label around it). Body parts are not ``columns``: two
    hands or legs are pieces of one person's skin, and they are named by pose."""
    if share <= 0 or not columns:
        return
    own = (person > 0.5).numpy()
    flat = labels.numpy()
    drop = np.zeros(flat.shape, dtype=bool)
    present = set(np.unique(flat[own]).tolist())
    for column in columns:
        if column + 1 not in present:
            continue
        mask = (flat == column + 1) & own
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # labelled within the label's extent only
        pieces, count = ndimage.label(mask[box])
        if count < 2:
            continue
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        sizes[0] = 0
        small = sizes < share * sizes.max()
        small[0] = False
        drop[box] |= small[pieces]
    if drop.any():
        labels[torch.from_numpy(drop)] = 0


HOLE_SHARE = 0.01
"""Holes in a person's labels (unlabelled pieces enclosed by labelled pixels, on the person's own mask) of at most
this share of the crop take the label most common around them (a patch of coat the parser was unsure of)."""


def fill_holes(labels: torch.Tensor, best: torch.Tensor, person: torch.Tensor) -> None:
    """In crop-local ``labels`` (and their scores ``best``): small enclosed unlabelled pieces on the person's own
    pixels (``person`` probability > 0.5) take the label most common on their rim, scored as the rim (in place;
    nothing when :data:`HOLE_SHARE` is 0)."""
    if HOLE_SHARE <= 0:
        return
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


def split_segments(labels: torch.Tensor, best: torch.Tensor, person: torch.Tensor, plan: ScoringPlan,
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
