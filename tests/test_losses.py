from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spectrum_parsing.losses import (
    HungarianMatcher,
    LossConfig,
    SpectrumCriterion,
    point_sample,
    sample_uncertain_points,
)

SMALL = {"num_points": 256}


def _rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def _problem(seed: int = 0):
    """Batch of 2 images: image 0 has 3 targets, image 1 has 2; predictions are perfect copies.

    Returns (outputs, targets, perms) where perms[b][j] is the query predicting target j.
    Target masks are at 32x32, predictions at stride 4 (8x8).
    """
    g = torch.Generator().manual_seed(seed)
    num_queries, num_prompts, low = 6, 3, 8
    low_masks = [
        torch.stack([_rect(low, low, 0, 4, 0, 4), _rect(low, low, 4, 8, 2, 8), _rect(low, low, 1, 6, 5, 7)]),
        torch.stack([_rect(low, low, 0, 8, 0, 3), _rect(low, low, 2, 5, 3, 8)]),
    ]
    labels = [torch.tensor([0, 2, 1]), torch.tensor([1, 1])]
    perms = [torch.tensor([4, 0, 2]), torch.tensor([5, 1])]
    pred_logits = torch.zeros(2, num_queries, num_prompts + 1)
    pred_logits[:, :, -1] = 8.0  # everything is no-object unless matched
    pred_masks = torch.randn(2, num_queries, low, low, generator=g) * 3.0
    targets = []
    for b in range(2):
        for j, q in enumerate(perms[b].tolist()):
            pred_masks[b, q] = (low_masks[b][j].float() * 2 - 1) * 10.0
            pred_logits[b, q, -1] = 0.0
            pred_logits[b, q, labels[b][j]] = 8.0
        full = low_masks[b].repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)  # (T, 32, 32)
        targets.append({"labels": labels[b], "masks": full})
    return {"pred_logits": pred_logits, "pred_masks": pred_masks, "aux_outputs": []}, targets, perms


# ---------------------------------------------------------------------------------------------
# point sampling
# ---------------------------------------------------------------------------------------------


def test_point_sample_matches_hand_computed_bilinear() -> None:
    # 2x2 image with a single hot pixel at (row 0, col 0).
    img = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # With align_corners=False, normalized x maps to pixel x * W - 0.5.
    coords = torch.tensor([[[0.25, 0.25], [0.5, 0.5], [0.375, 0.5], [0.75, 0.75]]])
    out = point_sample(img, coords)
    assert out.shape == (1, 1, 4)
    # pixel centre (0,0) -> 1; image centre -> 1/4; pixel (x=0.25, y=0.5) -> 0.75 * 0.5; (1,1) -> 0
    torch.testing.assert_close(out[0, 0], torch.tensor([1.0, 0.25, 0.375, 0.0]))
    # Within half a pixel of the border the edge value is used (no blending with zero padding).
    corners = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [1.0, 1.0]]])
    torch.testing.assert_close(point_sample(img, corners)[0, 0], torch.tensor([1.0, 1.0, 0.0]))

    # A linear ramp v = 3 * row + col is reproduced exactly by bilinear interpolation.
    ramp = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3).repeat(1, 2, 1, 1)
    ramp[:, 1] *= -1
    coords = torch.tensor([[[0.4, 0.3]]])  # pixel x = 0.7, y = 0.4
    torch.testing.assert_close(point_sample(ramp, coords)[0, :, 0], torch.tensor([1.9, -1.9]))


