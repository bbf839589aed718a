"""Building blocks shared by the pixel decoder and the transformer decoder (pure PyTorch, SDPA)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sine_position_embedding(height: int, width: int, dim: int, device: torch.device,
                            dtype: torch.dtype = torch.float32, temperature: float = 10000.0) -> torch.Tensor:
    """DETR-style normalised 2-D sine embedding, shape (height * width, dim); dim must be divisible by 4."""
    if dim % 4:
        raise ValueError(f"position embedding dim {dim} must be divisible by 4")
    half = dim // 2
    eps, scale = 1e-6, 2 * math.pi
    ys = (torch.arange(1, height + 1, device=device, dtype=torch.float32) / (height + eps)) * scale
    xs = (torch.arange(1, width + 1, device=device, dtype=torch.float32) / (width + eps)) * scale
    freqs = temperature ** (2 * (torch.arange(half, device=device) // 2) / half)
    py = ys[:, None] / freqs  # (H, half)
    px = xs[:, None] / freqs  # (W, half)
    py = torch.stack((py[:, 0::2].sin(), py[:, 1::2].cos()), dim=2).flatten(1)
    px = torch.stack((px[:, 0::2].sin(), px[:, 1::2].cos()), dim=2).flatten(1)
    pos = torch.cat((py[:, None, :].expand(-1, width, -1), px[None, :, :].expand(height, -1, -1)), dim=-1)
    return pos.reshape(height * width, dim).to(dtype)


class Attention(nn.Module):
    """Multi-head attention on ``F.scaled_dot_product_attention`` (batch-first).

    ``attn_mask``: optional bool tensor broadcastable to (B, heads, Nq, Nk), True = may attend.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.dropout = num_heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._split(self.q_proj(query)), self._split(self.k_proj(key)), self._split(self.v_proj(value))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class MLP(nn.Module):
    """A plain multi-layer perceptron with ReLU between layers."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class FeedForward(nn.Module):
    """Post-norm transformer FFN block: x + FFN(x), then LayerNorm."""

    def __init__(self, dim: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))))


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, written out: for the short rows of deformable attention (12 sampling
    weights per head) torch's CPU softmax kernel is slower than these three vectorised passes
    (``benchmarks/bench_kernels.py``: 12.2 -> 2.6 ms on a 5x2100x8x12 tensor; same values within 2e-7)."""
    e = (x - x.amax(-1, keepdim=True)).exp_()
    return e / e.sum(-1, keepdim=True)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups that divide ``channels``."""
    return nn.GroupNorm(math.gcd(32, channels), channels)
