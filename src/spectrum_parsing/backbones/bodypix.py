"""BodyPix 2.0 MobileNetV1 (x0.50) as a Spectrum backbone: a small, human-centric, fine-tunable network.

The network (from the TensorFlow.js BodyPix model, Apache-2.0, converted to ONNX by tf2onnx) is ported to
plain PyTorch here. Facts read off the ONNX graphs (``MobileNetV1-x050-stride{16,8}.onnx``):

* input ``input``: NHWC float32 RGB in [-1, 1]; the graph transposes it to NCHW first;
* every convolution has ``auto_pad=SAME_UPPER`` (TensorFlow ``SAME``: the output has ``ceil(in / stride)``
  rows, an odd total padding puts the extra row at the bottom/right); there are no Pad nodes and no
  BatchNorm nodes (BN is folded into the convolution biases);
* every trunk convolution is followed by ``Clip(0, 6)`` (ReLU6); the heads have no activation;
* trunk: ``Conv2d_0`` (3x3, stride 2, 3 -> 16) and 13 depthwise-separable blocks ``Conv2d_{1..13}``
  (3x3 depthwise + ReLU6, 1x1 pointwise + ReLU6). Output channels 32, 64, 64, 128, 128, 256 x 8 and
  depthwise strides 1, 2, 1, 2, 1, 2, 1 x 7 (stride-16 file). The stride-8 file has the same shapes but
  block 6's depthwise stride is 1 and blocks 7..13 use dilation 2 (atrous), so it ends at stride 8;
* eight 1x1 heads read ``Conv2d_13_pointwise`` (the last trunk activation): ``segments`` (1 person logit),
  ``part_heatmaps`` (24 part logits), ``heatmaps`` (17), ``short_offsets`` (34), ``long_offsets`` (34),
  ``part_offsets`` (48, clamped to [0, 1] by Min/Max nodes), ``displacement_fwd`` / ``displacement_bwd`` (32).
  All are returned NHWC (``segments`` through a Reshape that, with one channel, equals the transpose).

Backbone taps (the last layer at each stride) and channels, with ``include_heads``:

============  =====================================  ====================================
stride        output_stride=16                       output_stride=8
============  =====================================  ====================================
4             Conv2d_3_pointwise (64)                Conv2d_3_pointwise (64)
8             Conv2d_5_pointwise (128)               Conv2d_13_pointwise (256) + heads (25)
16            Conv2d_13_pointwise (256) + heads(25)  2x2 max-pool of Conv2d_13 (256)
32            2x2 max-pool of Conv2d_13 (256)        4x4 max-pool of Conv2d_13 (256)
============  =====================================  ====================================

The network has no layer coarser than its output stride, so the coarser levels are parameter-free max-pools of
the final trunk features (as detectron2's ``LastLevelMaxPool`` makes P6): a new strided convolution
would start untrained, while a max-pool keeps the strongest ReLU6 responses. The heads (``segments`` and
``part_heatmaps`` raw logits) are appended at the network's own output stride as human priors.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..configs import ConfigBase, ConfigError
from .base import FeatureBackbone, check_images, crop_size, resolve_weights_path

# (output channels, depthwise stride in the stride-16 network) of blocks Conv2d_1 .. Conv2d_13 (x0.50).
BLOCKS: tuple[tuple[int, int], ...] = (
    (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2),
    (256, 1), (256, 1), (256, 1), (256, 1), (256, 1), (256, 1), (256, 1),
)
STEM_CHANNELS = 16

HEAD_CHANNELS: dict[str, int] = {
    "segments": 1,
    "part_heatmaps": 24,
    "heatmaps": 17,
    "short_offsets": 34,
    "long_offsets": 34,
    "part_offsets": 48,
    "displacement_fwd": 32,
    "displacement_bwd": 32,
}
"""The eight 1x1 heads of the ONNX graph (output name: channels)."""

PRIOR_HEADS: tuple[str, ...] = ("segments", "part_heatmaps")
"""Heads whose logits the backbone appends to its features when ``include_heads`` is set."""

PART_NAMES: tuple[str, ...] = (
    "left_face", "right_face", "left_upper_arm_front", "left_upper_arm_back", "right_upper_arm_front",
    "right_upper_arm_back", "left_lower_arm_front", "left_lower_arm_back", "right_lower_arm_front",
    "right_lower_arm_back", "left_hand", "right_hand", "torso_front", "torso_back", "left_upper_leg_front",
    "left_upper_leg_back", "right_upper_leg_front", "right_upper_leg_back", "left_lower_leg_front",
    "left_lower_leg_back", "right_lower_leg_front", "right_lower_leg_back", "left_feet", "right_feet",
)
"""Channel order of ``part_heatmaps``."""

OUTPUT_STRIDES = (8, 16)
LICENSE = "Apache-2.0"


@dataclass
class BodyPixConfig(ConfigBase):
    """Config of the BodyPix MobileNetV1 x0.50 backbone.

    ``weights``: our converted ``.safetensors`` (``scripts/convert_bodypix.py``) or the original ``.onnx``;
    ``None`` builds a randomly initialised network, for loading a trained Spectrum checkpoint whose
    ``model.safetensors`` carries the (fine-tuned) backbone weights. Relative paths are resolved against
    the directory of the JSON file they were read from.
    ``output_stride``: 16 or 8 (must match the weights: the two BodyPix files share shapes, not values).
    ``trainable``: fine-tune the backbone with the decoder (else it is frozen like the diffusion backbones).
    ``include_heads``: append the pretrained ``segments`` (1) + ``part_heatmaps`` (24) logits to the
    features at the network's output stride.
    """

    type: str = "bodypix"
    weights: str | None = None
    output_stride: int = 16
    trainable: bool = True
    include_heads: bool = True

    TYPES: ClassVar[tuple[str, ...]] = ("bodypix",)

    def __post_init__(self) -> None:
        if self.type not in self.TYPES:
            raise ConfigError(f"backbone type {self.type!r} is not one of {self.TYPES}")
        if self.output_stride not in OUTPUT_STRIDES:
            raise ConfigError(f"output_stride must be one of {OUTPUT_STRIDES}, got {self.output_stride!r}")
        if self.weights is not None and not isinstance(self.weights, str):
            raise ConfigError(f"weights must be a path string or null, got {type(self.weights).__name__}")

    def resolve_paths(self, base_dir: str | os.PathLike[str]) -> BodyPixConfig:
        """Return a copy whose relative ``weights`` path is made absolute against ``base_dir`` if it exists there."""
        return resolve_weights_path(self, base_dir)


# ------------------------------------------------------------------------------------------------ network
def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` / ONNX ``SAME_UPPER`` padding (before, after) of one spatial dimension."""
    extent = dilation * (kernel - 1) + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding, exact for any input size (extra row bottom/right)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups,
                         padding=0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
        top, bottom = same_padding(x.shape[-2], k, s, d)
        left, right = same_padding(x.shape[-1], k, s, d)
        if top != bottom or left != right:  # odd total: pad explicitly, the extra row/column at the end
            x = F.pad(x, (left, right, top, bottom))
            top = left = 0
        return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)


