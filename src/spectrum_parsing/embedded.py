"""Names and folders of the parsers shipped inside the package (no heavy imports: the CLI uses it for --help)."""

from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Where the embedded weights live."""
EMBEDDED_MODELS: tuple[str, ...] = ("spectrum-lite2", "spectrum-bodypix")
"""Parsers shipped inside the package (``weights/NAME``, model card beside the weights); load them by name."""
DEFAULT_MODEL_NAME = "spectrum-lite2"
DEFAULT_MODEL_DIR = WEIGHTS_DIR / DEFAULT_MODEL_NAME
"""The embedded default model (see its README.md model card)."""


def embedded_model_dir(name: str | os.PathLike[str] | None) -> Path | None:
    """The folder of an embedded model named ``name`` (``None``: the default; the tool's own printed form
    "NAME (embedded)" is accepted), or None when ``name`` is not an embedded model's name."""
    if name is None:
        return DEFAULT_MODEL_DIR
    text = str(name).removesuffix(" (embedded)").strip()
    return WEIGHTS_DIR / text if text in EMBEDDED_MODELS else None


def model_display_name(name: str | os.PathLike[str] | None) -> str:
    """How the tool names a model in its messages: embedded ones as "NAME (embedded)"."""
    if name is None:
        return f"{DEFAULT_MODEL_NAME} (embedded)"
    folder = embedded_model_dir(name)
    return f"{folder.name} (embedded)" if folder is not None else str(name)
