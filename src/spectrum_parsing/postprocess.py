"""Inference post-processing: person instances with their parts, and semantic label maps.

Inputs are one image's decoder outputs: grounding logits ``(Q, P + 1)`` (last column =
no-object) and mask logits ``(Q, H, W)`` already resized to the output image size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "PartInstance",
    "PersonInstance",
    "mask_box",
    "region_mask",
    "group_instances",
    "semantic_map",
    "bottom_up_parse",
]

# Rough element budgets for one chunk of the chunked computations (float32 elements).
_SEMANTIC_CHUNK_ELEMENTS = 1 << 24
_INTERSECT_CHUNK_ELEMENTS = 1 << 24


def region_mask(local: Tensor, x0: int, y0: int, size: tuple[int, int]) -> dict[str, Any]:
    """Constructor arguments (``box``, ``crop``, ``size``) of a mask given inside a region at ``(x0, y0)`` of an
    image of ``size`` (H, W), without building the full-size mask."""
    bx0, by0, bx1, by1 = mask_box(local)
    x0, y0 = int(x0), int(y0)
    return {"box": (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1), "crop": local[by0:by1, bx0:bx1].bool().clone(),
            "size": (int(size[0]), int(size[1]))}


class _BoxedMask:
    """Mask storage shared by :class:`PartInstance` and :class:`PersonInstance`: only the crop inside the mask's
    box is kept (``box``, ``crop``, ``size`` fields), so a result's memory grows with the area its parts cover,
    not with (number of parts) x (image pixels). ``mask`` gives the full-size bool tensor, built on access."""

    def __post_init__(self, mask: Tensor | None) -> None:
        if mask is not None:  # a full-size mask given: keep its box only
            for key, value in region_mask(mask, 0, 0, tuple(mask.shape)).items():
                setattr(self, key, value)
            return
        if self.crop is None:
            raise ValueError(f"{type(self).__name__} needs a mask (or its crop, box and size)")
        x0, y0, x1, y1 = self.box
        if tuple(self.crop.shape) != (y1 - y0, x1 - x0) or not (0 <= x0 <= x1 <= self.size[1]
                                                                 and 0 <= y0 <= y1 <= self.size[0]):
            raise ValueError(f"crop of shape {tuple(self.crop.shape)} does not fit box {self.box} in {self.size}")

    def _full_mask(self) -> Tensor:
        """The full-size bool ``(H, W)`` mask, rebuilt from the stored crop (a new tensor on every access)."""
        out = torch.zeros(self.size, dtype=torch.bool, device=self.crop.device)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.crop
        return out

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (use this, not ``dataclasses.replace``, which would rebuild the full mask)."""
        from dataclasses import fields

        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        if "mask" in changes:  # a new full-size mask replaces the stored crop
            kwargs.pop("crop")
        kwargs.update(changes)
        return type(self)(**kwargs)

    @property
    def area(self) -> int:
        """Number of mask pixels."""
        return int(self.crop.sum())


@dataclass(eq=False)
class PartInstance(_BoxedMask):
    """A body part or garment instance attached to a person.

    ``mask``: bool ``(H, W)`` at the image size (built from ``crop`` on each access); ``box``: tight
    ``x0, y0, x1, y1`` (end-exclusive); ``crop``: the mask inside ``box``; ``size``: ``(H, W)``."""

    label: str
    prompt_index: int
    score: float
    mask: InitVar[Tensor | None] = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    crop: Tensor | None = field(default=None, repr=False)
    size: tuple[int, int] = (0, 0)


@dataclass(eq=False)
class PersonInstance(_BoxedMask):
    """A person instance with its parts sorted by descending score (mask storage as :class:`PartInstance`).

    ``keypoints``: ``(17, 3)`` x, y, score in pixels (COCO order) when a pose detector found the person."""

    id: int
    score: float
    mask: InitVar[Tensor | None] = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    parts: list[PartInstance] = field(default_factory=list)
    keypoints: Any = None
    crop: Tensor | None = field(default=None, repr=False)
    size: tuple[int, int] = (0, 0)


