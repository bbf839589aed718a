"""Fusion backbone: several backbones run on the same pixels, their features concatenated by stride.

This is how the Spectrum paper fuses the I2Tx encoder, denoiser and decoder features, applied to any
registered backbones, e.g. garment-aware EfficientNet-Lite with body-part-aware BodyPix::

    {"type": "fusion", "members": [{"type": "efficientnet-lite", "variant": "lite2"},
                                   {"type": "bodypix", "trainable": false}]}

Every member returns ``(B, C_m, Hc / s, Wc / s)`` at strides 4, 8, 16 and 32 for the same image, so the
fused map at stride ``s`` has ``sum_m C_m(s)`` channels in member order.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..configs import STRIDES, ConfigBase, ConfigError
from .base import FeatureBackbone
from .registry import backbone_config_from_dict, load_backbone, register_backbone

MAX_MEMBERS = 8
"""Members of one fusion (each is a whole backbone run on every image: a config cannot ask for hundreds)."""


@dataclass
class FusionConfig(ConfigBase):
    """Config of a fusion of backbones (``members``: backbone configs, at least one)."""

    type: str = "fusion"
    members: list[ConfigBase] = field(default_factory=list)

    TYPES: ClassVar[tuple[str, ...]] = ("fusion",)

    def __post_init__(self) -> None:
        if self.type not in self.TYPES:
            raise ConfigError(f"backbone type {self.type!r} is not one of {self.TYPES}")
        if not isinstance(self.members, list) or not self.members:
            raise ConfigError("a fusion backbone needs a non-empty list 'members'")
        if len(self.members) > MAX_MEMBERS:
            raise ConfigError(f"a fusion backbone takes at most {MAX_MEMBERS} members, got {len(self.members)}")
        self.members = [backbone_config_from_dict(m) if isinstance(m, dict) else m for m in self.members]
        for m in self.members:
            if not isinstance(m, ConfigBase):
                raise ConfigError(f"fusion member must be a backbone config, got {type(m).__name__}")
            if isinstance(m, FusionConfig):
                raise ConfigError("fusion members cannot themselves be fusions")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "members": [m.to_dict() for m in self.members]}

    def resolve_paths(self, base_dir: str | os.PathLike[str]) -> FusionConfig:
        """Resolve every member's relative paths against ``base_dir``."""
        members = [m.resolve_paths(base_dir) if hasattr(m, "resolve_paths") else m for m in self.members]
        return dataclasses.replace(self, members=members)

    def without_weights(self) -> FusionConfig:
        """The same fusion with every member's initial ``weights`` unset (they come from a checkpoint)."""
        return dataclasses.replace(self, members=[
            dataclasses.replace(m, weights=None) if hasattr(m, "weights") else m for m in self.members])


class FusionBackbone(FeatureBackbone):
    """Runs ``members`` on the same images and concatenates their features per stride."""

    def __init__(self, config: FusionConfig, members: list[FeatureBackbone]) -> None:
        super().__init__()
        if len(members) != len(config.members):
            raise ValueError(f"{len(members)} member backbones for {len(config.members)} member configs")
        self.config = config
        self.members = nn.ModuleList(members)
        self.saved_with_model = all(getattr(m, "saved_with_model", False) for m in members)

    @property
    def trainable(self) -> bool:
        """True when any member is fine-tuned (the fusion's features can then not be cached)."""
        return any(m.trainable for m in self.members)

    def freeze(self) -> FusionBackbone:
        """Freeze every member that is not configured as trainable."""
        for m in self.members:
            m.freeze()
        return self

    def feature_channels(self) -> dict[int, int]:
        """Channels per stride: the sum over members."""
        per = [m.feature_channels() for m in self.members]
        return {s: sum(p[s] for p in per) for s in STRIDES}

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features ``{4, 8, 16, 32}``: every member's map at that stride, concatenated in member order."""
        outs = [m(images) for m in self.members]
        fused = {}
        for s in STRIDES:
            maps = [o[s] for o in outs]
            shapes = {tuple(int(d) for d in m.shape[-2:]) for m in maps}  # ints: traced sizes are tensors
            if len(shapes) != 1:
                raise ValueError(f"fusion members disagree on the stride-{s} size: {sorted(shapes)}")
            fused[s] = torch.cat([m.to(maps[0].dtype) for m in maps], dim=1)
        return fused


def _examples(workdir: object) -> list[FusionConfig]:
    from .bodypix import BodyPixConfig
    from .efficientnet_lite import EfficientNetLiteConfig

    return [FusionConfig(members=[EfficientNetLiteConfig(variant="lite0", weights=None),
                                  BodyPixConfig(weights=None, trainable=False)])]


@register_backbone("fusion", FusionConfig, _examples)
def load_fusion_backbone(config: FusionConfig) -> FusionBackbone:
    """Load every member, then fuse them."""
    return FusionBackbone(config, [load_backbone(m) for m in config.members])
