"""Model inputs and outputs at image size: the one pre/post-processing path the pipeline and evaluation share.

An image is resized so its longest side is the model's input size (antialiased when shrinking); the model's
stride-4 mask logits are upsampled x4, cropped to the resized image and resized to the original image size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["outputs_at_size", "predict", "predict_batch", "resize_for_model"]


def resize_for_model(image: np.ndarray, size: int) -> torch.Tensor:
    """HWC uint8 image -> (1, 3, h, w) float in [0, 1] with its longest side resized to ``size``."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    t = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255)[None]
    if scale != 1:
        t = F.interpolate(t, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                          align_corners=False, antialias=scale < 1)
    return t


@torch.no_grad()
def predict_batch(model: Any, inputs: torch.Tensor, prompts: Sequence[str],
                  sizes: Sequence[tuple[int, int]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per image of a resized batch (B, 3, h, w): grounding logits (Q, P+1) and mask logits at ``sizes[i]``."""
    out = model(inputs.to(model.device), list(prompts))
    rh, rw = inputs.shape[-2:]
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
