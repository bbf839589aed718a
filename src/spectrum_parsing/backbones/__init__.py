"""Feature backbones: the frozen I2Tx diffusion model (Spectrum), the T2I baseline, BodyPix MobileNetV1,
ImageNet EfficientNet-Lite, MoveNet-MultiPose's feature pyramid, and fusions of them."""

from __future__ import annotations

import os
from pathlib import Path

from ..configs import ConfigBase, read_config_file
from .base import FeatureBackbone

# Each backbone module registers its type (config class + loader) where it is defined: importing them here fills
# the registry, in this order.
from .bodypix import BodyPixBackbone, BodyPixConfig, BodyPixMobileNet
from .bodypix_weights import load_bodypix
from .diffusion import DiffusionBackbone, DiffusionBackboneConfig, load_diffusion_backbone
from .efficientnet_lite import EfficientNetLiteBackbone, EfficientNetLiteConfig, load_efficientnet_lite
from .fusion import FusionBackbone, FusionConfig
from .im2context import Im2Context, load_im2context
from .movenet import MoveNetBackbone, MoveNetFeaturesConfig, load_movenet_backbone
from .registry import BackboneSpec, backbone_config_from_dict, load_backbone, register_backbone, registered_backbones

__all__ = [
    "BackboneSpec",
    "BodyPixBackbone",
    "BodyPixConfig",
    "BodyPixMobileNet",
    "DiffusionBackbone",
    "DiffusionBackboneConfig",
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
    "load_movenet_backbone",
    "register_backbone",
    "registered_backbones",
    "without_initial_weights",
]


def load_backbone_config(path: str | os.PathLike[str]) -> ConfigBase:
    """Read a backbone JSON config and resolve its relative paths against the file's directory."""
    config = backbone_config_from_dict(read_config_file(path))
    resolve = getattr(config, "resolve_paths", None)
    return resolve(Path(path).resolve().parent) if resolve else config


def without_initial_weights(config: ConfigBase) -> ConfigBase:
    """The config with its initial ``weights`` unset (member-wise for a fusion): for backbones whose trained
    weights a Spectrum checkpoint carries, so loading it reads no other file."""
    import dataclasses

    if isinstance(config, FusionConfig):
        return config.without_weights()
    if getattr(config, "weights", None) is not None:
        return dataclasses.replace(config, weights=None)
    return config
