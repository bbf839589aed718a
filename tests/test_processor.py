"""SpectrumImageProcessor: the one pre/post-processing path (resizing, padded-size batching, semantic inference,
person assembly) and the backend interface shared by the PyTorch model and the ONNX runner."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spectrum_parsing import SpectrumModel, SpectrumPipeline
from spectrum_parsing.outputs import SpectrumOutput
from spectrum_parsing.processor import (
    ImagePrediction,
    PersonCandidate,
    SpectrumImageProcessor,
    assemble_persons,
    forward_grouped,
    padded_size,
    resize_for_model,
)

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
    grouped = forward_grouped(model, inputs, embeds, max_batch=4, channels_last=False)
    fast = forward_grouped(model, inputs, embeds, max_batch=4)  # channels-last: another summation order
    for t, (logits, masks), (fast_logits, fast_masks) in zip(inputs, grouped, fast):
        with torch.no_grad():
            alone = model(t, text_embeds=embeds)
        assert torch.allclose(logits, alone["pred_logits"][0], atol=1e-4)
        h4, w4 = alone["pred_masks"].shape[-2:]
        assert torch.allclose(masks[:, :h4, :w4], alone["pred_masks"][0], atol=1e-4)
        assert torch.allclose(fast_logits, logits, atol=1e-2) and torch.allclose(fast_masks, masks, atol=1e-2)
    with pytest.raises(ValueError, match="max_batch"):
        forward_grouped(model, inputs, embeds, max_batch=0)


def test_top_down_crop_batching_does_not_change_results(tiny_model_dir):
    image = Image.open(EXAMPLES / "group.jpg").resize((240, 180))
    one = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, crop_batch=1)(image, score_threshold=0.0)
    many = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=64, crop_batch=8)(image, score_threshold=0.0)
    assert len(one.persons) == len(many.persons) == 5
    assert (one.label_map == many.label_map).mean() > 0.999


def test_label_map_best_prompt_with_background_threshold_and_columns():
    scores = torch.tensor([[[0.9, 0.2, 0.1]], [[0.1, 0.4, 0.6]], [[0.0, 0.45, 0.7]]])  # (P=3, 1, 3)
    labels, best = SpectrumImageProcessor.label_map(scores)
    assert labels.tolist() == [[1, 0, 3]] and torch.allclose(best, torch.tensor([[0.9, 0.45, 0.7]]))
    labels, _ = SpectrumImageProcessor.label_map(scores, columns=[1, 2], background_threshold=0.3)
    assert labels.tolist() == [[0, 3, 3]]  # prompt 0 never wins; 0.1 < 0.3 is background
    labels, best = SpectrumImageProcessor.label_map(scores, columns=[])
    assert labels.tolist() == [[0, 0, 0]] and labels.dtype == torch.long
    tie = torch.tensor([[[0.6]], [[0.6]], [[0.6]]])
    assert SpectrumImageProcessor.label_map(tie, columns=[2, 1])[0].tolist() == [[3]]  # a tie: the first column
    rand = torch.rand(6, 9, 11).round(decimals=1)  # many ties
    labels, best = SpectrumImageProcessor.label_map(rand, columns=[4, 0, 5, 2], background_threshold=0.35)
    cols = torch.tensor([4, 0, 5, 2])
    ref_best, arg = rand[cols].max(0)
    assert torch.equal(best, ref_best)
    assert torch.equal(labels, torch.where(ref_best < 0.35, 0, cols[arg] + 1))


def test_a_column_scored_alone_does_not_change_with_the_other_prompts():
    """``alone``: one more map per column, that phrase against no-object only, so adding prompts (columns of the
    logits) changes every softmax score but not it; the other maps are as without ``alone``."""
    g = torch.Generator().manual_seed(1)
    logits, masks = torch.randn(5, 4, generator=g) * 3, torch.randn(5, 8, 8, generator=g) * 3
    more = torch.cat([logits[:, :-1], torch.randn(5, 3, generator=g) * 3, logits[:, -1:]], 1)  # 3 more prompts
    processor = SpectrumImageProcessor(64)
    few = processor.semantic_scores(ImagePrediction(logits, masks, (32, 32), (32, 32)), alone=[1])
    many = processor.semantic_scores(ImagePrediction(more, masks, (32, 32), (32, 32)), alone=[1])
    assert few.shape == (4, 32, 32) and many.shape == (7, 32, 32)
    assert torch.allclose(few[-1], many[-1], atol=1e-6)  # the column alone: the same
    assert not torch.allclose(few[1], many[1], atol=1e-3)  # the same column in the softmax: diluted
    plain = processor.semantic_scores(ImagePrediction(logits, masks, (32, 32), (32, 32)))
    assert torch.equal(few[:-1], plain)
    low = torch.einsum("q,qhw->hw", (logits[:, 1] - logits[:, -1]).sigmoid(), masks.sigmoid()).clamp(max=1.0)
    want = torch.nn.functional.interpolate(low[None, None], scale_factor=4, mode="bilinear")[0, 0]
    assert torch.allclose(few[-1], want, atol=1e-6) and few[-1].max() == 1.0  # clipped to 1


def test_semantic_scores_are_mask2former_semantic_inference_at_stride_4_resized_to_the_image():
    g = torch.Generator().manual_seed(0)
    logits, masks = torch.randn(5, 4, generator=g) * 3, torch.randn(5, 8, 8, generator=g) * 3
    prediction = ImagePrediction(logits, masks, content_size=(32, 20), size=(50, 31))
    scores = SpectrumImageProcessor(64).semantic_scores(prediction)
    low = torch.einsum("qp,qhw->phw", logits.softmax(-1)[:, :-1], masks.sigmoid())
    up = torch.nn.functional.interpolate(low[None], scale_factor=4, mode="bilinear")[..., :32, :20]
    want = torch.nn.functional.interpolate(up, size=(50, 31), mode="bilinear")[0]
    assert scores.shape == (3, 50, 31) and torch.allclose(scores, want, atol=1e-6)
    constant = ImagePrediction(torch.tensor([[0.0, -1e4]]), torch.full((1, 2, 2), 1e4), (8, 8), (3, 3))
    assert torch.allclose(SpectrumImageProcessor(64).semantic_scores(constant), torch.ones(1, 3, 3))
    labels, _ = SpectrumImageProcessor(64).post_process_semantic(prediction, exclude=(0, 1))
    assert set(labels.unique().tolist()) <= {0, 3}


def test_assemble_persons_keeps_the_contract_label_map_equals_parts():
    h, w = 10, 12
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[:, :6] = 1  # prompt 0 on the left
    labels[:, 6:] = 2  # prompt 1 on the right
    labels[0, 0] = 3   # one pixel of prompt 2: under min_part_pixels
    scores = torch.full((h, w), 0.8)
    scores[:, 9:] = 0.1  # low-scored strip of prompt 1 inside person 1's region
    owned_a = torch.zeros(h, w, dtype=torch.bool)
    owned_a[:, :6] = True
    owned_b = torch.zeros(h, 6, dtype=torch.bool)
    owned_b[:, :3] = True  # person b's region is columns 6..11; it owns 6..8
    tiny = torch.zeros(2, 2, dtype=torch.bool)
    tiny[0, 0] = True
    candidates = [PersonCandidate((0, 0, w, h), owned_a, labels, scores, 0.9),
                  PersonCandidate((0, 0, 2, 2), tiny, labels[:2, :2], scores[:2, :2], 0.8),  # too small: dropped
                  PersonCandidate((6, 0, 12, 10), owned_b, labels[:, 6:], scores[:, 6:], 0.7, keypoints="kp")]
    persons, semantic = assemble_persons(candidates, ["shirt", "pants", "hat"], (h, w), threshold=0.3,
                                         min_person_pixels=4, min_part_pixels=2)
    assert [p.id for p in persons] == [0, 1] and persons[1].keypoints == "kp" and persons[1].score == 0.7
    assert [q.label for q in persons[0].parts] == ["shirt"] and [q.label for q in persons[1].parts] == ["pants"]
    assert persons[1].box == (6, 0, 9, 10) and persons[1].parts[0].box == (6, 0, 9, 10)
    # a part's score is its pixels' mean times its person's score; the threshold judges the pixels alone
    assert persons[0].parts[0].score == pytest.approx(0.8 * 0.9) and persons[1].parts[0].score == pytest.approx(0.56)
    unsure, _ = assemble_persons([dataclasses.replace(candidates[0], score=0.2)], ["shirt", "pants", "hat"], (h, w),
                                 threshold=0.3, min_person_pixels=4, min_part_pixels=2)
    assert [q.label for q in unsure[0].parts] == ["shirt"] and unsure[0].parts[0].score == pytest.approx(0.16)
    rendered = np.zeros((h, w), dtype=np.int32)
    for person in persons:
        for part in person.parts:
            rendered[part.mask.numpy()] = part.prompt_index + 1
    assert np.array_equal(rendered, semantic)
    hidden, _ = assemble_persons(candidates[:1], ["shirt", "pants", "hat"], (h, w), hidden={0}, min_part_pixels=1,
                                 min_person_pixels=4)
    assert [q.label for q in hidden[0].parts] == ["hat"]
    # pixel scores sum the queries' probabilities and may pass 1 (a whole-image parse): a part's score stays <= 1
    loud = dataclasses.replace(candidates[0], scores=torch.full((h, w), 1.3))
    loud_persons, _ = assemble_persons([loud], ["shirt", "pants", "hat"], (h, w), min_person_pixels=4,
                                       min_part_pixels=2)
    assert loud_persons[0].parts[0].score == 1.0


def test_the_pytorch_model_is_a_backend_returning_spectrum_output(tiny_model_dir):
    model = SpectrumModel.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64), text_embeds=model.encode_prompts(["hat", "person"]))
    assert isinstance(out, SpectrumOutput) and len(out) == 2
    # inference (eval mode) skips the earlier layers' predictions: training's deep supervision only
    assert out["pred_logits"] is out.pred_logits and "aux_outputs" not in out and out.get("nothing", 7) == 7
    logits, masks = out.image(1)
    assert logits.shape == (out.pred_logits.shape[1], 3) and masks.shape[-2:] == (16, 16)
    processor = SpectrumImageProcessor(64)
    image = np.random.default_rng(0).integers(0, 256, (50, 30, 3), dtype=np.uint8)
    (prediction,) = processor.predict(model, [image], model.encode_prompts(["hat", "person"]))
    assert prediction.content_size == (64, 38) and tuple(prediction.size) == (50, 30)
    assert processor.semantic_scores(prediction).shape == (2, 50, 30)
    with pytest.raises(ValueError, match="image_size"):
        SpectrumImageProcessor(10)