def test_sample_uncertain_points_range_and_preference() -> None:
    torch.manual_seed(0)
    logits = torch.full((2, 1, 8, 8), 10.0)
    logits[:, :, :, :4] = 0.0  # left half maximally uncertain
    coords = sample_uncertain_points(
        logits, num_points=1000, oversample_ratio=3.0, importance_sample_ratio=0.75
    )
    assert coords.shape == (2, 1000, 2)
    assert coords.dtype == torch.float32
    assert bool((coords >= 0).all()) and bool((coords <= 1).all())
    # The 750 importance-sampled points come first and all lie where |logit| == 0 (x < 3.5 / 8).
    assert bool((coords[:, :750, 0] < 3.5 / 8).all())
    # Overall the uncertain half is strongly favoured over uniform sampling (~0.5).
    assert float((coords[..., 0] < 0.5).float().mean()) > 0.8

    uniform = sample_uncertain_points(
        logits, num_points=1000, oversample_ratio=3.0, importance_sample_ratio=0.0
    )
    assert abs(float((uniform[..., 0] < 0.5).float().mean()) - 0.5) < 0.06


# ---------------------------------------------------------------------------------------------
# matcher
# ---------------------------------------------------------------------------------------------


def test_matcher_recovers_known_permutation() -> None:
    torch.manual_seed(0)
    outputs, targets, perms = _problem()
    indices = HungarianMatcher(LossConfig(**SMALL))(outputs, targets)
    assert len(indices) == 2
    for (src, tgt), perm in zip(indices, perms):
        assert src.dtype == torch.long and tgt.dtype == torch.long
        mapping = dict(zip(tgt.tolist(), src.tolist()))
        assert mapping == dict(enumerate(perm.tolist()))


def test_matcher_handles_empty_targets_and_nonfinite_costs() -> None:
    torch.manual_seed(0)
    outputs, targets, _ = _problem()
    targets[1] = {
        "labels": torch.zeros(0, dtype=torch.long),
        "masks": torch.zeros(0, 32, 32, dtype=torch.bool),
    }
    outputs["pred_masks"][0, 3] = float("nan")  # an unmatched query with a broken mask
    indices = HungarianMatcher(LossConfig(**SMALL))(outputs, targets)
    assert sorted(indices[0][1].tolist()) == [0, 1, 2]
    assert 3 not in indices[0][0].tolist()
    assert indices[1][0].numel() == 0 and indices[1][1].numel() == 0


def test_matcher_rejects_out_of_range_labels() -> None:
    outputs, targets, _ = _problem()
    targets[0]["labels"] = torch.tensor([0, 3, 1])  # P = 3, so 3 is the no-object column
    with pytest.raises(ValueError, match="labels"):
        HungarianMatcher(LossConfig(**SMALL))(outputs, targets)


# ---------------------------------------------------------------------------------------------
# criterion
# ---------------------------------------------------------------------------------------------


def test_near_perfect_predictions_have_lower_loss_than_random() -> None:
    torch.manual_seed(0)
    outputs, targets, _ = _problem()
    criterion = SpectrumCriterion(LossConfig(**SMALL))
    good = criterion(outputs, targets)
    random_outputs = {
        "pred_logits": torch.randn_like(outputs["pred_logits"]),
        "pred_masks": torch.randn_like(outputs["pred_masks"]) * 3.0,
    }
    bad = criterion(random_outputs, targets)
    for key in ("loss_grounding", "loss_bce", "loss_dice", "loss"):
        assert float(good[key]) < float(bad[key]), key
    assert float(good["loss_dice"]) < 0.25 * float(bad["loss_dice"])


def test_grounding_loss_weights_no_object_column() -> None:
    torch.manual_seed(0)
    # One image, 2 queries, P = 2: query 0 perfectly predicts the only target (label 1).
    mask = _rect(16, 16, 0, 16, 0, 8)
    pred_masks = torch.stack([(mask.float() * 2 - 1) * 10, (1 - mask.float() * 2) * 10])[None, :, ::4, ::4]
    logits = torch.tensor([[[0.3, 1.2, -0.5], [0.7, -0.2, 0.4]]])
    config = LossConfig(num_points=64, no_object_weight=0.1, grounding_weight=2.0)
    losses = SpectrumCriterion(config)(
        {"pred_logits": logits, "pred_masks": pred_masks.contiguous()},
        [{"labels": torch.tensor([1]), "masks": mask[None]}],
    )
    log_p = logits[0].log_softmax(-1)
    expected = (-log_p[0, 1] - 0.1 * log_p[1, 2]) / (1.0 + 0.1)
    torch.testing.assert_close(losses["loss_grounding"], 2.0 * expected)


