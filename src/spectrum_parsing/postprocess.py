"""Mask2Former instance inference: person instances (with parts) from one image's decoder outputs, for bottom-up
parsing (people found by the parser itself). Semantic inference and the person assembly shared with top-down
parsing live in :mod:`.processor`.

Inputs are one image's decoder outputs: grounding logits ``(Q, P + 1)`` (last column = no-object) and mask
logits ``(Q, H, W)`` already resized to the output image size
(:meth:`~spectrum_parsing.processor.SpectrumImageProcessor.mask_logits`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .results import PartInstance, PersonInstance, mask_box

__all__ = ["group_instances"]

_INTERSECT_CHUNK_ELEMENTS = 1 << 24
"""Rough element budget (float32 elements) of one chunk of the pairwise intersections."""


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
