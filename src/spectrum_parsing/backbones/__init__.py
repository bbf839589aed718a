"""Feature backbones: the frozen I2Tx diffusion model (Spectrum), the T2I baseline and BodyPix MobileNetV1."""

from __future__ import annotations

from ..configs import ConfigBase, DiffusionBackboneConfig
from .base import FeatureBackbone
from .bodypix import BodyPixBackbone, BodyPixConfig, BodyPixMobileNet, load_bodypix
from .diffusion import DiffusionBackbone, load_diffusion_backbone
from .im2context import Image2Token, load_im2context

__all__ = [
    "BodyPixBackbone",
    "BodyPixConfig",
    "BodyPixMobileNet",
    "DiffusionBackbone",
    "FeatureBackbone",
    "Image2Token",
    "load_backbone",
    "load_bodypix",
    "load_diffusion_backbone",
    "load_im2context",
]


def load_backbone(config: ConfigBase) -> FeatureBackbone:
    """Load the backbone a config describes (this does the I/O; constructors never do)."""
    if isinstance(config, DiffusionBackboneConfig):
        return load_diffusion_backbone(config)
    if isinstance(config, BodyPixConfig):
        return load_bodypix(config)
    raise TypeError(f"no backbone loader for {type(config).__name__}")
