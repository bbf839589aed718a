"""Photometric transforms: colour jitter (image only, labels untouched)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sample import Sample
from .geometric import _replace

# --------------------------------------------------------------------------------------------
# Colour jitter
# --------------------------------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


@dataclass
class ColorJitter:
    """Random brightness, contrast, saturation and hue changes of the image only (labels untouched).

    Factors follow torchvision: brightness/contrast/saturation ``x`` draws a factor in [max(0, 1 - x), 1 + x]
    (contrast blends with the mean grey level, saturation with the greyscale image); ``hue`` in [0, 0.5]
    rotates the chroma plane of YIQ space by a fraction in [-hue, hue] of a full turn (luma is preserved).
    The four operations run in random order; with probability ``1 - p`` the image is left as is.
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    p: float = 1.0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")

    @staticmethod
    def _factor(rng: np.random.Generator, amount: float) -> float:
        return float(rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return _replace(sample)
        img = sample.image.astype(np.float32)
        for op in rng.permutation(4):
            if op == 0 and self.brightness > 0:
                img = img * self._factor(rng, self.brightness)
            elif op == 1 and self.contrast > 0:
                mean = float((np.clip(img, 0, 255) @ _LUMA).mean())
                img = mean + (img - mean) * self._factor(rng, self.contrast)
            elif op == 2 and self.saturation > 0:
                grey = (img @ _LUMA)[..., None]
                img = grey + (img - grey) * self._factor(rng, self.saturation)
            elif op == 3 and self.hue > 0:
                angle = 2.0 * np.pi * float(rng.uniform(-self.hue, self.hue))
                cos, sin = np.cos(angle), np.sin(angle)
                rotate = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
                matrix = (_YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ).astype(np.float32)
                img = img @ matrix.T
            img = np.clip(img, 0.0, 255.0)
        return _replace(sample, image=np.rint(img).astype(np.uint8))


