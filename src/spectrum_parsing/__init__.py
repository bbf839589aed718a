"""Spectrum: open-vocabulary, multi-person human parsing with texture-aware diffusion features."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {"SpectrumPipeline": "pipeline", "ParsingResult": "results", "DecoderConfig": "configs",
         "DiffusionBackboneConfig": "backbones", "TextEncoderConfig": "configs", "LossConfig": "configs",
         "SpectrumCriterion": "losses", "SpectrumConfig": "modeling",
         "SpectrumModel": "modeling"}

if TYPE_CHECKING:
    from .backbones import DiffusionBackboneConfig
    from .configs import DecoderConfig, LossConfig, TextEncoderConfig
    from .losses import SpectrumCriterion
    from .modeling import SpectrumConfig, SpectrumModel
    from .pipeline import SpectrumPipeline
    from .results import ParsingResult


def __getattr__(name: str) -> object:
    """Public names, imported on first use: ``import spectrum_parsing`` and ``spectrum --help`` stay light
    (torch, diffusers and scipy load only in the commands that need them)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DecoderConfig",
    "DiffusionBackboneConfig",
    "LossConfig",
    "ParsingResult",
    "SpectrumConfig",
    "SpectrumCriterion",
    "SpectrumModel",
    "SpectrumPipeline",
    "TextEncoderConfig",
    "__version__",
]
