"""Set criterion with text grounding for Mask2Former-style open-vocabulary parsing.

The decoder produces, for every query, grounding logits against the ``P`` prompt phrases of the
batch plus a learned no-object column, and a mask logit map at stride 4. Training follows the
Mask2Former recipe: queries are matched one-to-one to ground-truth masks with a Hungarian matcher
(grounding + sigmoid BCE + dice cost on randomly sampled points), then

* ``L_G``: a cross-entropy over the ``P + 1`` columns (matched queries target their phrase,
  unmatched ones the no-object column, which is down-weighted);
* ``L_BCE`` / ``L_DICE``: mask losses on matched pairs, evaluated on importance-sampled points.

A target may carry an optional ``ignore`` bool (H, W) mask (same size as its ``masks``): sampled points are
weighted by the bilinearly sampled valid mask ``1 - ignore``, so points on ignored pixels count neither in
``L_BCE`` / ``L_DICE`` nor in the matcher's BCE / dice costs. The BCE is still divided by the number of
sampled points (ignored points contribute zero); dice sums run over valid points only.

All loss math runs in float32 with autocast disabled, on whatever device the predictions live on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from .configs import ConfigError, LossConfig

__all__ = [
    "LossConfig",
    "HungarianMatcher",
    "SpectrumCriterion",
    "point_sample",
    "sample_uncertain_points",
    "batch_sigmoid_bce_cost",
    "batch_dice_cost",
    "sigmoid_bce_loss",
    "dice_loss",
]

# Finite stand-in for NaN/inf entries of a matching cost matrix (scipy rejects non-finite costs).
_COST_CLAMP = 1e8


# --------------------------------------------------------------------------------------------
# Point sampling
# --------------------------------------------------------------------------------------------


def point_sample(inputs: Tensor, coords: Tensor) -> Tensor:
    """Bilinearly sample ``inputs`` (N, C, H, W) at normalized xy ``coords`` (N, P, 2) in [0, 1].

    Uses ``grid_sample`` with ``align_corners=False``: x = 0 / 1 are the left / right edges of the
    image (not pixel centres), so ``x * W - 0.5`` is the continuous pixel column. Within half a
    pixel of the border the edge value is used (``padding_mode="border"``) rather than blending
    with zeros, so e.g. a full target mask samples to exactly 1 everywhere. Returns (N, C, P).
    """
    if inputs.dim() != 4:
        raise ValueError(f"point_sample expects inputs of shape (N, C, H, W), got {tuple(inputs.shape)}")
    if coords.dim() != 3 or coords.shape[-1] != 2:
        raise ValueError(f"point_sample expects coords of shape (N, P, 2), got {tuple(coords.shape)}")
    grid = (2.0 * coords - 1.0).unsqueeze(2).to(inputs.dtype)  # (N, P, 1, 2)
    out = F.grid_sample(inputs, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.squeeze(3)


@torch.no_grad()
def sample_uncertain_points(
    logits: Tensor,
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
) -> Tensor:
    """Pick ``num_points`` coords per mask, biased towards uncertain (|logit| ~ 0) locations.

    ``int(num_points * oversample_ratio)`` uniform points are drawn, the
    ``int(importance_sample_ratio * num_points)`` with the smallest |logit| are kept and the rest
    are new uniform random points. ``logits`` is (N, 1, h, w); returns float32 (N, num_points, 2)
    xy coords in [0, 1] on the logits' device.
    """
    if logits.dim() != 4 or logits.shape[1] != 1:
        raise ValueError(f"expected logits of shape (N, 1, h, w), got {tuple(logits.shape)}")
    if oversample_ratio < 1.0:
        raise ConfigError(f"oversample_ratio must be >= 1, got {oversample_ratio}")
    if not 0.0 <= importance_sample_ratio <= 1.0:
        raise ConfigError(f"importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}")
    n = logits.shape[0]
    device = logits.device
    num_sampled = max(int(num_points * oversample_ratio), num_points)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain

    coords = torch.rand(n, num_sampled, 2, device=device)
    parts = []
    if num_uncertain > 0:
        point_logits = point_sample(logits.detach().float(), coords)  # (N, 1, S)
        uncertainty = -point_logits.abs().squeeze(1)  # (N, S); higher = more uncertain
        idx = torch.topk(uncertainty, k=num_uncertain, dim=1).indices  # (N, K)
        parts.append(torch.gather(coords, 1, idx.unsqueeze(-1).expand(-1, -1, 2)))
    if num_random > 0:
        parts.append(torch.rand(n, num_random, 2, device=device))
    return torch.cat(parts, dim=1)


# --------------------------------------------------------------------------------------------
# Mask costs / losses on sampled points
# --------------------------------------------------------------------------------------------


def batch_sigmoid_bce_cost(inputs: Tensor, targets: Tensor, weights: Tensor | None = None) -> Tensor:
    """Pairwise mean sigmoid BCE between logits (Q, N) and soft targets (T, N); returns (Q, T).

    ``weights`` (N,) in [0, 1] scales every point's term (0 = ignored); the mean stays over all N points.
    """
    n = inputs.shape[1]
    pos = F.softplus(-inputs)  # -log(sigmoid(x)): BCE against target 1
    neg = F.softplus(inputs)  # -log(1 - sigmoid(x)): BCE against target 0
    if weights is not None:
        pos, neg = pos * weights, neg * weights
    return (pos @ targets.T + neg @ (1.0 - targets).T) / max(n, 1)


def batch_dice_cost(inputs: Tensor, targets: Tensor, weights: Tensor | None = None) -> Tensor:
    """Pairwise soft dice cost between logits (Q, N) and targets (T, N); returns (Q, T).

    ``weights`` (N,) in [0, 1] weights every point in the sums (0 = ignored).
    """
    probs = inputs.sigmoid()
    if weights is not None:
        probs, targets = probs * weights, targets * weights
    numerator = 2.0 * (probs @ targets.T)
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


def sigmoid_bce_loss(inputs: Tensor, targets: Tensor, num_masks: float, weights: Tensor | None = None) -> Tensor:
    """Per-mask mean sigmoid BCE of logits (M, N) vs targets (M, N), summed and divided by num_masks.

    ``weights`` (M, N) in [0, 1] scales every point's term (0 = ignored); the mean stays over all N points.
    """
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    if weights is not None:
        loss = loss * weights
    return loss.mean(1).sum() / num_masks


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float, weights: Tensor | None = None) -> Tensor:
    """Soft dice loss of logits (M, N) vs targets (M, N), summed over masks and divided by num_masks.

    ``weights`` (M, N) in [0, 1] weights every point in the sums (0 = ignored).
    """
    probs = inputs.sigmoid()
    if weights is not None:
        probs, targets = probs * weights, targets * weights
    numerator = 2.0 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    loss = 1.0 - (numerator + 1.0) / (denominator + 1.0)
    return loss.sum() / num_masks


def _target_masks(target: Mapping[str, Tensor], device: torch.device) -> Tensor:
    """Return a target's masks as float32 (T, 1, H, W) on ``device``."""
    return target["masks"].to(device=device, dtype=torch.float32).unsqueeze(1)


