"""Evaluation metrics against hand-computed cases, and the protocol logic with an oracle predictor."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spectrum_parsing.data.sample import IGNORE_ID, Sample, Segment
from spectrum_parsing.evaluation import (
    EvalConfig,
    confusion_matrix,
    confusions,
    evaluate,
    iou_per_class,
    protocol_classes,
    summarize,
    to_json,
    to_markdown,
)
from spectrum_parsing.outputs import SpectrumOutput
from spectrum_parsing.pipeline import SpectrumPipeline


def test_confusion_and_iou_hand_computed():
    gt = np.array([[0, 0, 1, 1], [2, 2, 1, IGNORE_ID]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 1, 2]])
    cm = confusion_matrix(gt, pred, 3)
    # rows = gt, cols = pred; the ignored pixel is not counted
    assert cm.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    ious = iou_per_class(cm)
    # class 0: tp 1, union 1+1+1 = 3; class 1: tp 3, union 3+1 = 4; class 2: tp 1, union 2 = 2
    assert np.allclose(ious, [1 / 3, 3 / 4, 1 / 2])
    result = summarize(cm, ["bg", "a", "b"])
    assert math.isclose(result["miou"], 100 * (1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert math.isclose(result["pixel_acc"], 100 * 5 / 7)
    assert result["per_class"] == {"bg": 33.33, "a": 75.0, "b": 50.0}
    # where each class's pixels went instead: bg's 2 pixels half "a"; all 3 of "a" right; "b" half "bg"
    assert confusions(cm, ["bg", "a", "b"]) == {"bg": [["a", 50.0]], "a": [], "b": [["bg", 50.0]]}
    wide = np.array([[5, 0, 0, 0], [6, 1, 3, 0], [0, 0, 0, 0], [0, 0, 0, 2]])
    assert confusions(wide, ["bg", "a", "b", "c"], top=1) == {"bg": [], "a": [["bg", 60.0]], "c": []}


def test_absent_classes_do_not_count_and_bad_ids_raise():
    cm = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 4)
    result = summarize(cm, ["bg", "a", "b", "c"])
    assert result["miou"] == 100.0 and result["per_class"]["c"] is None
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="size"):
        confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), 3)


COLOURS = {1: (250, 0, 0), 2: (0, 250, 0), 3: (0, 0, 250)}  # face, upper clothes, pants


class ColourDataset:
    """Images whose colours encode their labels, so an oracle can recover them."""

    name = "toy"
    classes = ["background", "face", "upper-clothes", "pants"]
    canonical = [None, "face", "upper clothes", "pants"]

    def __init__(self, n: int = 3) -> None:
        self.items = []
        for k in range(n):
            sem = np.zeros((32, 64), dtype=np.int32)  # no padding: no corners
            # Full-width bands on the 4-pixel grid: bilinear upsampling of stride-4 masks is then exact.
            sem[4 * k:4 * k + 8] = 1
            sem[12:20] = 2
            sem[20:28] = 3
            sem[31, 0] = IGNORE_ID
            self.items.append(sem)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        sem = self.items[i]
        image = np.zeros((*sem.shape, 3), dtype=np.uint8)
        for cid, colour in COLOURS.items():
            image[sem == cid] = colour
        segments = [Segment(self.canonical[c], sem == c, 0) for c in (1, 2, 3)]
        segments.append(Segment("person", (sem > 0) & (sem != IGNORE_ID), 0))
        return Sample(image=image, segments=segments, semantic=sem, classes=self.classes, image_id=str(i),
                      dataset="toy", has_instances=True)


class OracleModel(torch.nn.Module):
    """A stand-in for SpectrumModel behind the real pipeline and processor (the backend interface): for each
    prompt, exactly the pixels of its colour (``person``: all coloured pixels). Prompt embeddings are indices."""

    VOCAB = ["face", "upper clothes", "pants", "person"]
    by_name = {"face": 1, "upper clothes": 2, "pants": 3}

    def __init__(self, swap: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.swap = swap
        self.device = torch.device("cpu")
        self.config = SimpleNamespace(person_prompt="person", input_size=64, default_prompts=None, ebp_prompts=[])

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        return torch.tensor([[float(self.VOCAB.index(p)) if p in self.VOCAB else -1.0] for p in prompts])

    def forward(self, images: torch.Tensor, *, text_embeds: torch.Tensor) -> SpectrumOutput:
        prompts = [self.VOCAB[int(i)] if i >= 0 else "unknown" for i in text_embeds[:, 0]]
        all_masks, all_logits = [], []
        for image in images:
            x = (image * 255).round()
            masks, logits = [], []
            for p, prompt in enumerate(prompts):
                target = prompt
                if self.swap and prompt in self.swap:
                    target = self.swap[1 - self.swap.index(prompt)]
                if target == "person":
                    m = x.sum(0) > 0
                elif target == "unknown":
                    m = torch.zeros(x.shape[1:], dtype=torch.bool)
                else:
                    colour = torch.tensor(COLOURS[self.by_name[target]], dtype=torch.float32)[:, None, None]
                    m = (x - colour).abs().sum(0) < 30
                masks.append(m.float()[::4, ::4] * 40 - 20)  # stride-4 logits, confident
                row = torch.full((len(prompts) + 1,), -20.0)
                row[p] = 20.0
                logits.append(row)
            all_masks.append(torch.stack(masks))
            all_logits.append(torch.stack(logits))
        return SpectrumOutput(pred_logits=torch.stack(all_logits), pred_masks=torch.stack(all_masks))


def oracle(swap: tuple[str, str] | None = None) -> SpectrumPipeline:
    """The real pipeline (bottom-up: the parser's own person masks) around the oracle."""
    return SpectrumPipeline(OracleModel(swap), mode="bottom-up")


def test_oracle_scores_100_and_swapped_classes_score_0():
    data = ColourDataset()
    perfect = evaluate(oracle(), data, EvalConfig())
    assert perfect["miou"] == pytest.approx(100.0) and perfect["num_images"] == 3
    assert set(perfect["per_class"]) == set(ColourDataset.classes)
    swapped = evaluate(oracle(swap=("upper clothes", "pants")), data, EvalConfig())
    assert swapped["per_class"]["upper-clothes"] == 0 and swapped["per_class"]["pants"] == 0
    assert swapped["per_class"]["face"] == pytest.approx(100.0)
    # the report says where the swapped classes went, and that nothing else was confused
    assert swapped["confused_with"]["upper-clothes"] == [["pants", 100.0]]
    assert swapped["confused_with"]["pants"] == [["upper-clothes", 100.0]]
    assert perfect["confused_with"]["face"] == [] and swapped["confused_with"]["face"] == []
    assert "| upper-clothes | 0.00 | pants 100.0% |" in to_markdown(swapped)
    whole = evaluate(oracle(), data, EvalConfig(mode="whole-image"))
    assert whole["miou"] == pytest.approx(100.0) and whole["mode"] == "whole-image" and perfect["mode"] == "pipeline"
    with pytest.raises(ValueError, match="mode"):
        EvalConfig(mode="bare")


def test_protocols_select_categories():
    data = ColourDataset()
    assert protocol_classes(data.classes, data.canonical, "body") == [1]
    assert protocol_classes(data.classes, data.canonical, "clothing") == [2, 3]
    assert protocol_classes(data.classes, data.canonical, "unseen", withheld=["pants"]) == [3]
    with pytest.raises(ValueError, match="withheld"):
        protocol_classes(data.classes, data.canonical, "unseen")
    body = evaluate(oracle(), data, EvalConfig(protocol="body"))
    assert set(body["per_class"]) == {"background", "face"} and body["miou"] == pytest.approx(100.0)
    person = evaluate(oracle(), data, EvalConfig(protocol="person"))
    assert person["miou"] == pytest.approx(100.0)
    inst = evaluate(oracle(), data, EvalConfig(protocol="instance"))
    assert inst["apr"] == pytest.approx(100.0) and inst["num_detections"] == 9


def test_outputs_markdown_and_json():
    result = evaluate(oracle(), ColourDataset(1), EvalConfig(limit=1))
    md = to_markdown(result)
    assert "| miou |" in md and "| face |" in md
    parsed = json.loads(to_json({**result, "x": float("nan")}))
    assert parsed["x"] is None and {"miou", "pixel_acc", "per_class", "num_images"} <= set(parsed)
    with pytest.raises(ValueError, match="protocol"):
        EvalConfig(protocol="nope")


class DamagedDataset(ColourDataset):
    """ColourDataset whose image ``bad`` fails to decode, like a truncated JPEG or a colour label PNG."""

    def __init__(self, n: int = 4, bad: tuple[int, ...] = (1,)) -> None:
        super().__init__(n)
        self.bad = bad
        self.image_ids = [f"img{k}" for k in range(n)]

    def __getitem__(self, i: int) -> Sample:
        if i in self.bad:
            raise OSError(f"image file is truncated: {self.image_ids[i]}.jpg")
        return super().__getitem__(i)


def test_unreadable_images_are_skipped_and_reported_not_fatal():
    result = evaluate(oracle(), DamagedDataset(), EvalConfig())
    assert result["miou"] == pytest.approx(100.0) and result["num_images"] == 3
    assert result["skipped"] == [{"image": "img1", "reason": "OSError: image file is truncated: img1.jpg"}]
    assert "Skipped 1 unreadable image(s)" in to_markdown(result) and "img1" in to_markdown(result)
    instances = evaluate(oracle(), DamagedDataset(), EvalConfig(protocol="instance"))
    assert instances["num_images"] == 3 and len(instances["skipped"]) == 1
    with pytest.raises(ValueError, match="3 of 4 images could not be read"):
        evaluate(oracle(), DamagedDataset(bad=(0, 1, 2)), EvalConfig())
