"""Image loading and conversion helpers shared by the CLI and the API."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageLoadError(ValueError):
    """An input could not be read as an image."""


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file as RGB, applying its EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()
            return ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageLoadError(f"{path}: not a readable image ({err})") from None


def to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """RGB PIL image or HWC uint8 array -> float tensor (3, H, W) in [0, 1]."""
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an HWC RGB uint8 image, got shape {array.shape} dtype {array.dtype}")
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
