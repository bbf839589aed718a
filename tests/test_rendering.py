"""Rendering: RLE codecs and the overlay."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from spectrum_parsing.postprocess import PartInstance, mask_box
from spectrum_parsing.rendering import overlay, palette
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
    assert out.shape == (30 + 22, 40, 3)  # the legend row below
    assert (out[0, 0] == 100).all()
    expected = np.round(0.5 * 100 + 0.5 * palette(2)[1].astype(float))
    assert np.abs(out[7, 7].astype(float) - expected).max() <= 1