def _ignore_mask(target: Mapping[str, Any], device: torch.device) -> Tensor | None:
    """A target's optional ``ignore`` mask as float32 (1, 1, H, W) on ``device``, checked against its masks."""
    ignore = target.get("ignore")
    if ignore is None:
        return None
    masks = target["masks"]
    if ignore.dim() != 2 or tuple(ignore.shape) != tuple(masks.shape[-2:]):
        raise ValueError(
            f"target 'ignore' must be a (H, W) mask matching its masks {tuple(masks.shape[-2:])}, "
            f"got {tuple(ignore.shape)}"
        )
    return ignore.to(device=device, dtype=torch.float32)[None, None]


def _valid_weights(ignore: Tensor | None, coords: Tensor) -> Tensor | None:
    """Per-point validity weights ``1 - ignore`` (N, P) at ``coords`` (N, P, 2); None without an ignore mask."""
    if ignore is None:
        return None
    sampled = point_sample(ignore.expand(coords.shape[0], -1, -1, -1), coords).squeeze(1)
    return (1.0 - sampled).clamp_(0.0, 1.0)


def _check_labels(labels: Tensor, num_prompts: int) -> None:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_prompts):
        raise ValueError(
            f"target labels must lie in [0, {num_prompts}) (the batch's prompt phrases), "
            f"got range [{int(labels.min())}, {int(labels.max())}]"
        )


# --------------------------------------------------------------------------------------------
# Matcher
# --------------------------------------------------------------------------------------------