def test_ambiguous_phrases_leave_the_softmax_of_their_target_only() -> None:
    # One image, 2 queries, P = 3: query 0 predicts the target (label 0); phrase 2 is ambiguous for it.
    mask = _rect(16, 16, 0, 16, 0, 8)
    pred_masks = torch.stack([(mask.float() * 2 - 1) * 10, (1 - mask.float() * 2) * 10])[None, :, ::4, ::4]
    logits = torch.tensor([[[1.0, 0.2, 3.0, -0.5], [0.1, 0.4, 0.9, 0.2]]])
    target = {"labels": torch.tensor([0]), "masks": mask[None], "ambiguous": torch.tensor([[False, False, True]])}
    config = LossConfig(num_points=64, no_object_weight=0.5, grounding_weight=1.0)
    loss = SpectrumCriterion(config)({"pred_logits": logits, "pred_masks": pred_masks.contiguous()}, [target])
    keep = torch.tensor([0, 1, 3])  # query 0's softmax without the ambiguous column
    expected = (-logits[0, 0, keep].log_softmax(-1)[0] - 0.5 * logits[0, 1].log_softmax(-1)[3]) / 1.5
    torch.testing.assert_close(loss["loss_grounding"], expected)
    # Raising the ambiguous logit of the matched query changes nothing; the unmatched query still pays for it.
    louder = logits.clone()
    louder[0, 0, 2] = 9.0
    again = SpectrumCriterion(config)({"pred_logits": louder, "pred_masks": pred_masks.contiguous()}, [target])
    torch.testing.assert_close(again["loss_grounding"], loss["loss_grounding"])
    plain = dict(target, ambiguous=torch.zeros(1, 3, dtype=torch.bool))
    without = SpectrumCriterion(config)({"pred_logits": logits, "pred_masks": pred_masks.contiguous()}, [plain])
    assert without["loss_grounding"] > loss["loss_grounding"]


def test_backward_reaches_predictions_including_aux() -> None:
    torch.manual_seed(0)
    outputs, targets, _ = _problem()
    leaves = []
    new_outputs: dict = {"aux_outputs": []}
    for key in ("pred_logits", "pred_masks"):
        t = torch.randn_like(outputs[key]).requires_grad_(True)
        leaves.append(t)
        new_outputs[key] = t
    aux = {k: torch.randn_like(outputs[k]).requires_grad_(True) for k in ("pred_logits", "pred_masks")}
    new_outputs["aux_outputs"].append(aux)
    losses = SpectrumCriterion(LossConfig(**SMALL))(new_outputs, targets)
    losses["loss"].backward()
    for t in [*leaves, *aux.values()]:
        assert t.grad is not None
        assert torch.isfinite(t.grad).all()
        assert float(t.grad.abs().sum()) > 0


