"""Feature backbones: the frozen I2Tx diffusion model (Spectrum), the T2I baseline, BodyPix MobileNetV1,
ImageNet EfficientNet-Lite, MoveNet-MultiPose's feature pyramid, and fusions of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..configs import ConfigBase, DiffusionBackboneConfig, read_config_file, registered_backbone_config
from .base import FeatureBackbone
from .bodypix import BodyPixBackbone, BodyPixConfig, BodyPixMobileNet
from .bodypix_weights import load_bodypix
from .diffusion import DiffusionBackbone, load_diffusion_backbone
from .efficientnet_lite import EfficientNetLiteBackbone, EfficientNetLiteConfig, load_efficientnet_lite
from .fusion import FusionBackbone, FusionConfig
from .im2context import Im2Context, load_im2context
from .movenet import MoveNetBackbone, MoveNetFeaturesConfig, load_movenet_backbone

__all__ = [
    "BodyPixBackbone",
    "BodyPixConfig",
    "BodyPixMobileNet",
    "DiffusionBackbone",
    "EfficientNetLiteBackbone",
    "EfficientNetLiteConfig",
    "FusionBackbone",
    "FusionConfig",
    "FeatureBackbone",
    "Im2Context",
    "MoveNetBackbone",
    "MoveNetFeaturesConfig",
    "backbone_config_from_dict",
    "load_backbone",
    "load_backbone_config",
    "load_bodypix",
    "load_diffusion_backbone",
    "load_efficientnet_lite",
    "load_im2context",
    "without_initial_weights",
]


def backbone_config_from_dict(data: dict[str, Any]) -> ConfigBase:
    """Build the backbone config class named by ``data["type"]`` (every backbone module of this package has
    registered its config type by the time this package is imported)."""
    return registered_backbone_config(data)


def load_backbone_config(path: str | os.PathLike[str]) -> ConfigBase:
    """Read a backbone JSON config and resolve its relative paths against the file's directory."""
    config = backbone_config_from_dict(read_config_file(path))
    resolve = getattr(config, "resolve_paths", None)
    return resolve(Path(path).resolve().parent) if resolve else config


def load_backbone(config: ConfigBase) -> FeatureBackbone:
    """Load the backbone a config describes (this does the I/O; constructors never do)."""
    if isinstance(config, DiffusionBackboneConfig):
        return load_diffusion_backbone(config)
    if isinstance(config, BodyPixConfig):
        return load_bodypix(config)
    if isinstance(config, EfficientNetLiteConfig):
        return load_efficientnet_lite(config)
    if isinstance(config, MoveNetFeaturesConfig):
        return load_movenet_backbone(config)
    if isinstance(config, FusionConfig):
        return FusionBackbone(config, [load_backbone(m) for m in config.members])
    raise TypeError(f"no backbone loader for {type(config).__name__}")


def without_initial_weights(config: ConfigBase) -> ConfigBase:
    """The config with its initial ``weights`` unset (member-wise for a fusion): for backbones whose trained
    weights a Spectrum checkpoint carries, so loading it reads no other file."""
    import dataclasses

    if isinstance(config, FusionConfig):
        return config.without_weights()
    if getattr(config, "weights", None) is not None:
        return dataclasses.replace(config, weights=None)
    return config
