"""Trainable decoder: deformable attention, masked attention, grounding head and the full SpectrumDecoder."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from spectrum_parsing.configs import STRIDES, ConfigError, DecoderConfig
from spectrum_parsing.decoder import GroundingHead, MultiScaleDeformableAttention, SpectrumDecoder
from spectrum_parsing.decoder.layers import Attention

SMALL = {
    "in_channels": {"4": 8, "8": 8, "16": 8, "32": 8}, "text_dim": 16, "hidden_dim": 32, "mask_dim": 32,
    "num_queries": 8, "num_heads": 4, "encoder_layers": 1, "decoder_layers": 3, "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
}
IMAGE = (64, 96)  # (H, W) of the image the features come from


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _features(batch: int = 2, channels: dict[str, int] | None = None, seed: int = 0) -> dict[int, torch.Tensor]:
    channels = channels or SMALL["in_channels"]
    g = _gen(seed)
    return {s: torch.randn(batch, channels[str(s)], IMAGE[0] // s, IMAGE[1] // s, generator=g) for s in STRIDES}


def _text(num: int = 3, dim: int = 16, seed: int = 1) -> torch.Tensor:
    return F.normalize(torch.randn(num, dim, generator=_gen(seed)), dim=-1)


def _decoder(seed: int = 0, **overrides) -> SpectrumDecoder:
    torch.manual_seed(seed)
    return SpectrumDecoder(DecoderConfig(**{**SMALL, **overrides}))


def _identity(linear: nn.Linear) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.eye(linear.out_features, linear.in_features))
        linear.bias.zero_()


# ---------------------------------------------------------------------------------------------
# multi-scale deformable attention
# ---------------------------------------------------------------------------------------------


def _plain_msda(dim: int, heads: int, levels: int, points: int = 1) -> MultiScaleDeformableAttention:
    """Identity value/output projections, zero offsets, uniform attention weights."""
    attn = MultiScaleDeformableAttention(dim, heads, levels, points)
    _identity(attn.value_proj)
    _identity(attn.output_proj)
    with torch.no_grad():
        attn.sampling_offsets.weight.zero_()
        attn.sampling_offsets.bias.zero_()
        attn.attention_weights.weight.zero_()
        attn.attention_weights.bias.zero_()
    return attn


def _cell_centres(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    return torch.stack((xs.flatten(), ys.flatten()), -1)[None]  # (1, h * w, 2), xy


def _bilinear(v: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Hand-written bilinear sample of ``v`` (H, W, C) at pixel coordinates (x, y), zeros outside."""
    h, w, _ = v.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(v.shape[-1])
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * v[yy, xx]
    return out


def test_msda_at_cell_centres_returns_the_value_map() -> None:
    """1 head, 1 level, 1 point, no offsets: each query reads exactly the value at its reference point."""
    h, w, dim = 3, 5, 4
    attn = _plain_msda(dim, 1, 1)
    value = torch.randn(2, h * w, dim, generator=_gen())
    query = torch.randn(2, h * w, dim, generator=_gen(1))
    out = attn(query, _cell_centres(h, w), value, [(h, w)])
    torch.testing.assert_close(out, value, atol=1e-5, rtol=0)


def test_msda_two_levels_with_offsets_matches_hand_bilinear() -> None:
    """Offsets are in cells of each level; samples are bilinear with zero padding; weights are a softmax."""
    dim = 3
    shapes = [(2, 3), (4, 4)]
    attn = _plain_msda(dim, 1, 2)
    offsets = [(0.5, 0.0), (0.0, -1.0)]  # (dx, dy) in cells, per level
    with torch.no_grad():
        attn.sampling_offsets.bias.copy_(torch.tensor(offsets).flatten())
        attn.attention_weights.bias.copy_(torch.tensor([0.0, math.log(3.0)]))  # softmax -> 0.25, 0.75
    maps = [torch.randn(h, w, dim, generator=_gen(i)) for i, (h, w) in enumerate(shapes)]
    value = torch.cat([m.reshape(-1, dim) for m in maps])[None]
    ref = (0.4, 0.3)
    out = attn(torch.randn(1, 1, dim, generator=_gen(5)), torch.tensor([[ref]]), value, shapes)

    expected = torch.zeros(dim)
    for m, (h, w), (dx, dy), weight in zip(maps, shapes, offsets, (0.25, 0.75)):
        # align_corners=False: normalised x maps to pixel x * w - 0.5.
        expected += weight * _bilinear(m, ref[0] * w + dx - 0.5, ref[1] * h + dy - 0.5)
    # The level-1 sample lies partly above the map (y = -0.3): zero padding must reduce it.
    assert ref[1] * 4 - 1.0 - 0.5 < 0
    torch.testing.assert_close(out[0, 0], expected, atol=1e-5, rtol=0)


