"""Mask2Former-style transformer decoder with masked cross-attention and a text-grounding head."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import MLP, Attention, FeedForward, sine_position_embedding


class DecoderLayer(nn.Module):
    """Masked cross-attention to one feature level, then self-attention among queries, then FFN (post-norm)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.cross_attn = Attention(dim, heads, dropout)
        self.cross_norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, dropout)
        self.self_norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        out = self.cross_attn(queries + query_pos, memory + memory_pos, memory, attn_mask)
        queries = self.cross_norm(queries + self.dropout(out))
        q = queries + query_pos
        queries = self.self_norm(queries + self.dropout(self.self_attn(q, q, queries)))
        return self.ffn(queries)


class GroundingHead(nn.Module):
    """Scores queries against prompt embeddings: scaled cosine similarity, plus a learned no-object embedding.

    ``logits[..., p] = exp(logit_scale) * cos(proj(query), text[p])`` and the last column uses the learned
    no-object embedding in place of a phrase.
    """

    def __init__(self, dim: int, text_dim: int, temperature: float = 0.07) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, text_dim)
        self.no_object = nn.Parameter(torch.randn(text_dim) / math.sqrt(text_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed(self, queries: torch.Tensor) -> torch.Tensor:
        """L2-normalised query embeddings in the text encoder's space."""
        return F.normalize(self.proj(queries), dim=-1)

    def forward(self, query_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """``query_embeds`` (B, Q, E) normalised, ``text_embeds`` (P, E) -> logits (B, Q, P + 1)."""
        classes = torch.cat([F.normalize(text_embeds.to(query_embeds.dtype), dim=-1),
                             F.normalize(self.no_object, dim=-1)[None].to(query_embeds.dtype)])
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        return scale * query_embeds @ classes.t()


class TransformerDecoder(nn.Module):
    """N learned queries attend to the pixel decoder's maps in turn (strides 32, 16, 8, 32, ...).

    Every layer's prediction (and the one before the first layer) is returned for deep supervision; each
    layer's cross-attention is restricted to the foreground (sigmoid > 0.5) of the previous prediction.
    """

    def __init__(self, dim: int, mask_dim: int, text_dim: int, num_queries: int, heads: int, num_layers: int,
                 ffn_dim: int, num_levels: int = 3, dropout: float = 0.0, temperature: float = 0.07) -> None:
        super().__init__()
        self.num_levels, self.heads = num_levels, heads
        self.query_feat = nn.Embedding(num_queries, dim)
        self.query_pos = nn.Embedding(num_queries, dim)
        self.level_embed = nn.Embedding(num_levels, dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn_dim, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)
        self.mask_embed = MLP(dim, dim, mask_dim, 3)
        self.grounding = GroundingHead(dim, text_dim, temperature)

    def _head(self, queries: torch.Tensor, mask_features: torch.Tensor,
              text_embeds: torch.Tensor) -> dict[str, torch.Tensor]:
        """One layer's prediction: mask logits, grounding logits and query embeddings."""
        out = self.norm(queries)
        masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(out), mask_features)
        embeds = self.grounding.embed(out)
        return {"pred_logits": self.grounding(embeds, text_embeds), "pred_masks": masks, "pred_embeds": embeds}

    def _predict(self, queries: torch.Tensor, mask_features: torch.Tensor, text_embeds: torch.Tensor,
                 target_size: tuple[int, int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        pred = self._head(queries, mask_features, text_embeds)
        with torch.no_grad():
            small = F.interpolate(pred["pred_masks"].float(), size=target_size, mode="bilinear", align_corners=False)
        return pred, self._attn_mask(small)

    def _attn_mask(self, small: torch.Tensor) -> torch.Tensor:
        """(B, heads, Q, hw) cross-attention mask from mask logits (B, Q, h, w) at the next level's size."""
        allowed = small.flatten(2).sigmoid() >= 0.5  # (B, Q, HW), True = may attend
        allowed = allowed | ~allowed.any(-1, keepdim=True)  # a query with an empty mask attends everywhere
        return allowed[:, None].expand(-1, self.heads, -1, -1)

    def forward(self, maps: list[torch.Tensor], mask_features: torch.Tensor, text_embeds: torch.Tensor,
                aux: bool | None = None) -> dict[str, object]:
        """``maps``: pixel-decoder outputs (low to high resolution); returns final outputs + ``aux_outputs``
        (every earlier layer's prediction; ``aux`` defaults to ``self.training``). Without them, the earlier
        layers' masks are computed only at the size their attention masks need: the mask features are resized
        once per level (resizing is linear, so this equals resizing each full-size mask, up to rounding)."""
        aux = self.training if aux is None else aux
        b = mask_features.shape[0]
        memories, positions, sizes = [], [], []
        for i, m in enumerate(maps):
            h, w = m.shape[-2:]
            sizes.append((h, w))
            memories.append(m.flatten(2).transpose(1, 2) + self.level_embed.weight[i].to(m.dtype))
            positions.append(sine_position_embedding(h, w, m.shape[1], m.device, m.dtype)[None])
        queries = self.query_feat.weight[None].expand(b, -1, -1).to(mask_features.dtype)
        query_pos = self.query_pos.weight[None].expand(b, -1, -1).to(mask_features.dtype)

        if not aux:
            small_features = [F.interpolate(mask_features.float(), size=size, mode="bilinear", align_corners=False)
                              for size in sizes]
            with torch.no_grad():
                attn_mask = self._attn_mask(self._small_masks(queries, small_features[0]))
            for i, layer in enumerate(self.layers):
                queries = layer(queries, query_pos, memories[i % self.num_levels], positions[i % self.num_levels],
                                attn_mask)
                if i + 1 < len(self.layers):
                    with torch.no_grad():
                        small = self._small_masks(queries, small_features[(i + 1) % self.num_levels])
                        attn_mask = self._attn_mask(small)
            return self._head(queries, mask_features, text_embeds)

        predictions = []
        pred, attn_mask = self._predict(queries, mask_features, text_embeds, sizes[0])
        predictions.append(pred)
        for i, layer in enumerate(self.layers):
            level = i % self.num_levels
            queries = layer(queries, query_pos, memories[level], positions[level], attn_mask)
            pred, attn_mask = self._predict(queries, mask_features, text_embeds, sizes[(i + 1) % self.num_levels])
            predictions.append(pred)
        final = dict(predictions[-1])
        final["aux_outputs"] = predictions[:-1]
        return final

    def _small_masks(self, queries: torch.Tensor, small_features: torch.Tensor) -> torch.Tensor:
        """Mask logits (B, Q, h, w) of ``queries`` on mask features already resized to (h, w)."""
        return torch.einsum("bqc,bchw->bqhw", self.mask_embed(self.norm(queries)).float(), small_features)