# Set after the dataclasses are built (their ``mask = None`` default would hide an inherited property), so
# ``mask`` stays an init-only constructor argument and reads as the full-size tensor.
PartInstance.mask = PersonInstance.mask = property(  # type: ignore[assignment]
    _BoxedMask._full_mask, doc="Full-size bool (H, W) mask, built from the crop on access.")


def mask_box(mask: Tensor) -> tuple[int, int, int, int]:
    """Tight ``(x0, y0, x1, y1)`` box of a 2-D mask, end-exclusive; ``(0, 0, 0, 0)`` if empty."""
    if mask.dim() != 2:
        raise ValueError(f"mask_box expects a 2-D mask, got shape {tuple(mask.shape)}")
    m = mask.bool()
    rows = torch.nonzero(m.any(dim=1)).flatten()
    if rows.numel() == 0:
        return (0, 0, 0, 0)
    cols = torch.nonzero(m.any(dim=0)).flatten()
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _pairwise_intersections(a: Tensor, b: Tensor) -> Tensor:
    """|a_i & b_j| for bool masks a (N, H, W) and b (M, H, W); returns (N, M) int64.

    Computed as float matmuls over row chunks (each chunk has < 2**24 pixels, so float32 counts
    are exact) to avoid materialising an (N, M, H, W) tensor.
    """
    n, height, width = a.shape
    m = b.shape[0]
    out = torch.zeros(n, m, dtype=torch.long, device=a.device)
    if n == 0 or m == 0 or height == 0 or width == 0:
        return out
    per_row = (n + m) * width
    rows = max(1, min(_INTERSECT_CHUNK_ELEMENTS // max(per_row, 1), (1 << 24) // max(width, 1)))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        fa = a[:, y0:y1].reshape(n, -1).float()
        fb = b[:, y0:y1].reshape(m, -1).float()
        out += (fa @ fb.T).round().long()
    return out


def _dedupe(order: Sequence[int], masks: Sequence[Tensor], iou_threshold: float) -> list[int]:
    """Greedy mask NMS: walk ``order`` (descending score), drop masks with IoU > threshold to a kept one."""
    order = list(order)
    if len(order) <= 1:
        return order
    stacked = torch.stack([masks[i] for i in order])
    inter = _pairwise_intersections(stacked, stacked).cpu()
    area = inter.diagonal()
    union = area[:, None] + area[None, :] - inter
    iou = (inter.double() / union.clamp(min=1).double()).tolist()
    kept: list[int] = []
    for a in range(len(order)):
        if all(iou[a][b] <= iou_threshold for b in kept):
            kept.append(a)
    return [order[a] for a in kept]


def _check_inputs(pred_logits: Tensor, pred_masks: Tensor) -> None:
    if pred_logits.dim() != 2:
        raise ValueError(f"pred_logits must be (Q, P+1), got shape {tuple(pred_logits.shape)}")
    if pred_masks.dim() != 3:
        raise ValueError(f"pred_masks must be (Q, H, W), got shape {tuple(pred_masks.shape)}")
    if pred_logits.shape[0] != pred_masks.shape[0]:
        raise ValueError(
            f"pred_logits has {pred_logits.shape[0]} queries but pred_masks has {pred_masks.shape[0]}"
        )


@torch.no_grad()
def group_instances(
    pred_logits: Tensor,
    pred_masks: Tensor,
    prompts: Sequence[str],
    person_index: int | None,
    score_threshold: float = 0.3,
    mask_threshold: float = 0.5,
    min_part_overlap: float = 0.5,
    dedupe_iou: float = 0.7,
    max_instances: int = 200,
) -> list[PersonInstance]:
    """Turn one image's predictions into persons (by descending score) with their parts.

    Instances are scored as in Mask2Former instance inference (top ``max_instances`` (query,
    prompt) pairs of the no-object-free softmax, times the mean sigmoid inside the binary mask).
    Person instances (prompt ``person_index``) are deduplicated by mask IoU; every other instance
    joins the person covering the largest fraction of its mask, or is dropped when that fraction
    is below ``min_part_overlap``. Part masks are kept as predicted (not clipped to the person).
    """
    if person_index is None:
        raise ValueError(
            "group_instances needs a person prompt: pass person_index, the index of the person "
            "phrase in prompts (add e.g. 'person' to the prompt list if it is missing)"
        )
    _check_inputs(pred_logits, pred_masks)
    num_queries, num_cols = pred_logits.shape
    num_prompts = num_cols - 1
    if len(prompts) != num_prompts:
        raise ValueError(f"got {len(prompts)} prompts but pred_logits has {num_prompts} prompt columns")
    if not 0 <= person_index < num_prompts:
        raise ValueError(f"person_index {person_index} out of range for {num_prompts} prompts")
    if num_queries == 0 or num_prompts == 0 or max_instances <= 0:
        return []

    probs = pred_logits.float().softmax(-1)[:, :-1]  # (Q, P)
    k = min(max_instances, num_queries * num_prompts)
    top_probs, flat_idx = probs.flatten().topk(k, sorted=True)
    # score = prob * quality with quality <= 1, so pairs below the threshold can never be kept.
    keep = top_probs >= score_threshold
    top_probs, flat_idx = top_probs[keep], flat_idx[keep]
    if flat_idx.numel() == 0:
        return []
    query_idx = torch.div(flat_idx, num_prompts, rounding_mode="floor")
    prompt_idx = flat_idx % num_prompts

    # Binary masks and mask quality only for the distinct selected queries.
    uniq_queries, inverse = torch.unique(query_idx, return_inverse=True)
    sig = pred_masks[uniq_queries].float().sigmoid()  # (U, H, W)
    binary = sig > mask_threshold
    area = binary.flatten(1).sum(1)
    quality = (sig * binary).flatten(1).sum(1) / area.clamp(min=1)
    del sig
    scores = top_probs * quality[inverse]
    valid = (scores >= score_threshold) & (area[inverse] > 0)

    cand_scores = scores[valid].tolist()
    cand_prompts = prompt_idx[valid].tolist()
    cand_masks = [binary[u] for u in inverse[valid].tolist()]
    cand_areas = area[inverse[valid]].cpu()
    order = sorted(range(len(cand_scores)), key=lambda i: -cand_scores[i])

    person_order = [i for i in order if cand_prompts[i] == person_index]
    person_keep = _dedupe(person_order, cand_masks, dedupe_iou)
    persons = [
        PersonInstance(
            id=pid,
            score=float(cand_scores[i]),
            mask=cand_masks[i].clone(),  # own storage: no aliasing between returned masks
            box=mask_box(cand_masks[i]),
            parts=[],
        )
        for pid, i in enumerate(person_keep)
    ]
    if not persons:
        return []

    # Assign parts: the person with the largest coverage |part & person| / |part| (ties: the
    # higher-scored person), dropped if that coverage is below min_part_overlap.
    part_order = [i for i in order if cand_prompts[i] != person_index]
    assigned: list[list[int]] = [[] for _ in persons]
    if part_order:
        part_masks = torch.stack([cand_masks[i] for i in part_order])  # (N, H, W)
        person_masks = torch.stack([cand_masks[i] for i in person_keep])  # (M, H, W)
        inter = _pairwise_intersections(part_masks, person_masks).cpu()
        part_area = cand_areas[torch.tensor(part_order, dtype=torch.long)]
        coverage = inter.double() / part_area.clamp(min=1).double()[:, None]
        best_cov, best_person = coverage.max(dim=1)
        for n, i in enumerate(part_order):
            if float(best_cov[n]) >= min_part_overlap:
                assigned[int(best_person[n])].append(i)

    for person, members in zip(persons, assigned):
        # ``members`` is already in descending score order; dedupe within each label.
        by_label: dict[str, list[int]] = {}
        for i in members:
            by_label.setdefault(prompts[cand_prompts[i]], []).append(i)
        kept = [i for idx in by_label.values() for i in _dedupe(idx, cand_masks, dedupe_iou)]
        kept.sort(key=lambda i: -cand_scores[i])
        person.parts = [
            PartInstance(
                label=prompts[cand_prompts[i]],
                prompt_index=int(cand_prompts[i]),
                score=float(cand_scores[i]),
                mask=cand_masks[i].clone(),
                box=mask_box(cand_masks[i]),
            )
            for i in kept
        ]
    return persons


@torch.no_grad()
def semantic_map(
    pred_logits: Tensor,
    pred_masks: Tensor,
    exclude: Sequence[int] = (),
    background_threshold: float = 0.5,
    return_scores: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Mask2Former semantic inference: (H, W) long map, 0 = background, else 1 + prompt index.

    Per-prompt scores are ``einsum('qp,qhw->phw', softmax(logits)[:, :-1], sigmoid(masks))``;
    prompt columns in ``exclude`` (e.g. the person prompt) never win. Pixels whose best score is
    below ``background_threshold`` are background. Computed in row chunks to bound memory.
    ``return_scores``: also return the (H, W) float score of each pixel's best prompt.
    """
    _check_inputs(pred_logits, pred_masks)
    num_queries, num_cols = pred_logits.shape
    num_prompts = num_cols - 1
    height, width = pred_masks.shape[-2:]
    device = pred_masks.device
    excluded = set()
    for e in exclude:
        if not 0 <= int(e) < num_prompts:
            raise ValueError(f"exclude index {e} out of range for {num_prompts} prompts")
        excluded.add(int(e))
    keep = [p for p in range(num_prompts) if p not in excluded]
    out = torch.zeros(height, width, dtype=torch.long, device=device)
    scores = torch.zeros(height, width, dtype=torch.float32, device=device)
    if not keep or num_queries == 0 or height == 0 or width == 0:
        return (out, scores) if return_scores else out

    keep_t = torch.tensor(keep, dtype=torch.long, device=device)
    probs = pred_logits.float().softmax(-1)[:, keep_t].to(device)  # (Q, K)
    per_row = (num_queries + len(keep)) * width
    rows = max(1, _SEMANTIC_CHUNK_ELEMENTS // max(per_row, 1))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        sig = pred_masks[:, y0:y1].float().sigmoid()
        seg = torch.einsum("qk,qhw->khw", probs, sig)  # (K, h, W)
        best, arg = seg.max(dim=0)
        labels = keep_t[arg] + 1
        labels[best < background_threshold] = 0
        out[y0:y1] = labels
        scores[y0:y1] = best
    return (out, scores) if return_scores else out


@torch.no_grad()
def bottom_up_parse(
    pred_logits: Tensor,
    pred_masks: Tensor,
    prompts: Sequence[str],
    person_index: int,
    threshold: float = 0.3,
    mask_threshold: float = 0.5,
    min_part_overlap: float = 0.5,
    min_person_pixels: int = 64,
    min_part_pixels: int = 16,
) -> tuple[list[PersonInstance], Any]:
    """Persons and label map of one whole-image prediction, with the top-down path's contract.

    Person instances (:func:`group_instances`) own the pixels where they score highest (people never share a
    pixel); each person's parts are the :func:`semantic_map` labels on its pixels (mean best score at least
    ``threshold``, at least ``min_part_pixels``), and the (H, W) int32 label map (0 = background, else 1 +
    prompt index) is rendered from those parts, so it and the persons agree pixel for pixel.
    """
    import numpy as np

    found = group_instances(pred_logits, pred_masks, prompts, person_index, score_threshold=threshold,
                            mask_threshold=mask_threshold, min_part_overlap=min_part_overlap)
    semantic, best = semantic_map(pred_logits, pred_masks, exclude=(person_index,), return_scores=True)
    semantic, best = semantic.cpu(), best.cpu()
    owner = torch.full(semantic.shape, -1, dtype=torch.long)
    for k in reversed(range(len(found))):  # by descending score: the best-scored person wins a shared pixel
        owner[found[k].mask.cpu()] = k
    persons: list[PersonInstance] = []
    label_map = np.zeros(tuple(semantic.shape), dtype=np.int32)
    for k, person in enumerate(found):
        own = owner == k
        if int(own.sum()) < min_person_pixels:
            continue
        parts = []
        for label in torch.unique(semantic[own]).tolist():
            part = own & (semantic == label)
            area = int(part.sum())
            score = float(best[part].mean()) if area else 0.0
            if label == 0 or area < min_part_pixels or score < threshold:
                continue
            parts.append(PartInstance(label=prompts[label - 1], prompt_index=label - 1, score=score, mask=part))
            label_map[part.numpy()] = label
        parts.sort(key=lambda p: -p.score)
        persons.append(person.replace(id=len(persons), mask=own, parts=parts))
    return persons, label_map
