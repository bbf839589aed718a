"""Bare skin the parser missed, found by the person's own skin colour.

On real photos the parser finds a person's face and arms far more often than bare legs (it saw bare legs labelled
on studio photos only), but a person's skin has one colour. :func:`skin_colour_mask` fits a Gaussian to the
chromaticity (r, g: shading changes the intensity, not the proportions) of the skin the parser did find, and
returns the candidate pixels within ``max_distance`` (Mahalanobis) of it. The caller chooses the candidates (the
person's own pixels the parser left unlabelled, near a limb) and names what is returned by pose. Pure numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_SEED_PIXELS", "RED_SHARE", "chroma", "skin_colour_mask"]

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


def skin_colour_mask(image: np.ndarray, seeds: np.ndarray, candidates: np.ndarray,
                     max_distance: float = 1.5, min_spread: float = 2.0, red_share: float = RED_SHARE
                     ) -> np.ndarray:
    """Bool (H, W): the ``candidates`` whose chromaticity lies within ``max_distance`` standard deviations
    (Mahalanobis) of the chromaticity of the ``seeds`` (bool masks of ``image``'s size). ``min_spread``: the
    smallest standard deviation (chromaticity levels, of 255) per axis, so a flat-lit seed does not make the model
    needle-thin; ``red_share``: a returned pixel's red chromaticity above grey is at least this share of the seeds'
    (:data:`RED_SHARE`). All False when there are fewer than :data:`MIN_SEED_PIXELS` seeds."""
    seeds, candidates = np.asarray(seeds, dtype=bool), np.asarray(candidates, dtype=bool)
    out = np.zeros(candidates.shape, dtype=bool)
    if int(seeds.sum()) < MIN_SEED_PIXELS or not candidates.any():
        return out
    image = np.asarray(image)
    sample = chroma(image[seeds]).astype(np.float64)  # per pixel: only the pixels used
    mean = sample.mean(0)
    cov = np.cov(sample, rowvar=False) + np.eye(2) * min_spread**2
    inverse = np.linalg.inv(cov)
    candidate = chroma(image[candidates]).astype(np.float64)
    diff = candidate - mean
    d2 = np.einsum("ni,ij,nj->n", diff, inverse, diff)
    min_red = NEUTRAL + red_share * max(float(mean[0]) - NEUTRAL, 0.0)
    out[candidates] = (d2 <= max_distance**2) & (candidate[:, 0] >= min_red)
    return out
