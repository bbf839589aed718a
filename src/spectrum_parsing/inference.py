"""Model inputs and outputs at image size: the one pre/post-processing path of the pipeline (top-down crops and
whole images), evaluation and the ONNX runner.

An image is resized so its longest side is the model's input size ``S`` (antialiased when shrinking) and
zero-padded right/bottom to ``S x S`` (:func:`pad_square`): exactly how training presents images (random
scale, then an ``S x S`` crop padded where the image is smaller), and exactly what the fixed-size ONNX export
takes, so PyTorch and ONNX Runtime see the same tensor. The model's stride-4 mask logits are upsampled x4,
cropped to the resized image and resized to the original image size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["forward_grouped", "outputs_at_size", "pad_square", "padded_size", "predict", "predict_batch",
           "resize_for_model"]

FEATURE_MULTIPLE = 32
"""Every backbone's features cover its input rounded up to a multiple of 32, padded with black at the right and
bottom (:class:`~spectrum_parsing.backbones.base.FeatureBackbone`)."""
MIN_MODEL_SIDE = 64
"""``SpectrumModel`` pads sides under this (black, right/bottom): the coarsest level (stride 32) needs 2 cells."""


def resize_for_model(image: np.ndarray, size: int) -> torch.Tensor:
    """HWC uint8 image -> (1, 3, h, w) float in [0, 1] with its longest side resized to ``size``."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    t = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255)[None]
    if scale != 1:
        t = F.interpolate(t, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                          align_corners=False, antialias=scale < 1)
    return t


def pad_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (B, 3, h, w) right/bottom to (B, 3, size, size); h and w must not exceed ``size``."""
    h, w = images.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"images of {h}x{w} do not fit the exported {size}x{size} input")
    return F.pad(images, (0, size - w, 0, size - h))


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size the model really runs ``height x width`` at: each side rounded up to a multiple of 32, at least
    64. Inputs zero-padded to it give the same outputs as unpadded ones, so inputs with equal padded sizes can
    share a forward pass (Mask2Former's ``size_divisibility`` batching, without changing any result)."""
    def side(n: int) -> int:
        return max(MIN_MODEL_SIDE, -(-n // FEATURE_MULTIPLE) * FEATURE_MULTIPLE)

    return side(height), side(width)


@torch.no_grad()
def forward_grouped(model: Any, inputs: Sequence[torch.Tensor], text_embeds: torch.Tensor,
                    max_batch: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Grounding logits (Q, P+1) and stride-4 mask logits (Q, H/4, W/4) of each resized input (1, 3, h, w).

    Inputs whose :func:`padded_size` is equal run together (at most ``max_batch`` per pass), zero-padded to it;
    the results are those of one pass per input (the masks cover the padded size: crop the ``4 x`` upsampled
    masks to ``(h, w)``, as :func:`outputs_at_size` does)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    results: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(inputs)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(inputs):
        groups.setdefault(padded_size(*t.shape[-2:]), []).append(i)
    for (ph, pw), members in groups.items():
        for start in range(0, len(members), max_batch):
            chunk = members[start:start + max_batch]
            batch = torch.cat([F.pad(inputs[i], (0, pw - inputs[i].shape[-1], 0, ph - inputs[i].shape[-2]))
                               for i in chunk])
            out = model(batch.to(model.device), text_embeds=text_embeds)
            for k, i in enumerate(chunk):
                results[i] = (out["pred_logits"][k], out["pred_masks"][k])
    return results  # type: ignore[return-value]


@torch.no_grad()
def predict_batch(model: Any, inputs: torch.Tensor, prompts: Sequence[str],
                  sizes: Sequence[tuple[int, int]], square: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per image of a resized batch (B, 3, h, w): grounding logits (Q, P+1) and mask logits at ``sizes[i]``.
    The batch runs padded to a square of its longest side (:func:`pad_square`), as in training (``square``;
    False: only to multiples of 32, inside the backbone)."""
    rh, rw = inputs.shape[-2:]
    out = model((pad_square(inputs, max(rh, rw)) if square else inputs).to(model.device), list(prompts))
    return [outputs_at_size(out["pred_logits"][k], out["pred_masks"][k], (rh, rw), size)
            for k, size in enumerate(sizes)]


def outputs_at_size(logits: torch.Tensor, masks: torch.Tensor, input_size: tuple[int, int],
                    size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's decoder outputs: logits (Q, P+1) as float, and mask logits (Q, h/4, w/4) of a model input
    whose image content is the top-left ``input_size`` upsampled x4, cropped to it and resized to ``size``."""
    rh, rw = input_size
    up = F.interpolate(masks[None].float(), scale_factor=4, mode="bilinear", align_corners=False)[..., :rh, :rw]
    return logits.float(), F.interpolate(up, size=size, mode="bilinear", align_corners=False)[0]


def predict(model: Any, image: np.ndarray, prompts: Sequence[str],
            image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grounding logits (Q, P+1) and mask logits (Q, H, W) at the image's original size."""
    return predict_batch(model, resize_for_model(image, image_size), prompts, [image.shape[:2]])[0]
