"""Prompt validation shared by the Python API, the CLI and the server: one set of rules for every entry point."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["MAX_PROMPTS", "MAX_PROMPT_CHARS", "clean_prompts", "unsafe_character"]

MAX_PROMPTS = 256
"""Most prompts scored in one call (each is a grounding column; the text encoder runs once per new prompt)."""
MAX_PROMPT_CHARS = 200
"""Longest prompt accepted, in characters (the text encoder would silently truncate longer text)."""


BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional-text controls: they make a label print in another order than it is stored ("Trojan Source")."""
INVISIBLE = frozenset("\u200b\u2060\ufeff\u00ad")
"""Zero-width space, word joiner, BOM, soft hyphen: invisible, so two labels that look alike would differ."""


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` a label or prompt may not hold (control, unassigned, private-use,
    surrogate, bidirectional control or invisible), as ``U+XXXX``; None when there is none. Joiners that
    scripts need (ZWJ, ZWNJ) are allowed."""
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") or c in BIDI_CONTROLS or c in INVISIBLE:
            return f"U+{ord(c):04X}"
    return None


def clean_prompts(prompts: str | Sequence[str], max_prompts: int = MAX_PROMPTS,
                  max_chars: int = MAX_PROMPT_CHARS) -> list[str]:
    """Validate and normalise prompts: NFC, whitespace collapsed, case-insensitive duplicates dropped (first kept).

    Refused with a ValueError naming the prompt: an empty list, empty or whitespace-only prompts, control,
    bidirectional-control and invisible characters (:func:`unsafe_character`), prompts longer than
    ``max_chars`` and more than ``max_prompts`` prompts. Any script is accepted (the default MiniLM text
    encoder is English-trained: other languages parse poorly).
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
        bad = unsafe_character(text)
        if bad:
            raise ValueError(f"prompt {i + 1} {text[:40]!r} contains a control, bidirectional-control, invisible "
                             f"or unassigned character ({bad})")
        if len(text) > max_chars:
            raise ValueError(f"prompt {i + 1} {text[:40]!r}... has {len(text)} characters; at most {max_chars}")
        out.setdefault(text.casefold(), text)
    if len(out) > max_prompts:
        raise ValueError(f"too many prompts ({len(out)}); at most {max_prompts}")
    return list(out.values())
