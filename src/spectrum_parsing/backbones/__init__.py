"""Frozen feature backbones: the I2Tx diffusion model (Spectrum) and the T2I baseline."""

from __future__ import annotations

from ..configs import ConfigBase, DiffusionBackboneConfig
from .base import FeatureBackbone
from .diffusion import DiffusionBackbone, load_diffusion_backbone
from .im2context import Image2Token, load_im2context

__all__ = [
    "DiffusionBackbone",
    "FeatureBackbone",
    "Image2Token",
    "load_backbone",
    "load_diffusion_backbone",
    "load_im2context",
]


def load_backbone(config: ConfigBase) -> FeatureBackbone:
    """Load the frozen backbone a config describes (this does the I/O; constructors never do)."""
    if isinstance(config, DiffusionBackboneConfig):
        return load_diffusion_backbone(config)
    raise TypeError(f"no backbone loader for {type(config).__name__}")