class SeparableBlock(nn.Module):
    """MobileNetV1 block: 3x3 depthwise conv + ReLU6, then 1x1 pointwise conv + ReLU6 (BN folded in)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.depthwise = SameConv2d(in_channels, in_channels, 3, stride=stride, dilation=dilation,
                                    groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.pointwise(F.relu6(self.depthwise(x), inplace=True)), inplace=True)


def block_geometry(output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) of the depthwise conv of blocks Conv2d_1..13 for a network of ``output_stride``.

    As in the BodyPix graphs: once the running stride reaches ``output_stride`` further strides become 1 and
    the following depthwise convs are dilated by the stride that was skipped.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    current, rate, out = 2, 1, []
    for _channels, stride in BLOCKS:
        if current == output_stride and stride > 1:
            out.append((1, rate))
            rate *= stride
        else:
            out.append((stride, rate))
            current *= stride
    return out


class BodyPixMobileNet(nn.Module):
    """The BodyPix MobileNetV1 x0.50 network in plain PyTorch (NCHW inside).

    Layers: ``conv0`` (``Conv2d_0``), ``blocks[i]`` (``Conv2d_{i+1}``, i = 0..12) and ``heads[name]`` for
    the names in ``heads`` (default: all eight of :data:`HEAD_CHANNELS`). Parameter names are the keys of
    the converted ``.safetensors`` files.
    """

    def __init__(self, output_stride: int = 16, heads: Sequence[str] = tuple(HEAD_CHANNELS)) -> None:
        super().__init__()
        unknown = sorted(set(heads) - set(HEAD_CHANNELS))
        if unknown:
            raise ValueError(f"unknown BodyPix head(s) {unknown}; known: {list(HEAD_CHANNELS)}")
        self.output_stride = output_stride
        self.conv0 = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        geometry = block_geometry(output_stride)
        blocks, channels = [], STEM_CHANNELS
        for (out_channels, _), (stride, dilation) in zip(BLOCKS, geometry):
            blocks.append(SeparableBlock(channels, out_channels, stride, dilation))
            channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.final_channels = channels
        self.heads = nn.ModuleDict({name: nn.Conv2d(channels, HEAD_CHANNELS[name], 1) for name in heads})
        # Output stride of layer i (0: conv0, i: Conv2d_i).
        strides, current = [2], 2
        for stride, _ in geometry:
            current *= stride
            strides.append(current)
        self.layer_strides: tuple[int, ...] = tuple(strides)
        self.layer_channels: tuple[int, ...] = (STEM_CHANNELS,) + tuple(c for c, _ in BLOCKS)

    def last_layer_at(self, stride: int) -> int:
        """Index of the last layer whose output has ``stride`` (0: conv0, i: Conv2d_i)."""
        layers = [i for i, s in enumerate(self.layer_strides) if s == stride]
        if not layers:
            raise ValueError(f"no BodyPix layer at stride {stride} (layer strides {self.layer_strides})")
        return layers[-1]

    def forward(self, x: torch.Tensor, taps: Sequence[int] = ()) -> tuple[dict[int, torch.Tensor],
                                                                          dict[str, torch.Tensor]]:
        """Run on NCHW ``x`` in [-1, 1]: (activations of the layers ``taps``, raw head outputs, NCHW)."""
        wanted = set(taps)
        acts: dict[int, torch.Tensor] = {}
        x = F.relu6(self.conv0(x), inplace=True)
        if 0 in wanted:
            acts[0] = x
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i in wanted:
                acts[i] = x
        return acts, {name: head(x) for name, head in self.heads.items()}

    def forward_onnx_like(self, x_nhwc: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ONNX model's outputs for NHWC ``x`` in [-1, 1]: every built head, NHWC, as the graph computes it."""
        _, heads = self(x_nhwc.permute(0, 3, 1, 2))
        out = {}
        for name, value in heads.items():
            if name == "part_offsets":
                value = value.clamp(0.0, 1.0)  # Min(x, 1) then Max(x, 0) in the graph
            out[name] = value.permute(0, 2, 3, 1)
        return out


