"""The shared pre/post-processing path: resizing, padded-size batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spectrum_parsing import SpectrumModel, SpectrumPipeline
from spectrum_parsing.inference import forward_grouped, padded_size, resize_for_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_padded_size_rounds_to_32_and_at_least_64():
    assert padded_size(320, 207) == (320, 224)
    assert padded_size(10, 50) == (64, 64) and padded_size(65, 96) == (96, 96)


def test_grouped_forward_equals_one_pass_per_input(tiny_model_dir):
    model = SpectrumModel.from_pretrained(tiny_model_dir).eval()
    rng = np.random.default_rng(0)
    shapes = [(64, 40), (64, 50), (40, 64), (64, 64), (64, 33), (20, 64)]  # padded: 64x64 for all but none
    inputs = [resize_for_model(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 64) for h, w in shapes]
    embeds = model.encode_prompts(["hat", "shirt", "person"])
    grouped = forward_grouped(model, inputs, embeds, max_batch=4)
    for t, (logits, masks) in zip(inputs, grouped):
        with torch.no_grad():
            alone = model(t, text_embeds=embeds)
        assert torch.allclose(logits, alone["pred_logits"][0], atol=1e-4)
        h4, w4 = alone["pred_masks"].shape[-2:]
        assert torch.allclose(masks[:, :h4, :w4], alone["pred_masks"][0], atol=1e-4)
    with pytest.raises(ValueError, match="max_batch"):
        forward_grouped(model, inputs, embeds, max_batch=0)


def test_top_down_crop_batching_does_not_change_results(tiny_model_dir):
    image = Image.open(EXAMPLES / "group.jpg").resize((240, 180))
    one = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, crop_batch=1)(image, threshold=0.0)
    many = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, crop_batch=8)(image, threshold=0.0)
    assert len(one.persons) == len(many.persons) == 5
    assert (one.label_map == many.label_map).mean() > 0.999
