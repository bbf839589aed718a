"""Bare skin the parser missed, found by the person's own skin colour.

On real photos the parser finds a person's face and arms far more often than bare legs (it saw bare legs labelled
on studio photos only), but a person's skin has one colour. :func:`skin_colour_mask` fits a Gaussian to the
chromaticity (r, g: shading changes the intensity, not the proportions) of the skin the parser did find, and
returns the candidate pixels within ``max_distance`` (Mahalanobis) of it. The caller chooses the candidates (the
person's own pixels the parser left unlabelled, near a limb) and names what is returned by pose. Pure numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_SEED_PIXELS", "RED_SHARE", "ColourImage", "chroma", "skin_colour_distance", "skin_colour_mask"]

MIN_SEED_PIXELS = 64
"""Fewer seed pixels than this give no colour model (nothing is returned)."""
NEUTRAL = 255.0 / 3.0
"""The chromaticity of grey."""
RED_SHARE = 0.5
"""A grown pixel is at least this share as red as the seeds (red chromaticity above grey's): a few reddish seeds'
wide colour model otherwise reached grey trousers in shadow. On a black-and-white photo the seeds are grey and
nothing is ruled out."""


def chroma(image: np.ndarray) -> np.ndarray:
    """(..., 2) float32 chromaticity r, g (R / (R+G+B), G / (R+G+B), times 255) of (..., 3) uint8 RGB pixels (an
    (H, W, 3) image or an (N, 3) selection): the same surface in shadow keeps its chromaticity."""
    rgb = np.asarray(image, dtype=np.float32)
    total = rgb.sum(-1, keepdims=True) + 3.0  # +1 per channel: black stays neutral
    return 255.0 * (rgb[..., :2] + 1.0) / total


def _colour_model(sample: np.ndarray, min_spread: float, red_share: float
                  ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Mean, inverse covariance and smallest red chromaticity of the colour model of the seeds' (N, 2) chromaticity
    ``sample`` (None: too few seeds)."""
    if len(sample) < MIN_SEED_PIXELS:
        return None
    sample = sample.astype(np.float64)
    mean = sample.mean(0)
    inverse = np.linalg.inv(np.cov(sample, rowvar=False) + np.eye(2) * min_spread**2)
    return mean, inverse, NEUTRAL + red_share * max(float(mean[0]) - NEUTRAL, 0.0)


def _distance(c: np.ndarray, model: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    """float32 Mahalanobis distance of pixels of (N, 2) chromaticity ``c`` to ``model``; inf where less red than it
    allows (the quadratic form written out in float32: a whole crop in a few milliseconds)."""
    mean, inverse, min_red = model
    dx, dy = c[:, 0] - np.float32(mean[0]), c[:, 1] - np.float32(mean[1])
    d2 = np.float32(inverse[0, 0]) * dx * dx + np.float32(2.0 * inverse[0, 1]) * dx * dy \
        + np.float32(inverse[1, 1]) * dy * dy
    return np.where(c[:, 0] >= np.float32(min_red), np.sqrt(np.maximum(d2, 0.0)), np.float32(np.inf))


class ColourImage:
    """An (H, W, 3) uint8 RGB image whose :func:`chroma` is computed on first use and kept: the colour models
    fitted on one crop (bare skin grown by colour, the fill's skin guard) read it once."""

    __slots__ = ("_chroma", "rgb")

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = np.asarray(rgb)
        self._chroma: np.ndarray | None = None

    @property
    def chroma(self) -> np.ndarray:
        """(H, W, 2) float32 chromaticity of :attr:`rgb`."""
        if self._chroma is None:
            self._chroma = chroma(self.rgb)
        return self._chroma


def skin_colour_distance(image: np.ndarray | ColourImage, seeds: np.ndarray, min_spread: float = 2.0,
                         red_share: float = RED_SHARE) -> np.ndarray | None:
    """(H, W) float32: every pixel's distance (standard deviations, Mahalanobis) to the chromaticity of the
    ``seeds`` (bool mask of ``image``'s size); inf for a pixel less red than :data:`RED_SHARE` allows; None when
    there are fewer than :data:`MIN_SEED_PIXELS` seeds. One model, many thresholds: ``distance <= t`` is
    :func:`skin_colour_mask` with ``max_distance=t`` and every pixel a candidate. A :class:`ColourImage` shares
    its chromaticity between calls."""
    seeds = np.asarray(seeds, dtype=bool)
    if int(seeds.sum()) < MIN_SEED_PIXELS:
        return None
    c = image.chroma if isinstance(image, ColourImage) else chroma(image)
    model = _colour_model(c[seeds], min_spread, red_share)
    assert model is not None
    return _distance(c.reshape(-1, 2), model).reshape(c.shape[:2])


def skin_colour_mask(image: np.ndarray, seeds: np.ndarray, candidates: np.ndarray,
                     max_distance: float = 1.5, min_spread: float = 2.0, red_share: float = RED_SHARE
                     ) -> np.ndarray:
    """Bool (H, W): the ``candidates`` whose chromaticity lies within ``max_distance`` standard deviations
    (Mahalanobis) of the chromaticity of the ``seeds`` (bool masks of ``image``'s size). ``min_spread``: the
    smallest standard deviation (chromaticity levels, of 255) per axis, so a flat-lit seed does not make the model
    needle-thin; ``red_share``: a returned pixel's red chromaticity above grey is at least this share of the seeds'
    (:data:`RED_SHARE`). All False when there are fewer than :data:`MIN_SEED_PIXELS` seeds."""
    candidates = np.asarray(candidates, dtype=bool)
    out = np.zeros(candidates.shape, dtype=bool)
    image = np.asarray(image)
    seeds = np.asarray(seeds, dtype=bool)
    model = _colour_model(chroma(image[seeds]), min_spread, red_share)  # per pixel: only the pixels used
    if model is None or not candidates.any():
        return out
    out[candidates] = _distance(chroma(image[candidates]), model) <= max_distance
    return out