# ------------------------------------------------------------------------------------------------ backbone
class BodyPixBackbone(FeatureBackbone):
    """Multi-scale features of BodyPix MobileNetV1; build it with :func:`load_bodypix` (this does no I/O).

    ``forward`` scales the [0, 1] image to [-1, 1] and pads it with black on the right/bottom to
    ``(Hc + 1, Wc + 1)``, ``Hc, Wc`` the size rounded up to 32: the ``16k + 1`` / ``8k + 1`` sizes BodyPix
    was run at. Every stride-2 convolution then sees an odd size and pads it symmetrically, so the stride-s
    tap has ``Hc / s + 1`` rows and its row i is centred on input row ``i * s``; the last row/column (which
    sees only padding) is cropped, leaving ``(Hc / s, Wc / s)``. Note the centres are at ``i * s``, not at
    ``i * s + (s - 1) / 2``: a (s - 1) / 2 pixel shift that fine-tuning absorbs.
    """

    saved_with_model = True

    def __init__(self, config: BodyPixConfig, net: BodyPixMobileNet) -> None:
        super().__init__()
        if net.output_stride != config.output_stride:
            raise ValueError(f"network output stride {net.output_stride} != config {config.output_stride}")
        missing = [h for h in PRIOR_HEADS if h not in net.heads] if config.include_heads else []
        if missing:
            raise ValueError(f"include_heads needs the network's {missing} head(s)")
        self.config = config
        self.net = net
        os_ = config.output_stride
        self.head_names: tuple[str, ...] = PRIOR_HEADS if config.include_heads else ()
        self._taps = {s: net.last_layer_at(s) for s in (4, 8, 16) if s <= os_}
        if not config.trainable:
            self.freeze()

    @property
    def trainable(self) -> bool:
        return bool(self.config.trainable)

    def feature_channels(self) -> dict[int, int]:
        """Channels per stride, from the network's geometry (see the module docstring's table)."""
        os_ = self.config.output_stride
        out = {s: self.net.layer_channels[layer] for s, layer in self._taps.items()}
        out[os_] += sum(HEAD_CHANNELS[n] for n in self.head_names)
        for stride in (16, 32):
            if stride > os_:
                out[stride] = self.net.final_channels
        return {s: out[s] for s in sorted(out)}

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Multi-scale features ``{4, 8, 16, 32: (B, C, Hc/s, Wc/s)}`` of images (B, 3, H, W) in [0, 1]."""
        check_images(images)
        h, w = images.shape[-2:]
        hc, wc = crop_size(h, 1), crop_size(w, 1)
        padded = F.pad(images, (0, wc + 1 - w, 0, hc + 1 - h), value=0.0)
        x = (padded * 2 - 1).to(self.dtype)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            acts, heads = self.net(x, taps=tuple(self._taps.values()))
            os_ = self.config.output_stride
            feats: dict[int, torch.Tensor] = {}
            for stride, layer in self._taps.items():
                feats[stride] = acts[layer][..., : hc // stride, : wc // stride]
            final = feats[os_]
            if self.head_names:
                priors = [heads[n][..., : hc // os_, : wc // os_] for n in self.head_names]
                feats[os_] = torch.cat([final, *priors], dim=1)
            for stride in (16, 32):
                if stride > os_:
                    k = stride // os_
                    feats[stride] = F.max_pool2d(final, kernel_size=k, stride=k)
        return {s: feats[s] for s in sorted(feats)}


# ------------------------------------------------------------------------------------------------ loading