def test_all_empty_targets_give_finite_loss_and_backward() -> None:
    torch.manual_seed(0)
    num_prompts = 3
    logits = torch.zeros(2, 5, num_prompts + 1, requires_grad=True)
    masks = torch.randn(2, 5, 8, 8, requires_grad=True)
    empty = {"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 32, 32, dtype=torch.bool)}
    config = LossConfig(**SMALL)
    losses = SpectrumCriterion(config)({"pred_logits": logits, "pred_masks": masks}, [empty, dict(empty)])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_bce"].item() == 0.0 and losses["loss_dice"].item() == 0.0
    # Uniform logits, every query targets no-object: CE = log(P + 1).
    expected = torch.tensor(config.grounding_weight * math.log(4.0))
    torch.testing.assert_close(losses["loss_grounding"].detach(), expected)
    losses["loss"].backward()
    assert logits.grad is not None and masks.grad is not None
    assert float(masks.grad.abs().sum()) == 0.0


def test_aux_keys_follow_deep_supervision() -> None:
    torch.manual_seed(0)
    outputs, targets, _ = _problem()
    outputs["aux_outputs"] = [
        {"pred_logits": outputs["pred_logits"].clone(), "pred_masks": outputs["pred_masks"].clone()}
        for _ in range(2)
    ]
    base = {"loss_grounding", "loss_bce", "loss_dice", "loss"}
    aux_keys = {f"loss_{n}_{i}" for n in ("grounding", "bce", "dice") for i in range(2)}

    with_aux = SpectrumCriterion(LossConfig(**SMALL))(outputs, targets)
    assert set(with_aux) == base | aux_keys
    total = sum(v for k, v in with_aux.items() if k != "loss")
    torch.testing.assert_close(with_aux["loss"], total)

    without = SpectrumCriterion(LossConfig(deep_supervision=False, **SMALL))(outputs, targets)
    assert set(without) == base


def test_mask_losses_exact_for_constant_maps_at_different_resolutions() -> None:
    # Prediction logit 0 everywhere (8x8) vs a full target mask (32x32): every sampled point has
    # p = 0.5, t = 1, wherever it falls, so BCE = log 2 and dice = 1 - (N + 1) / (1.5 N + 1).
    torch.manual_seed(0)
    n = 300
    config = LossConfig(num_points=n, bce_weight=1.0, dice_weight=1.0)
    outputs = {"pred_logits": torch.tensor([[[5.0, 0.0]]]), "pred_masks": torch.zeros(1, 1, 8, 8)}
    targets = [{"labels": torch.tensor([0]), "masks": torch.ones(1, 32, 32, dtype=torch.bool)}]
    losses = SpectrumCriterion(config)(outputs, targets)
    torch.testing.assert_close(losses["loss_bce"], torch.tensor(math.log(2.0)))
    torch.testing.assert_close(losses["loss_dice"], torch.tensor(1.0 - (n + 1) / (1.5 * n + 1)))


def test_criterion_under_cpu_autocast_computes_in_float32() -> None:
    torch.manual_seed(0)
    outputs, targets, _ = _problem()
    outputs = {k: v.bfloat16() if torch.is_tensor(v) else v for k, v in outputs.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = SpectrumCriterion(LossConfig(**SMALL))(outputs, targets)
    assert all(v.dtype == torch.float32 for v in losses.values())
    assert torch.isfinite(losses["loss"])


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------


def test_loss_config_round_trip_and_unknown_key() -> None:
    config = LossConfig(bce_weight=1.0, deep_supervision=False)
    assert LossConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="bogus_weight"):
        LossConfig.from_dict({"bce_weight": 1.0, "bogus_weight": 3.0})
    with pytest.raises(ValueError):
        LossConfig(importance_sample_ratio=1.5)


def test_point_sample_is_differentiable() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    coords = torch.rand(1, 10, 2)
    point_sample(x, coords).sum().backward()
    assert x.grad is not None
    grid = (2 * coords - 1)[:, :, None]
    expected = F.grid_sample(x.detach(), grid, padding_mode="border", align_corners=False)[..., 0]
    torch.testing.assert_close(point_sample(x.detach(), coords), expected)


# ---------------------------------------------------------------------------------------------
# ignore masks
# ---------------------------------------------------------------------------------------------


def test_weighted_point_losses_match_losses_on_valid_points_only() -> None:
    from spectrum_parsing.losses import batch_dice_cost, batch_sigmoid_bce_cost, dice_loss, sigmoid_bce_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 50, generator=g) * 3
    targets = (torch.rand(3, 50, generator=g) > 0.5).float()
    keep = torch.rand(50, generator=g) > 0.4
    weights = keep.float()
    # Dice sums over valid points only: identical to dice on the kept points.
    torch.testing.assert_close(
        dice_loss(logits, targets, 2.0, weights.expand(3, -1)), dice_loss(logits[:, keep], targets[:, keep], 2.0)
    )
    torch.testing.assert_close(
        batch_dice_cost(logits, targets[:2], weights), batch_dice_cost(logits[:, keep], targets[:2, keep])
    )
    # BCE: ignored points contribute zero; still averaged over all N sampled points.
    n_keep = int(keep.sum())
    torch.testing.assert_close(
        sigmoid_bce_loss(logits, targets, 2.0, weights.expand(3, -1)),
        sigmoid_bce_loss(logits[:, keep], targets[:, keep], 2.0) * n_keep / 50,
    )
    torch.testing.assert_close(
        batch_sigmoid_bce_cost(logits, targets[:2], weights),
        batch_sigmoid_bce_cost(logits[:, keep], targets[:2, keep]) * n_keep / 50,
    )
    # All-ones weights change nothing.
    torch.testing.assert_close(dice_loss(logits, targets, 1.0, torch.ones(3, 50)), dice_loss(logits, targets, 1.0))


