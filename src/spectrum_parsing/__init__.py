"""Spectrum: open-vocabulary, multi-person human parsing with texture-aware diffusion features."""

from __future__ import annotations

from .configs import DecoderConfig, DiffusionBackboneConfig, TextEncoderConfig
from .losses import LossConfig, SpectrumCriterion
from .modeling import ParseResult, SpectrumConfig, SpectrumModel

__version__ = "0.1.0"

_LAZY = {"SpectrumPipeline": "pipeline", "ParsingResult": "pipeline"}


def __getattr__(name: str) -> object:
    """``from spectrum_parsing import SpectrumPipeline``, imported on first use (keeps ``import`` light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DecoderConfig",
    "DiffusionBackboneConfig",
    "LossConfig",
    "ParseResult",
    "ParsingResult",
    "SpectrumConfig",
    "SpectrumCriterion",
    "SpectrumModel",
    "SpectrumPipeline",
    "TextEncoderConfig",
    "__version__",
]
