"""BlazePose as a person detector: the detector port matches TF.js, its anchors and decoding, and behaviour on
the bundled photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from spectrum_parsing.persons import BlazePoseDetector, PersonDetector
from spectrum_parsing.persons.blazepose import COCO_FROM_BLAZEPOSE, detector_anchors, weighted_nms
from spectrum_parsing.persons.tfgraph import load_graph_model

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "human_models"
WEIGHTS = ROOT / "src" / "spectrum_parsing" / "weights"


@pytest.fixture(scope="module")
def blazepose() -> BlazePoseDetector:
    return BlazePoseDetector.from_pretrained()


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(ROOT / "examples" / f"{name}.jpg").convert("RGB"))


def test_detector_port_matches_tfjs():
    """Raw detector output (2254 anchors x (logit + 12 regressions)) matches TF.js, with the same detections."""
    graph = load_graph_model(WEIGHTS / "blazepose-detector").eval()
    square = np.asarray(Image.open(FIXTURES / "blazepose_detector_group.png"), dtype=np.float32) / 127.5 - 1.0
    want = load_file(str(FIXTURES / "blazepose_detector_group.safetensors"))["Identity"]
    with torch.no_grad():
        got = graph(torch.from_numpy(square)[None])["Identity"].numpy()
    assert got.shape == want.shape == (1, 2254, 13)
    # Element-wise within 1e-3 (relative for the few huge logits of empty anchors, down to -4.5e5).
    worst = (np.abs(got - want) / (1e-3 + 1e-3 * np.abs(want))).max()
    assert worst <= 1.0, f"worst difference {worst:.2f}x the 1e-3 tolerance"
    assert np.array_equal(got[0, :, 0] > 0, want[0, :, 0] > 0)  # the same anchors fire (logit > 0 = score 0.5)


def test_anchors_cover_the_grid_in_output_order():
    anchors = detector_anchors()
    assert anchors.shape == (2254, 2)  # 28x28x2 + 14x14x2 + 7x7x6
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[28 * 28 * 2], [0.5 / 14, 0.5 / 14])
    assert np.allclose(anchors[-1], [6.5 / 7, 6.5 / 7])
    assert len(COCO_FROM_BLAZEPOSE) == 17 and max(COCO_FROM_BLAZEPOSE) < 33


def test_weighted_nms_averages_overlapping_detections_by_score():
    scores = np.array([0.9, 0.3, 0.8], np.float32)
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    points = np.stack([np.full((4, 2), v, np.float32) for v in (0.0, 4.0, 9.0)])
    s, b, p = weighted_nms(scores, boxes, points, iou=0.3)
    assert s.tolist() == pytest.approx([0.9, 0.8])
    assert b[0].tolist() == pytest.approx([0.25, 0, 10.25, 10])  # (0.9 * 0 + 0.3 * 1) / 1.2
    assert p[0, 0].tolist() == pytest.approx([1.0, 1.0]) and p[1, 0].tolist() == pytest.approx([9.0, 9.0])
    empty = weighted_nms(np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32), 0.3)
    assert [len(x) for x in empty] == [0, 0, 0]


def test_blazepose_detector_finds_the_selfie_and_nobody_in_an_empty_photo(blazepose):
    assert isinstance(blazepose, PersonDetector)
    image = _photo("selfie")
    found = blazepose(image)
    assert len(found) == 1
    x0, y0, x1, y1 = found.boxes[0]
    assert (x1 - x0) * (y1 - y0) > 0.3 * image.shape[0] * image.shape[1]  # the selfie fills the frame
    nose, left_shoulder = found.keypoints[0, 0], found.keypoints[0, 5]
    assert nose[2] > 0.5 and x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1
    assert left_shoulder[1] > nose[1]  # shoulders below the nose: the region was turned upright
    assert len(blazepose(np.full((240, 320, 3), 127, np.uint8))) == 0
    with pytest.raises(ValueError, match="RGB"):
        blazepose(np.zeros((10, 10), np.uint8))


def test_blazepose_finds_people_of_the_group_photo_inside_their_movenet_boxes(blazepose):
    """Every BlazePose person is one of the group photo's five (a MoveNet box overlaps it)."""
    from spectrum_parsing.persons import MoveNetDetector, box_iou

    image = _photo("group")
    found = blazepose(image)
    movenet = MoveNetDetector.from_pretrained()(image)
    assert 2 <= len(found) <= 5
    assert (box_iou(found.boxes, movenet.boxes).max(1) > 0.4).all()


def test_pipeline_and_cli_take_blazepose_as_the_detector(tmp_path):
    """``spectrum parse --detector blazepose`` (SpectrumPipeline.from_pretrained(detector="blazepose"))."""
    import json

    from spectrum_parsing.cli import main
    from spectrum_parsing.pipeline import SpectrumPipeline

    with pytest.raises(ValueError, match="detector must be one of"):
        SpectrumPipeline.from_pretrained(detector="yolo")
    out = tmp_path / "out"
    assert main(["parse", str(ROOT / "examples" / "selfie.jpg"), "--out", str(out), "--detector", "blazepose",
                 "--format", "json", "--prompt", "hair"]) == 0
    persons = json.loads((out / "selfie.json").read_text())["persons"]
    assert len(persons) == 1 and len(persons[0]["keypoints"]) == 17
