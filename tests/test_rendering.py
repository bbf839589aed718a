"""Rendering: RLE codecs and the overlay."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from spectrum_parsing.rendering import (
    COLOURS,
    DISTINCT_COLOURS,
    MIN_DELTA_E,
    _srgb_to_lab,
    categorical_colours,
    delta_e2000,
    label_colours,
    overlay,
    palette,
    side_by_side,
)
from spectrum_parsing.results import PartInstance, mask_box
from spectrum_parsing.rle import decode_rle, encode_rle, encode_rle_cropped


def test_cropped_rle_equals_the_full_mask_rle_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    for t in range(300):
        h, w = (int(v) for v in rng.integers(1, 20, 2))
        mask = np.zeros((h, w), bool)
        if t % 5:
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            y1, x1 = int(rng.integers(y0, h + 1)), int(rng.integers(x0, w + 1))
            mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < rng.random()
        if t % 7 == 0:
            mask[:] = True
        x0, y0, x1, y1 = box = mask_box(torch.from_numpy(mask))
        rle = encode_rle_cropped(mask[y0:y1, x0:x1], box, (h, w))
        assert rle == encode_rle(mask), t
        assert np.array_equal(decode_rle(rle), mask)


def test_instances_store_only_their_box() -> None:
    mask = torch.zeros(400, 600, dtype=torch.bool)
    mask[100:120, 200:230] = True
    part = PartInstance(label="hat", prompt_index=0, score=0.9, mask=mask)
    assert part.box == (200, 100, 230, 120) and part.crop.numel() == 20 * 30 and part.area == 600
    assert torch.equal(part.mask, mask)
    moved = part.replace(label="cap")
    assert moved.crop is part.crop and moved.label == "cap" and torch.equal(moved.mask, mask)


def test_overlay_colours_labelled_pixels_only() -> None:
    image = Image.new("RGB", (40, 30), (100, 100, 100))
    label_map = np.zeros((30, 40), np.int32)
    label_map[5:10, 5:10] = 1
    out = np.asarray(overlay(image, label_map, ["hair"], alpha=0.5))
    assert out.shape[0] > 30 and out.shape[1] >= 40  # the legend rows below
    assert (out[0, 0] == 100).all()
    expected = np.round(0.5 * 100 + 0.5 * palette(2, ["hair"])[1].astype(float))
    assert np.abs(out[7, 7].astype(float) - expected).max() <= 1


def test_delta_e2000_matches_sharmas_reference_pairs() -> None:
    # Sharma, Wu & Dalal (2005), test data pairs 1, 7 and 17.
    lab1 = np.array([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]])
    lab2 = np.array([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]])
    got = np.diag(delta_e2000(lab1, lab2))
    assert np.allclose(got, [2.0425, 2.3669, 27.1492], atol=1e-3)


def test_categorical_colours_are_the_shipped_constant_and_far_apart() -> None:
    computed = categorical_colours(DISTINCT_COLOURS)
    assert np.array_equal(computed, np.array(COLOURS, dtype=np.uint8))
    lab = _srgb_to_lab(computed)
    d = delta_e2000(lab, lab)
    np.fill_diagonal(d, np.inf)
    assert d.min() >= MIN_DELTA_E


def test_default_prompts_colours_differ_by_delta_e_12_and_keep_their_category_colour() -> None:
    from spectrum_parsing.pipeline import BUILTIN_DEFAULT_PROMPTS

    defaults = ["hair", "face", "left arm", "right arm", "left leg", "right leg", "hat", "sunglasses", "scarf",
                "upper clothes", "t-shirt", "shirt", "sweater", "jacket", "coat", "dress", "skirt", "pants",
                "jeans", "shorts", "socks", "left shoe", "right shoe", "bag", "belt"]
    for labels in (defaults, BUILTIN_DEFAULT_PROMPTS, ["saree", "heels", "hair"], ["Upper-Clothes", "upper clothes"]):
        colours = label_colours(labels)
        lab = _srgb_to_lab(colours)
        d = delta_e2000(lab, lab)
        np.fill_diagonal(d, np.inf)
        assert d.min() >= MIN_DELTA_E, labels
    # A category keeps its colour whatever else is shown (when nothing earlier took it).
    assert np.array_equal(label_colours(["face"])[0], label_colours(["dress", "face"])[1])
    assert np.array_equal(label_colours(["pants", "hair"])[1], label_colours(["hair"])[0])


def _legend_texts_fit(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (120, 120, 120))
    labels = ["hair", "face", "upper clothes", "pants", "right arm", "left shoe"]
    label_map = np.zeros((height, width), np.int32)
    for k in range(len(labels)):
        label_map[(k * height) // len(labels):((k + 1) * height) // len(labels)] = k + 1
    return overlay(image, label_map, labels, boxes=[(0, (1, 1, width - 1, height - 1))])


def test_legend_scales_wraps_and_is_never_cut() -> None:
    for width, height in ((80, 160), (180, 240), (4000, 3000)):
        out = _legend_texts_fit(width, height)
        legend = np.asarray(out)[height:]
        assert out.height > height and out.width >= width
        # every legend row ends inside the canvas: its last column is background white
        assert (legend[:, -1] == 255).all(), (width, legend.shape)
        dark = (legend.sum(-1) < 200).any(0)  # columns with text or swatch outlines
        assert dark.any()
    small, large = _legend_texts_fit(180, 240), _legend_texts_fit(4000, 3000)
    assert (large.height - 3000) > 2 * (small.height - 240)  # text grows with the image


def test_side_by_side_puts_the_photo_left_of_the_overlay() -> None:
    photo = Image.new("RGB", (50, 40), (10, 20, 30))
    overlaid = overlay(photo, np.zeros((40, 50), np.int32), [])
    out = side_by_side(photo, overlaid)
    assert out.width == 50 + overlaid.width and np.asarray(out)[5, 5].tolist() == [10, 20, 30]
