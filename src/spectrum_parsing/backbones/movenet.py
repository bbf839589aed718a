"""MoveNet-MultiPose features as a frozen backbone: a human-centric, keypoint-aware feature pyramid.

The person detector's network (MobileNetV2 + FPN, ported from its TF.js graph in :mod:`..persons.tfgraph`)
run on the parser's pixels, tapping its FPN at every stride::

    stride 4:  FPN output (re_lu_2) + the 17 keypoint-heatmap logits + the person-centre logit
    stride 8:  FPN level re_lu_1      stride 16: FPN level re_lu      stride 32: FPN top (conv2d)

The graph's constants are buffers, so the backbone is always frozen; a Spectrum model carries them in its own
``model.safetensors`` (``saved_with_model``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..configs import STRIDES, ConfigBase, ConfigError
from .base import FeatureBackbone, resolve_weights_path
from .registry import register_backbone

_FPN = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/"
TAPS: dict[int, tuple[str, ...]] = {
    4: (_FPN + "re_lu_2/Relu", "StatefulPartitionedCall/kpt_heatmap_0/conv2d_7/BiasAdd",
        "StatefulPartitionedCall/center_0/conv2d_4/BiasAdd"),
    8: (_FPN + "re_lu_1/Relu",),
    16: (_FPN + "re_lu/Relu",),
    32: (_FPN + "conv2d/BiasAdd",),
}
PACKAGED = "package"


@dataclass
class MoveNetFeaturesConfig(ConfigBase):
    """Config of the MoveNet-MultiPose feature backbone.

    ``weights``: ``"package"`` (the port shipped in ``spectrum_parsing/weights/movenet-multipose``) or a
    directory in the same format (``graph.json`` + ``model.safetensors``, ``scripts/convert_human_models.py``);
    ``None``: the packaged graph, whose constants a trained Spectrum checkpoint then overwrites.
    """

    type: str = "movenet"
    weights: str | None = PACKAGED

    TYPES: ClassVar[tuple[str, ...]] = ("movenet",)

    def __post_init__(self) -> None:
        if self.type not in self.TYPES:
            raise ConfigError(f"backbone type {self.type!r} is not one of {self.TYPES}")
        if self.weights is not None and not isinstance(self.weights, str):
            raise ConfigError(f"weights must be a directory, 'package' or null, got {type(self.weights).__name__}")

    def resolve_paths(self, base_dir: str | os.PathLike[str]) -> MoveNetFeaturesConfig:
        """Return a copy whose relative ``weights`` directory is made absolute against ``base_dir``."""
        return resolve_weights_path(self, base_dir, keep=(PACKAGED,))


class MoveNetBackbone(FeatureBackbone):
    """MoveNet-MultiPose's feature pyramid on images in [0, 1] (see the module docstring for the taps)."""

    saved_with_model = True

    def __init__(self, config: MoveNetFeaturesConfig, graph: torch.nn.Module) -> None:
        super().__init__()
        self.config = config
        self.graph = graph

    @property
    def device(self) -> torch.device:
        return next(self.graph.buffers()).device  # constants are buffers: there are no parameters

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features ``{4, 8, 16, 32}`` of ``images`` (B, 3, H, W) in [0, 1], padded right/bottom to 32."""
        h, w = images.shape[-2:]
        x = F.pad(images, (0, (-w) % 32, 0, (-h) % 32))
        x = (x * 255.0).permute(0, 2, 3, 1).contiguous()  # the graph's input: NHWC pixel values
        names = [n for s in STRIDES for n in TAPS[s]]
        with torch.no_grad():  # always frozen: its constants are buffers
            out = self.graph(x, outputs=names)
        return {s: torch.cat([out[n] for n in TAPS[s]], dim=-1).permute(0, 3, 1, 2).contiguous() for s in STRIDES}


@register_backbone("movenet", MoveNetFeaturesConfig, lambda workdir: [MoveNetFeaturesConfig()])
def load_movenet_backbone(config: MoveNetFeaturesConfig) -> MoveNetBackbone:
    """Load the ported graph named by ``config.weights`` (the packaged one for ``"package"`` and ``None``)."""
    from ..persons.tfgraph import load_graph_model
    from ..persons.types import WEIGHTS_DIR

    source = WEIGHTS_DIR / "movenet-multipose" if config.weights in (None, PACKAGED) else Path(config.weights)
    graph = load_graph_model(source).eval()
    graph.requires_grad_(False)
    return MoveNetBackbone(config, graph)