def test_msda_heads_read_their_own_channels() -> None:
    """Head k uses channels [k * d, (k + 1) * d) and its own offsets."""
    h, w, dim = 3, 4, 4
    attn = _plain_msda(dim, 2, 1)
    with torch.no_grad():
        attn.sampling_offsets.bias.copy_(torch.tensor([0.0, 0.0, 1.0, 0.0]))  # head 1 looks one cell right
    value = torch.randn(1, h * w, dim, generator=_gen())
    out = attn(torch.zeros(1, h * w, dim), _cell_centres(h, w), value, [(h, w)])
    grid = value.view(h, w, dim)
    shifted = torch.cat([grid[:, 1:], torch.zeros(h, 1, dim)], dim=1)  # zero padding past the right edge
    torch.testing.assert_close(out.view(h, w, dim)[..., :2], grid[..., :2], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.view(h, w, dim)[..., 2:], shifted[..., 2:], atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------
# dense attention with a mask
# ---------------------------------------------------------------------------------------------


def test_attention_bool_mask() -> None:
    torch.manual_seed(0)
    attn = Attention(8, 2).eval()
    query = torch.randn(1, 3, 8, generator=_gen(1))
    key = torch.randn(1, 5, 8, generator=_gen(2))
    value = torch.randn(1, 5, 8, generator=_gen(3))
    mask = torch.tensor([[False, False, True, False, False],   # query 0: only key 2
                         [True, False, False, False, True],    # query 1: keys 0 and 4
                         [True, True, True, True, True]])[None, None]
    out = attn(query, key, value, mask)
    with torch.no_grad():
        torch.testing.assert_close(out[0, 0], attn.out_proj(attn.v_proj(value[0, 2])), atol=1e-6, rtol=0)
    # Changing the values a query may not see leaves it unchanged; a query that sees them changes.
    changed = value.clone()
    changed[0, [1, 3]] += 5.0
    out2 = attn(query, key, changed, mask)
    torch.testing.assert_close(out2[0, :2], out[0, :2], atol=1e-6, rtol=0)
    assert (out2[0, 2] - out[0, 2]).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------
# grounding head
# ---------------------------------------------------------------------------------------------


def test_grounding_head_scores_matching_text_highest() -> None:
    torch.manual_seed(0)
    head = GroundingHead(8, 8, temperature=0.07)
    _identity(head.proj)
    text = _text(3, 8)
    order = torch.tensor([2, 0, 1, 1])
    queries = torch.stack([text[order] * 3.0, text[order.flip(0)] * 0.5])  # (2, 4, 8), any positive scale
    embeds = head.embed(queries)
    logits = head(embeds, text)
    assert logits.shape == (2, 4, 3 + 1)
    scale = 1 / 0.07
    for b, o in enumerate((order, order.flip(0))):
        assert torch.equal(logits[b].argmax(-1), o)
        torch.testing.assert_close(logits[b, torch.arange(4), o], torch.full((4,), scale), atol=1e-4, rtol=0)
    # Text embeddings are normalised inside: their scale does not matter.
    torch.testing.assert_close(head(embeds, text * 7.0), logits, atol=1e-5, rtol=0)
    # A query equal to the learned no-object embedding scores the last column highest.
    no_obj = head(head.embed(head.no_object.detach()[None, None]), text)
    assert no_obj[0, 0].argmax() == 3


def test_grounding_logit_scale_is_clamped_at_100() -> None:
    head = GroundingHead(4, 4)
    _identity(head.proj)
    with torch.no_grad():
        head.logit_scale.fill_(math.log(1000.0))
    text = _text(2, 4)
    logits = head(head.embed(text[None]), text)
    torch.testing.assert_close(logits[0, 0, 0], torch.tensor(100.0), atol=1e-3, rtol=0)
    assert logits.abs().max() <= 100.0 + 1e-3


# ---------------------------------------------------------------------------------------------
# SpectrumDecoder
# ---------------------------------------------------------------------------------------------


def test_decoder_output_shapes() -> None:
    decoder = _decoder()
    out = decoder(_features(), _text(3))
    h4, w4 = IMAGE[0] // 4, IMAGE[1] // 4
    assert out["pred_masks"].shape == (2, 8, h4, w4)
    assert out["pred_logits"].shape == (2, 8, 3 + 1)
    assert out["pred_embeds"].shape == (2, 8, 16)
    torch.testing.assert_close(out["pred_embeds"].norm(dim=-1), torch.ones(2, 8), atol=1e-5, rtol=0)
    aux = out["aux_outputs"]
    assert len(aux) == SMALL["decoder_layers"]
    for a in aux:
        assert a["pred_masks"].shape == out["pred_masks"].shape
        assert a["pred_logits"].shape == out["pred_logits"].shape
    # Each layer refines the queries: consecutive predictions differ.
    preds = [*aux, out]
    for prev, nxt in zip(preds[:-1], preds[1:]):
        assert (prev["pred_masks"] - nxt["pred_masks"]).abs().max() > 1e-4
    for t in (out["pred_masks"], out["pred_logits"], out["pred_embeds"]):
        assert torch.isfinite(t).all()


def test_decoder_gradients_reach_every_parameter() -> None:
    decoder = _decoder()
    # Deformable attention zero-initialises the query -> offsets/weights maps, which (only at init) cuts
    # the gradient to the pixel decoder's level embedding; perturb them so that path is live too.
    with torch.no_grad():
        g = _gen(3)
        for layer in decoder.pixel_decoder.layers:
            for lin in (layer.attn.sampling_offsets, layer.attn.attention_weights):
                lin.weight.copy_(0.01 * torch.randn(lin.weight.shape, generator=g))
    out = decoder(_features(), _text(3))
    g = _gen(7)
    loss = torch.zeros(())
    for o in [out, *out["aux_outputs"]]:
        loss = loss + (o["pred_masks"] * torch.randn(o["pred_masks"].shape, generator=g)).mean()
        loss = loss + (o["pred_logits"] * torch.randn(o["pred_logits"].shape, generator=g)).mean()
    loss.backward()
    no_grad = [n for n, p in decoder.named_parameters() if p.grad is None]
    assert no_grad == []
    # Parameters whose gradient is zero by construction (up to rounding), whatever the loss:
    # - attention key biases: they add the same q . b_k to every key's score, which the softmax ignores;
    # - a conv bias right before a GroupNorm with one channel per group (hidden_dim 32 -> 32 groups).
    invariant = {f"pixel_decoder.input_proj.{i}.0.bias" for i in range(3)} | {
        f"transformer_decoder.layers.{i}.{a}.k_proj.bias"
        for i in range(SMALL["decoder_layers"]) for a in ("cross_attn", "self_attn")
    }
    zero = {n for n, p in decoder.named_parameters() if p.grad.abs().max() < 1e-7}
    assert zero <= invariant, sorted(zero - invariant)


def test_aux_outputs_are_deep_supervision() -> None:
    """The prediction made before the first layer does not depend on any decoder layer; the final one does."""
    decoder = _decoder()
    out = decoder(_features(), _text(3))
    first = out["aux_outputs"][0]
    (first["pred_masks"].sum() + first["pred_logits"].sum()).backward(retain_graph=True)
    layers = decoder.transformer_decoder.layers
    assert all(p.grad is None for p in layers.parameters())
    assert decoder.transformer_decoder.query_feat.weight.grad is not None
    decoder.zero_grad()
    (out["pred_masks"].sum() + out["pred_logits"].sum()).backward()
    assert all(p.grad is not None for p in layers[-1].parameters())


def test_decoder_batch_consistency() -> None:
    decoder = _decoder().eval()
    feats, text = _features(), _text(3)
    with torch.no_grad():
        both = decoder(feats, text)
        for b in range(2):
            alone = decoder({s: f[b:b + 1] for s, f in feats.items()}, text)
            for key in ("pred_masks", "pred_logits", "pred_embeds"):
                torch.testing.assert_close(alone[key][0], both[key][b], atol=1e-5, rtol=1e-5)


def test_decoder_single_prompt() -> None:
    out = _decoder()(_features(batch=1), _text(1))
    assert out["pred_logits"].shape == (1, 8, 2)
    assert torch.isfinite(out["pred_logits"]).all()


def test_decoder_rejects_wrong_channels() -> None:
    decoder = _decoder()
    feats = _features()
    feats[8] = feats[8][:, :7]
    with pytest.raises(ValueError, match="stride-8 features have 7 channels.*expects 8"):
        decoder(feats, _text(3))


def test_decoder_rejects_missing_stride() -> None:
    feats = _features()
    del feats[16]
    with pytest.raises(ValueError, match=r"lack stride\(s\) \[16\]"):
        _decoder()(feats, _text(3))


def test_decoder_rejects_wrong_text_dim() -> None:
    with pytest.raises(ValueError, match=r"text_embeds must be \(P, 16\)"):
        _decoder()(_features(), _text(3, dim=384))
    with pytest.raises(ValueError, match="text_embeds"):
        _decoder()(_features(), _text(3)[0])


def test_decoder_needs_in_channels() -> None:
    with pytest.raises(ValueError, match="in_channels is empty"):
        SpectrumDecoder(DecoderConfig(hidden_dim=32, num_heads=4))


def test_inference_skips_aux_outputs_and_gives_the_same_prediction() -> None:
    """Without ``aux`` (eval mode's default) the earlier layers' masks are computed only at the size their
    attention masks need; the final prediction and every attention mask stay those of the full path."""
    decoder = _decoder()
    features, text = _features(), _text(3)
    full_masks = _capture_cross_attn_masks(decoder)
    with torch.no_grad():
        full = decoder(features, text)  # training mode: aux outputs by default
        decoder.eval()
        assert "aux_outputs" in decoder(features, text, aux=True)
        fast = decoder(features, text)
    assert "aux_outputs" in full and "aux_outputs" not in fast
    for key in ("pred_masks", "pred_logits", "pred_embeds"):
        torch.testing.assert_close(fast[key], full[key], atol=1e-5, rtol=1e-5)
    layers = SMALL["decoder_layers"]
    assert len(full_masks) == 3 * layers  # train, eval with aux, eval without
    for a, b in zip(full_masks[:layers], full_masks[2 * layers:]):
        assert torch.equal(a, b)


def _capture_cross_attn_masks(decoder: SpectrumDecoder) -> list[torch.Tensor]:
    masks: list[torch.Tensor] = []
    for layer in decoder.transformer_decoder.layers:
        layer.cross_attn.register_forward_pre_hook(lambda _m, args: masks.append(args[3]))
    return masks


def test_masked_attention_follows_previous_prediction() -> None:
    """Layer i's cross-attention may only see where the previous prediction's sigmoid is >= 0.5."""
    decoder = _decoder()
    masks = _capture_cross_attn_masks(decoder)
    out = decoder(_features(), _text(3))
    sizes = [(IMAGE[0] // s, IMAGE[1] // s) for s in (32, 16, 8)]
    preds = [*out["aux_outputs"], out]
    assert len(masks) == SMALL["decoder_layers"]
    partial = 0
    for i, mask in enumerate(masks):
        small = F.interpolate(preds[i]["pred_masks"].detach(), size=sizes[i % 3], mode="bilinear",
                              align_corners=False)
        allowed = small.flatten(2).sigmoid() >= 0.5
        empty = ~allowed.any(-1)
        allowed[empty] = True
        assert mask.shape == (2, SMALL["num_heads"], 8, sizes[i % 3][0] * sizes[i % 3][1])
        assert torch.equal(mask, allowed[:, None].expand_as(mask))
        partial += int((~allowed).any(-1).sum())
    assert partial > 0  # the check above is not vacuous: some queries really are restricted


def test_empty_masks_attend_everywhere() -> None:
    """If every predicted mask is empty, every query attends to the whole map and nothing becomes NaN."""
    decoder = _decoder()
    with torch.no_grad():
        # mask features == 1 everywhere and mask embeddings == -10: every mask logit is -10 * mask_dim.
        decoder.pixel_decoder.mask_features.weight.zero_()
        decoder.pixel_decoder.mask_features.bias.fill_(1.0)
        last = decoder.transformer_decoder.mask_embed.layers[-1]
        last.weight.zero_()
        last.bias.fill_(-10.0)
    masks = _capture_cross_attn_masks(decoder)
    out = decoder(_features(), _text(3))
    assert (out["pred_masks"] < -100).all()
    assert len(masks) == SMALL["decoder_layers"] and all(bool(m.all()) for m in masks)
    for o in [out, *out["aux_outputs"]]:
        for key in ("pred_masks", "pred_logits", "pred_embeds"):
            assert torch.isfinite(o[key]).all(), key


# ---------------------------------------------------------------------------------------------
# DecoderConfig validation
# ---------------------------------------------------------------------------------------------


def test_decoder_config_hidden_dim_not_divisible_by_heads() -> None:
    with pytest.raises(ConfigError, match="hidden_dim 30 is not divisible by num_heads 4"):
        DecoderConfig(**{**SMALL, "hidden_dim": 30})


def test_decoder_config_missing_stride() -> None:
    channels = {k: v for k, v in SMALL["in_channels"].items() if k != "32"}
    with pytest.raises(ConfigError, match=r"lacks stride\(s\) \[32\]"):
        DecoderConfig(**{**SMALL, "in_channels": channels})


def test_softmax_last_matches_torch_softmax_values_and_gradients() -> None:
    from spectrum_parsing.decoder.layers import softmax_last

    torch.manual_seed(0)
    x = (torch.randn(7, 5, 12) * 20).requires_grad_()
    got, want = softmax_last(x), x.softmax(-1)
    assert torch.allclose(got, want, atol=1e-6) and torch.allclose(got.sum(-1), torch.ones(7, 5))
    weights = torch.randn(7, 5, 12)
    (grad_got,) = torch.autograd.grad((got * weights).sum(), x)
    (grad_want,) = torch.autograd.grad((want * weights).sum(), x)
    assert torch.allclose(grad_got, grad_want, atol=1e-5)
    assert torch.equal(softmax_last(torch.tensor([[1000.0, 0.0]])), torch.tensor([[1.0, 0.0]]))  # no overflow