class HungarianMatcher:
    """One-to-one assignment of queries to target masks (grounding + BCE + dice cost)."""

    def __init__(self, config: LossConfig | None = None) -> None:
        self.config = config if config is not None else LossConfig()

    @torch.no_grad()
    def __call__(
        self, outputs: Mapping[str, Any], targets: Sequence[Mapping[str, Tensor]]
    ) -> list[tuple[Tensor, Tensor]]:
        """Return, per image, (query indices, target indices) as int64 CPU tensors."""
        pred_logits: Tensor = outputs["pred_logits"]
        pred_masks: Tensor = outputs["pred_masks"]
        if len(targets) != pred_logits.shape[0]:
            raise ValueError(f"got {len(targets)} targets for a batch of {pred_logits.shape[0]} images")
        cfg = self.config
        device = pred_logits.device
        num_prompts = pred_logits.shape[-1] - 1
        indices: list[tuple[Tensor, Tensor]] = []
        with torch.autocast(device_type=device.type, enabled=False):
            for b, target in enumerate(targets):
                labels = target["labels"].to(device=device, dtype=torch.long)
                if labels.numel() == 0:
                    empty = torch.empty(0, dtype=torch.long)
                    indices.append((empty, empty.clone()))
                    continue
                _check_labels(labels, num_prompts)
                probs = pred_logits[b].float().softmax(-1)  # (Q, P+1)
                cost_grounding = -probs[:, labels]  # (Q, T)

                out_mask = pred_masks[b].float().unsqueeze(1)  # (Q, 1, h, w)
                tgt_mask = _target_masks(target, device)  # (T, 1, H, W)
                # Same random points for all predictions and targets of this image.
                coords = torch.rand(1, cfg.num_points, 2, device=device)
                out_pts = point_sample(out_mask, coords.expand(out_mask.shape[0], -1, -1)).squeeze(1)
                tgt_pts = point_sample(tgt_mask, coords.expand(tgt_mask.shape[0], -1, -1)).squeeze(1)
                valid = _valid_weights(_ignore_mask(target, device), coords)
                valid = None if valid is None else valid[0]  # (N,): same points for every pair

                cost = (
                    cfg.match_grounding_weight * cost_grounding
                    + cfg.match_bce_weight * batch_sigmoid_bce_cost(out_pts, tgt_pts, valid)
                    + cfg.match_dice_weight * batch_dice_cost(out_pts, tgt_pts, valid)
                )
                cost = torch.nan_to_num(cost, nan=_COST_CLAMP, posinf=_COST_CLAMP, neginf=-_COST_CLAMP)
                cost_np = cost.clamp(-_COST_CLAMP, _COST_CLAMP).cpu().numpy().astype(np.float32)
                rows, cols = linear_sum_assignment(cost_np)
                indices.append(
                    (torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long))
                )
        return indices


# --------------------------------------------------------------------------------------------
# Criterion
# --------------------------------------------------------------------------------------------


