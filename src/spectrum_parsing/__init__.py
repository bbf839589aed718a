"""Spectrum: open-vocabulary, multi-person human parsing with texture-aware diffusion features."""

from __future__ import annotations

from .configs import DecoderConfig, DiffusionBackboneConfig, TextEncoderConfig
from .losses import LossConfig, SpectrumCriterion
from .modeling import ParseResult, SpectrumConfig, SpectrumModel

__version__ = "0.1.0"

__all__ = [
    "DecoderConfig",
    "DiffusionBackboneConfig",
    "LossConfig",
    "ParseResult",
    "SpectrumConfig",
    "SpectrumCriterion",
    "SpectrumModel",
    "TextEncoderConfig",
    "__version__",
]
