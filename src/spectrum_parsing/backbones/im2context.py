"""IM2CONTEXT: the ``Im2Context`` module that turns CLIP-vision tokens into a UNet context sequence.

The layout matches TexDreamer's ``i2t_decoder.pth``: ``visual_proj`` (Linear visual -> context width),
a learned ``query`` of shape (1, L, context width), decoded by ``i2t``, a ``torch.nn.TransformerDecoder``
(post-norm, ReLU, batch-first) that attends to the projected vision tokens. Sizes are inferred from the
checkpoint's tensor shapes, so a tiny checkpoint in the same layout loads too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from ..hub import ModelLoadError


class Im2Context(nn.Module):
    """Map vision tokens (B, S, visual_dim) to a context sequence (B, num_queries, context_dim)."""

    def __init__(
        self,
        visual_dim: int = 1280,
        context_dim: int = 1024,
        num_queries: int = 77,
        num_layers: int = 3,
        num_heads: int | None = None,
        ffn_dim: int = 2048,
    ) -> None:
        super().__init__()
        heads = num_heads or max(1, context_dim // 64)
        if context_dim % heads:
            raise ValueError(f"context_dim {context_dim} is not divisible by num_heads {heads}")
        self.visual_proj = nn.Linear(visual_dim, context_dim)
        self.num_layers = num_layers
        if num_layers > 0:
            self.query = nn.Parameter(torch.zeros(1, num_queries, context_dim))
            layer = nn.TransformerDecoderLayer(
                d_model=context_dim, nhead=heads, dim_feedforward=ffn_dim, batch_first=True
            )
            self.i2t = nn.TransformerDecoder(layer, num_layers=num_layers)
        else:
            self.i2t = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return the context sequence for vision tokens ``tokens`` (B, S, visual_dim)."""
        memory = self.visual_proj(tokens)
        if self.i2t is None:
            return memory
        return self.i2t(self.query.expand(tokens.shape[0], -1, -1), memory)

    @classmethod
    def from_state_dict(
        cls, state_dict: dict[str, torch.Tensor], num_heads: int | None = None
    ) -> Im2Context:
        """Build a module sized from ``state_dict``'s shapes and load it strictly."""
        if "visual_proj.weight" not in state_dict:
            raise ModelLoadError("IM2CONTEXT checkpoint has no 'visual_proj.weight': not an Im2Context state dict")
        context_dim, visual_dim = state_dict["visual_proj.weight"].shape
        layer_ids = {int(m.group(1)) for k in state_dict if (m := re.match(r"i2t\.layers\.(\d+)\.", k))}
        num_layers = max(layer_ids) + 1 if layer_ids else 0
        num_queries = state_dict["query"].shape[1] if "query" in state_dict else 77
        ffn_key = "i2t.layers.0.linear1.weight"
        ffn_dim = state_dict[ffn_key].shape[0] if ffn_key in state_dict else 2048
        module = cls(visual_dim, context_dim, num_queries, num_layers, num_heads, ffn_dim)
        load_strict(module, state_dict, "IM2CONTEXT")
        return module.eval()


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that names missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if own[k].shape != state_dict[k].shape
    )
    if missing or unexpected or shapes:
        raise ModelLoadError(
            f"{what}: weights do not match the model. missing keys: {missing}; unexpected keys: {unexpected}; "
            f"shape mismatches: {shapes}"
        )
    module.load_state_dict(state_dict, strict=True)


def load_im2context(path: str | os.PathLike[str], num_heads: int | None = None) -> Im2Context:
    """Load an ``Im2Context`` from a ``.pth``/``.bin`` (``weights_only``) or ``.safetensors`` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # SafetensorError, truncated or foreign files
            raise ModelLoadError(f"{path}: not a readable safetensors file ({err})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelLoadError(f"{path}: cannot be read as a tensors-only checkpoint ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: expected a state dict of tensors")
    return Im2Context.from_state_dict(state, num_heads=num_heads)
