"""Skin colour model (spectrum_parsing.skin)."""

from __future__ import annotations

import numpy as np

from spectrum_parsing.skin import MIN_SEED_PIXELS, ColourImage, chroma, skin_colour_distance, skin_colour_mask


def test_same_chroma_in_shadow_is_skin_other_colours_are_not():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :10] = (220, 170, 140)  # lit skin: the seeds
    image[:, 10:20] = (110, 85, 70)  # the same skin in shadow (half the light: same hue, lower luminance)
    image[:, 20:] = (60, 90, 200)  # a blue shirt
    seeds = np.zeros(image.shape[:2], bool)
    seeds[:, :10] = True
    candidates = ~seeds
    found = skin_colour_mask(image, seeds, candidates)
    assert found[:, 10:20].all() and not found[:, 20:].any() and not found[:, :10].any()  # only candidates


def test_too_few_seeds_give_nothing():
    image = np.full((10, 10, 3), 200, np.uint8)
    seeds = np.zeros((10, 10), bool)
    seeds.flat[: MIN_SEED_PIXELS - 1] = True
    assert not skin_colour_mask(image, seeds, ~seeds).any()


def test_chroma_of_grey_is_neutral():
    grey = np.full((2, 2, 3), 77, np.uint8)
    assert np.allclose(chroma(grey), 255.0 / 3, atol=0.01)  # a third of the light in each channel


def test_grey_is_not_grown_from_red_seeds_however_wide_their_model():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:10, :10] = (200, 140, 100)  # skin
    image[10:, :10] = (120, 110, 100)  # seeds that strayed onto a dull garment: a wide colour model
    image[:, 10:20] = (100, 70, 50)  # the same skin in shadow
    image[:, 20:] = (60, 60, 58)  # grey trousers in shadow
    seeds = np.zeros(image.shape[:2], bool)
    seeds[:, :10] = True
    wide = skin_colour_mask(image, seeds, ~seeds, max_distance=3.0, red_share=0.0)
    assert wide[:, 20:].all()  # the rule is what keeps the trousers out
    found = skin_colour_mask(image, seeds, ~seeds, max_distance=3.0)
    assert found[:, 10:20].all() and not found[:, 20:].any()


def test_on_a_black_and_white_photo_grey_seeds_still_grow():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :10] = 180
    image[:, 10:] = 90  # the same grey skin in shadow
    seeds = np.zeros(image.shape[:2], bool)
    seeds[:, :10] = True
    assert skin_colour_mask(image, seeds, ~seeds)[:, 10:].all()


def test_one_distance_map_gives_every_threshold_of_the_mask():
    """``skin_colour_distance(image, seeds) <= t`` is ``skin_colour_mask`` at ``max_distance=t`` with every pixel
    a candidate, for any t: one colour model per person serves every rule that thresholds it."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    image[:10, :20] = (210, 160, 130) + rng.integers(-12, 13, (10, 20, 3))  # a noisy skin patch: the seeds
    seeds = np.zeros(image.shape[:2], bool)
    seeds[:10, :20] = True
    distance = skin_colour_distance(image, seeds)
    assert distance is not None and distance.shape == image.shape[:2]
    everywhere = np.ones(image.shape[:2], bool)
    for t in (0.5, 1.0, 1.5, 3.0):
        assert np.array_equal(distance <= t, skin_colour_mask(image, seeds, everywhere, max_distance=t))
    assert np.isinf(distance[(image[..., 0] < 60) & (image[..., 2] > 200)]).all()  # blue: less red than skin
    few = np.zeros_like(seeds)
    few.flat[: MIN_SEED_PIXELS - 1] = True
    assert skin_colour_distance(image, few) is None


def test_a_colour_image_shares_its_chromaticity_and_gives_the_same_distances():
    """Two colour models of one crop (bare skin grown, the fill's skin guard) read its chromaticity once, with the
    distances computed from the array itself."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    colour = ColourImage(image)
    for rows in (slice(0, 8), slice(8, 20)):  # two different seed sets
        seeds = np.zeros(image.shape[:2], bool)
        seeds[rows] = True
        assert np.array_equal(skin_colour_distance(colour, seeds), skin_colour_distance(image, seeds))
    first = colour.chroma
    assert colour.chroma is first and np.array_equal(first, chroma(image))  # computed once, kept
    assert skin_colour_distance(colour, np.zeros(image.shape[:2], bool)) is None  # too few seeds
