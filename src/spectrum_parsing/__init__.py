"""Spectrum: open-vocabulary, multi-person human parsing with texture-aware diffusion features."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"

SPIN_ENV = "GOMP_SPINCOUNT"
"""OpenMP workers of the torch CPU wheels (GNU libgomp) spin this many times waiting for work before they sleep.
Spinning makes every operation wait for a worker a competing process has descheduled: beside one busy process on
2 cores the default pipeline took 3.6-5.3x its idle time with libgomp's default, 1.5-1.9x with no spinning, at
about the same idle time (``benchmarks/bench_contention.py``). So when neither this nor ``OMP_WAIT_POLICY`` is set
and torch is not loaded yet (libgomp reads it once, when torch loads it), importing the package sets it to 0; set
either variable to keep another behaviour."""
if "torch" not in sys.modules and SPIN_ENV not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ[SPIN_ENV] = "0"

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