def test_errors_inside_ignored_region_cost_nothing() -> None:
    config = LossConfig(num_points=512, importance_sample_ratio=0.0)  # same points whatever the predictions
    outputs, targets, perms = _problem()
    wrong = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in outputs.items()}
    for b in range(2):
        wrong["pred_masks"][b, perms[b], :2] *= -1.0  # matched masks wrong in low-res rows 0-1 (y < 10 px)
    ignore = torch.zeros(32, 32, dtype=torch.bool)
    ignore[:16] = True  # covers the corrupted rows plus the half-pixel bilinear blend around them
    with_ignore = [{**t, "ignore": ignore} for t in targets]

    def run(out, tgt):
        torch.manual_seed(0)
        return SpectrumCriterion(config)(out, tgt)

    perfect, corrupted = run(outputs, with_ignore), run(wrong, with_ignore)
    for key in ("loss_grounding", "loss_bce", "loss_dice", "loss"):
        torch.testing.assert_close(corrupted[key], perfect[key])
    # Without the ignore mask the same errors are penalised.
    plain_perfect, plain_corrupted = run(outputs, targets), run(wrong, targets)
    assert float(plain_corrupted["loss_bce"]) > float(plain_perfect["loss_bce"]) + 0.5
    assert float(plain_corrupted["loss_dice"]) > float(plain_perfect["loss_dice"]) + 0.1
    # An all-False ignore mask is the same as none.
    no_ignore = [{**t, "ignore": torch.zeros(32, 32, dtype=torch.bool)} for t in targets]
    torch.testing.assert_close(run(wrong, no_ignore)["loss"], plain_corrupted["loss"])


def test_matcher_costs_skip_ignored_points() -> None:
    torch.manual_seed(0)
    low = 8
    target = _rect(low, low, 0, 8, 0, 4)  # left half
    q0 = target.clone()
    q0[:4] = True  # exact in the bottom half, badly wrong in the top half (16 cells)
    q1 = target.clone()
    q1[4:, 4:6] = True  # exact in the top half, a little wrong in the bottom half (8 cells)
    pred_masks = torch.stack([(q.float() * 2 - 1) * 10 for q in (q0, q1)])[None]
    outputs = {"pred_logits": torch.zeros(1, 2, 2), "pred_masks": pred_masks}
    full = target.repeat_interleave(4, 0).repeat_interleave(4, 1)[None]
    matcher = HungarianMatcher(LossConfig(num_points=4096))
    plain = matcher(outputs, [{"labels": torch.tensor([0]), "masks": full}])
    assert plain[0][0].tolist() == [1]
    ignore = _rect(32, 32, 0, 16, 0, 32)  # the top half does not count
    ignored = matcher(outputs, [{"labels": torch.tensor([0]), "masks": full, "ignore": ignore}])
    assert ignored[0][0].tolist() == [0]


def test_ignore_mask_must_match_target_size() -> None:
    outputs, targets, _ = _problem()
    targets[0]["ignore"] = torch.zeros(16, 16, dtype=torch.bool)
    with pytest.raises(ValueError, match="ignore"):
        SpectrumCriterion(LossConfig(**SMALL))(outputs, targets)
