"""Common interface of Spectrum's frozen feature backbones."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ..configs import STRIDES

T = TypeVar("T")

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
"""Floating-point dtypes by the names configs, caches and command-line options use."""


class FeatureBackbone(nn.Module):
    """A frozen network mapping RGB images to multi-scale feature maps.

    ``forward(images)`` takes a float tensor (B, 3, H, W) with values in [0, 1] and returns
    ``{stride: (B, C_stride, Hc / stride, Wc / stride)}`` for strides 4, 8, 16 and 32, where
    ``(Hc, Wc)`` is the input size rounded up to a multiple of 32: the feature maps cover the whole
    image and the right/bottom padding needed to make every level an integer size.
    """

    config: object
    saved_with_model: bool = False
    """True for small backbones whose weights a saved Spectrum model carries in its ``model.safetensors`` (so a
    fresh machine needs no other file); False for large ones named by source (Stable Diffusion)."""

    @property
    def trainable(self) -> bool:
        """True when the backbone is fine-tuned with the decoder (its features then cannot be cached).
        Backbones whose config can ask for fine-tuning override this."""
        return False

    def freeze(self) -> FeatureBackbone:
        """Put the backbone in eval mode and disable gradients for all its parameters, unless it is
        :attr:`trainable` (SpectrumModel calls this on every backbone)."""
        if self.trainable:
            return self
        self.eval()
        self.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FeatureBackbone:
        # A frozen backbone stays in eval mode, whatever the parent module asks.
        return super().train(mode and self.trainable)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def feature_channels(self) -> dict[int, int]:
        """Channels per stride. Backbones whose geometry is known declare it; the default (for networks whose
        taps depend on the loaded model, e.g. a diffusion UNet) is one small dry run, cached."""
        cached = getattr(self, "_feature_channels", None)
        if cached is None:
            with torch.no_grad():
                probe = torch.zeros(1, 3, 64, 64, device=self.device)
                feats = self(probe)
            cached = {s: int(f.shape[1]) for s, f in feats.items()}
            self._feature_channels = cached
        return dict(cached)


def resolve_weights_path(config: T, base_dir: str | os.PathLike[str], keep: Sequence[str] = ()) -> T:
    """A copy of ``config`` whose relative ``weights`` path is made absolute against ``base_dir`` when the file
    exists there; absolute paths, hub ids and the names in ``keep`` (e.g. ``"pypi"``) are left as they are."""
    weights = getattr(config, "weights", None)
    if weights and weights not in keep and not os.path.isabs(weights):
        candidate = Path(base_dir) / weights
        if candidate.exists():
            return dataclasses.replace(config, weights=str(candidate.resolve()))
    return config


def check_images(images: torch.Tensor) -> None:
    """Raise a clear error unless ``images`` is a float (B, 3, H, W) tensor."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a float tensor with values in [0, 1], got {images.dtype}")
    if images.shape[-1] < 1 or images.shape[-2] < 1:
        raise ValueError(f"images must be non-empty, got {tuple(images.shape)}")


def pad_to_multiple(images: torch.Tensor, multiple: int, value: float = 0.0) -> torch.Tensor:
    """Pad on the right and bottom so that height and width are multiples of ``multiple``."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return images
    return nn.functional.pad(images, (0, pw, 0, ph), value=value)


def crop_size(size: int, stride: int, divisibility: int = 32) -> int:
    """Size of the stride-``stride`` map that covers ``size`` pixels rounded up to ``divisibility``."""
    return math.ceil(size / divisibility) * divisibility // stride


class _StopForward(Exception):
    """Raised by a hook once every requested activation has been captured, to skip the rest."""


class ActivationCollector:
    """Collect outputs of named submodules with forward hooks.

    With ``stop_early`` the forward pass is cut short (via an exception caught by :meth:`capture`) as soon
    as the last requested layer has run, so e.g. the full-resolution half of a VAE decoder is never run.
    """

    def __init__(self, root: nn.Module, names: Sequence[str], stop_early: bool = False) -> None:
        modules = dict(root.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"feature layer(s) {missing} not found in {type(root).__name__}")
        self.root, self.names, self.stop_early = root, list(names), stop_early
        self.outputs: dict[str, torch.Tensor] = {}
        self._modules = [modules[n] for n in names]

    def _hook(self, name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            if hasattr(out, "sample") and not isinstance(out, torch.Tensor):
                out = out.sample
            self.outputs[name] = out
            if self.stop_early and len(self.outputs) == len(self.names):
                raise _StopForward

        return hook

    @contextmanager
    def capture(self) -> Iterator[dict[str, torch.Tensor]]:
        """Context in which the hooks are active; yields the dict that fills with activations."""
        self.outputs = {}
        handles = [m.register_forward_hook(self._hook(n)) for n, m in zip(self.names, self._modules)]
        try:
            yield self.outputs
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()


def group_by_stride(
    activations: Sequence[torch.Tensor], padded_size: tuple[int, int], image_size: tuple[int, int],
    fill_missing: bool = False,
) -> dict[int, torch.Tensor]:
    """Concatenate activations by output stride and crop them to the image rounded up to 32.

    ``fill_missing``: a stride no activation lands at is made by 2x2 max-pooling the next finer level (as
    detectron2's ``LastLevelMaxPool``), e.g. stride 32 for a UNet with only two levels; else it is an error.
    """
    groups: dict[int, list[torch.Tensor]] = {s: [] for s in STRIDES}
    for act in activations:
        stride = padded_size[0] // act.shape[-2]
        if stride not in groups or padded_size[1] // act.shape[-1] != stride:
            raise ValueError(
                f"activation of shape {tuple(act.shape)} has stride {stride}, not one of {STRIDES}; "
                "choose feature layers at strides 4, 8, 16 and 32"
            )
        hc, wc = crop_size(image_size[0], stride), crop_size(image_size[1], stride)
        groups[stride].append(act[..., :hc, :wc])
    empty = [s for s, g in groups.items() if not g]
    if empty and fill_missing and groups[STRIDES[0]]:
        for finer, s in zip(STRIDES, STRIDES[1:]):
            if not groups[s] and groups[finer]:
                base = torch.cat(groups[finer], dim=1)
                pooled = nn.functional.max_pool2d(base, kernel_size=2, stride=2, ceil_mode=True)
                hc, wc = crop_size(image_size[0], s), crop_size(image_size[1], s)
                groups[s] = [pooled[..., :hc, :wc]]
        empty = [s for s, g in groups.items() if not g]
    if empty:
        raise ValueError(f"no feature layer lands at stride(s) {empty}")
    return {s: torch.cat(g, dim=1) for s, g in groups.items()}