class SpectrumCriterion(nn.Module):
    """Mask2Former set criterion with a grounding (phrase-classification) loss.

    ``forward(outputs, targets)`` returns weighted ``loss_grounding`` / ``loss_bce`` /
    ``loss_dice`` for the final layer, the same with suffix ``_{i}`` for every auxiliary layer
    (when ``deep_supervision``), and their sum under ``loss``.
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else LossConfig()
        self.matcher = HungarianMatcher(self.config)

    # ---- helpers -------------------------------------------------------------------------

    def _num_masks(self, targets: Sequence[Mapping[str, Tensor]], device: torch.device) -> float:
        num = torch.tensor(
            [float(sum(int(t["labels"].numel()) for t in targets))], dtype=torch.float32, device=device
        )
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(num)
            num = num / torch.distributed.get_world_size()
        return max(float(num.item()), 1.0)

    def loss_grounding(
        self,
        pred_logits: Tensor,
        targets: Sequence[Mapping[str, Tensor]],
        indices: Sequence[tuple[Tensor, Tensor]],
    ) -> Tensor:
        """Weighted-mean cross-entropy over the P + 1 grounding columns.

        A target's optional ``ambiguous`` (bool (T, P)) phrases are left out of its matched query's softmax
        (neither positive nor negative: e.g. "jeans" for a LIP "pants" segment).
        """
        logits = pred_logits.float()
        bsz, num_queries, num_cols = logits.shape
        no_object = num_cols - 1
        target_classes = torch.full((bsz, num_queries), no_object, dtype=torch.long, device=logits.device)
        excluded = torch.zeros_like(logits, dtype=torch.bool)
        for b, (src, tgt) in enumerate(indices):
            if src.numel():
                src, tgt = src.to(logits.device), tgt.to(logits.device)
                labels = targets[b]["labels"].to(device=logits.device, dtype=torch.long)
                target_classes[b, src] = labels[tgt]
                ambiguous = targets[b].get("ambiguous")
                if ambiguous is not None and ambiguous.numel():
                    excluded[b, src, : num_cols - 1] = ambiguous.to(logits.device)[tgt]
        if bool(excluded.any()):
            logits = logits.masked_fill(excluded, torch.finfo(logits.dtype).min / 2)
        class_weight = torch.ones(num_cols, dtype=torch.float32, device=logits.device)
        class_weight[no_object] = self.config.no_object_weight
        return F.cross_entropy(logits.transpose(1, 2), target_classes, weight=class_weight)

    def loss_masks(
        self,
        pred_masks: Tensor,
        targets: Sequence[Mapping[str, Tensor]],
        indices: Sequence[tuple[Tensor, Tensor]],
        num_masks: float,
    ) -> tuple[Tensor, Tensor]:
        """Unweighted (BCE, dice) losses on matched pairs, on importance-sampled points."""
        cfg = self.config
        device = pred_masks.device
        batch_idx = torch.cat(
            [torch.full((src.numel(),), b, dtype=torch.long) for b, (src, _) in enumerate(indices)]
        ).to(device)
        src_idx = torch.cat([src for src, _ in indices]).to(device)
        if src_idx.numel() == 0:
            zero = pred_masks.float().sum() * 0.0
            return zero, zero.clone()

        src_masks = pred_masks[batch_idx, src_idx].float().unsqueeze(1)  # (M, 1, h, w)
        coords = sample_uncertain_points(
            src_masks, cfg.num_points, cfg.oversample_ratio, cfg.importance_sample_ratio
        )  # (M, N, 2)
        # Target masks are sampled per image so different images may have different sizes.
        with torch.no_grad():
            labels_per_image = []
            weights_per_image = []
            any_ignore = False
            start = 0
            for b, (src, tgt) in enumerate(indices):
                m = src.numel()
                if m == 0:
                    continue
                image_coords = coords[start : start + m]
                tgt_masks = _target_masks(targets[b], device)[tgt.to(device)]  # (m, 1, H, W)
                labels_per_image.append(point_sample(tgt_masks, image_coords).squeeze(1))
                valid = _valid_weights(_ignore_mask(targets[b], device), image_coords)
                any_ignore = any_ignore or valid is not None
                weights_per_image.append(valid if valid is not None else torch.ones_like(labels_per_image[-1]))
                start += m
            point_labels = torch.cat(labels_per_image, dim=0)  # (M, N)
            point_weights = torch.cat(weights_per_image, dim=0) if any_ignore else None  # (M, N)
        point_logits = point_sample(src_masks, coords).squeeze(1)  # (M, N)
        return (
            sigmoid_bce_loss(point_logits, point_labels, num_masks, point_weights),
            dice_loss(point_logits, point_labels, num_masks, point_weights),
        )

    def _layer_losses(
        self,
        outputs: Mapping[str, Any],
        targets: Sequence[Mapping[str, Tensor]],
        num_masks: float,
        suffix: str,
    ) -> dict[str, Tensor]:
        cfg = self.config
        indices = self.matcher(outputs, targets)
        l_g = self.loss_grounding(outputs["pred_logits"], targets, indices)
        l_bce, l_dice = self.loss_masks(outputs["pred_masks"], targets, indices, num_masks)
        return {
            f"loss_grounding{suffix}": cfg.grounding_weight * l_g,
            f"loss_bce{suffix}": cfg.bce_weight * l_bce,
            f"loss_dice{suffix}": cfg.dice_weight * l_dice,
        }

    # ---- forward -------------------------------------------------------------------------

    def forward(
        self, outputs: Mapping[str, Any], targets: Sequence[Mapping[str, Tensor]]
    ) -> dict[str, Tensor]:
        """Compute all weighted losses and their sum ``loss``."""
        device = outputs["pred_logits"].device
        with torch.autocast(device_type=device.type, enabled=False):
            num_masks = self._num_masks(targets, device)
            losses = self._layer_losses(outputs, targets, num_masks, suffix="")
            if self.config.deep_supervision:
                for i, aux in enumerate(outputs.get("aux_outputs") or []):
                    losses.update(self._layer_losses(aux, targets, num_masks, suffix=f"_{i}"))
            losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses
