"""Prompt validation shared by the Python API, the CLI and the server: one set of rules for every entry point."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["MAX_PROMPTS", "MAX_PROMPT_CHARS", "clean_prompts"]

MAX_PROMPTS = 256
"""Most prompts scored in one call (each is a grounding column; the text encoder runs once per new prompt)."""
MAX_PROMPT_CHARS = 200
"""Longest prompt accepted, in characters (the text encoder would silently truncate longer text)."""


def clean_prompts(prompts: str | Sequence[str], max_prompts: int = MAX_PROMPTS,
                  max_chars: int = MAX_PROMPT_CHARS) -> list[str]:
    """Validate and normalise prompts: NFC, whitespace collapsed, case-insensitive duplicates dropped (first kept).

    Refused with a ValueError naming the prompt: an empty list, empty or whitespace-only prompts, control
    characters, prompts longer than ``max_chars`` and more than ``max_prompts`` prompts. Any script is accepted
    (the default MiniLM text encoder is English-trained: other languages parse poorly).
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
        raise TypeError("prompts must be a string or a list of strings")
    if not prompts:
        raise ValueError("give at least one prompt (or prompts=None for the model's default list)")
    out: dict[str, str] = {}
    for i, raw in enumerate(prompts):
        text = " ".join(unicodedata.normalize("NFC", raw).split())
        if not text:
            raise ValueError(f"prompt {i + 1} is empty")
        bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn")]
        if bad:
            raise ValueError(f"prompt {i + 1} {text[:40]!r} contains a control or unassigned character "
                             f"(U+{ord(bad[0]):04X})")
        if len(text) > max_chars:
            raise ValueError(f"prompt {i + 1} {text[:40]!r}... has {len(text)} characters; at most {max_chars}")
        out.setdefault(text.casefold(), text)
    if len(out) > max_prompts:
        raise ValueError(f"too many prompts ({len(out)}); at most {max_prompts}")
    return list(out.values())
