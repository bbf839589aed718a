"""Mask2Former-style multi-scale pixel decoder with multi-scale deformable attention in pure PyTorch.

Choice (documented in the README): the three coarse backbone levels (strides 8, 16, 32) are projected to
``hidden_dim`` and refined jointly by a stack of multi-scale *deformable* self-attention layers
(Deformable-DETR style: every token samples ``points`` locations per head on every level around its
reference point, bilinearly with ``F.grid_sample``). Its cost is linear in the number of tokens, so 512-
and 768-pixel inputs stay cheap, unlike dense attention over ~5k tokens. An FPN path then adds the stride-4
backbone level to the upsampled stride-8 output, giving the stride-4 mask feature. No compiled ops.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import FeedForward, group_norm, sine_position_embedding, softmax_last


class MultiScaleDeformableAttention(nn.Module):
    """Deformable attention over several feature levels, sampling with ``grid_sample``."""

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.heads, self.levels, self.points = dim, num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        # Initial offsets: each head looks in its own direction, k-th point k cells away.
        angles = torch.arange(self.heads, dtype=torch.float32) * (2 * math.pi / self.heads)
        grid = torch.stack([angles.cos(), angles.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values
        grid = grid.view(self.heads, 1, 1, 2).repeat(1, self.levels, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, value: torch.Tensor,
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        """``query`` (B, Nq, D), ``reference_points`` (B or 1, Nq, 2) xy in [0, 1], ``value`` (B, sum HW, D)."""
        b, nq, _ = query.shape
        h, lv, pt = self.heads, self.levels, self.points
        hd = self.dim // h
        value = self.value_proj(value)
        offsets = self.sampling_offsets(query).view(b, nq, h, lv, pt, 2)
        weights = softmax_last(self.attention_weights(query).view(b, nq, h, lv * pt)).view(b, nq, h, lv, pt)
        # grid_sample's coordinates in [-1, 1]: 2 * (reference + offset / level size) - 1
        scale = torch.tensor([[2.0 / w, 2.0 / hh] for hh, w in shapes], device=query.device, dtype=query.dtype)
        grids = (offsets * scale[:, None, :] + (2 * reference_points - 1)[:, :, None, None, None, :])
        # points before queries (P, Nq): the sampler writes (B*h, hd, P, Nq), and the weighted sum over the P
        # points then runs along rows of Nq values instead of rows of P = 4 (benchmarks/bench_kernels.py)
        grids = grids.permute(0, 2, 3, 4, 1, 5).reshape(b * h, lv, pt, nq, 2)
        attn = weights.permute(0, 2, 3, 4, 1).reshape(b * h, lv, 1, pt, nq)
        parts, start = [], 0
        for level, (lh, lw) in enumerate(shapes):
            # (B*h, hd, lh, lw) laid out channels-last (hd innermost, as the projection wrote it): one copy either
            # way, and grid_sample reads it faster; grids and weights per level made contiguous, which the
            # sampler and the multiply read faster than strided slices (same values)
            v = value[:, start:start + lh * lw].view(b, lh, lw, h, hd).permute(0, 3, 1, 2, 4)
            v = v.reshape(b * h, lh, lw, hd).permute(0, 3, 1, 2)
            sampled = F.grid_sample(v, grids[:, level].contiguous(), mode="bilinear", padding_mode="zeros",
                                    align_corners=False)  # (B*h, hd, P, Nq)
            # the attention-weighted sum over the P points (multiply and sum: no bmm-layout copy as einsum makes;
            # linalg.vecdot would not export to ONNX)
            parts.append((sampled * attn[:, level].contiguous()).sum(2))  # (B*h, hd, Nq)
            start += lh * lw
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        out = out.view(b, h * hd, nq).transpose(1, 2)
        return self.output_proj(out)


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention, then FFN."""

    def __init__(self, dim: int, heads: int, levels: int, points: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn = MultiScaleDeformableAttention(dim, heads, levels, points)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_dim, dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor,
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        src = self.norm(src + self.dropout(self.attn(src + pos, reference_points, src, shapes)))
        return self.ffn(src)


class PixelDecoder(nn.Module):
    """Backbone features {4, 8, 16, 32} -> three ``hidden_dim`` maps (strides 32, 16, 8) + stride-4 mask feature."""

    coarse_strides = (32, 16, 8)

    def __init__(self, in_channels: dict[int, int], hidden_dim: int, mask_dim: int, num_heads: int,
                 num_layers: int, ffn_dim: int, num_points: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels[s], hidden_dim, 1), group_norm(hidden_dim))
            for s in self.coarse_strides
        )
        self.level_embed = nn.Parameter(torch.zeros(len(self.coarse_strides), hidden_dim))
        nn.init.normal_(self.level_embed)
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(hidden_dim, num_heads, len(self.coarse_strides), num_points, ffn_dim, dropout)
            for _ in range(num_layers)
        )
        self.lateral = nn.Sequential(nn.Conv2d(in_channels[4], hidden_dim, 1, bias=False), group_norm(hidden_dim))
        self.output_conv = nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, bias=False),
                                         group_norm(hidden_dim), nn.ReLU(inplace=True))
        self.mask_features = nn.Conv2d(hidden_dim, mask_dim, 1)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        for conv in (self.lateral[0], self.output_conv[0], self.mask_features):
            nn.init.kaiming_uniform_(conv.weight, a=1)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    @staticmethod
    def _reference_points(shapes: list[tuple[int, int]], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        refs = []
        for h, w in shapes:
            ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
            xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            refs.append(torch.stack((grid_x.flatten(), grid_y.flatten()), -1))
        return torch.cat(refs)[None].to(dtype)

    def forward(self, features: dict[int, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Return ([maps at strides 32, 16, 8], stride-4 mask features)."""
        srcs, poss, shapes = [], [], []
        for i, s in enumerate(self.coarse_strides):
            x = self.input_proj[i](features[s])
            b, c, h, w = x.shape
            shapes.append((h, w))
            srcs.append(x.flatten(2).transpose(1, 2))
            poss.append(sine_position_embedding(h, w, c, x.device, x.dtype) + self.level_embed[i].to(x.dtype))
        src = torch.cat(srcs, 1)
        pos = torch.cat(poss, 0)[None]
        refs = self._reference_points(shapes, src.device, src.dtype)
        for layer in self.layers:
            src = layer(src, pos, refs, shapes)
        maps, start = [], 0
        for h, w in shapes:
            maps.append(src[:, start:start + h * w].transpose(1, 2).reshape(src.shape[0], -1, h, w))
            start += h * w
        fine = self.lateral(features[4])  # a fresh map: the upsampled coarse one is added in place
        fine = fine.add_(F.interpolate(maps[-1], size=fine.shape[-2:], mode="bilinear", align_corners=False))
        return maps, self.mask_features(self.output_conv(fine))
