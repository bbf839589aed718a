"""Person instances: who is in the photo, where, and which pixels are theirs.

One small interface, :class:`PersonDetector`: an RGB image (H, W, 3) uint8 in, :class:`PersonDetections` out
(boxes, scores, 17 COCO keypoints when the detector has them). Implementations:

* :class:`MoveNetDetector` (default): MoveNet-MultiPose, up to 6 people per pass; when a pass is full (6 people
  above the threshold) the image is also run as overlapping tiles and the detections are merged, so crowds of
  more than 6 are found.
* :class:`~.blazepose.BlazePoseDetector`: BlazePose's pose detector + landmark model (``--detector blazepose``),
  an alternative: it finds fewer people in groups (see ``benchmarks/bench_persons.py``).
* :class:`BoxDetector`: fixed boxes (ground truth, or another detector's output), for evaluation.

:class:`BlazePoseSegmenter` turns detections into per-person masks: each person's square crop goes through
BlazePose's landmark model, whose segmentation head gives a person probability map for the centred person.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.nn import functional as F

from .tfgraph import TFGraphModule, load_graph_model

__all__ = [
    "BlazePoseSegmenter",
    "BoxDetector",
    "KEYPOINT_NAMES",
    "MoveNetDetector",
    "PersonDetections",
    "PersonDetector",
    "box_iou",
]

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"

KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")


@dataclass
class PersonDetections:
    """People found in one image, by descending score. ``boxes``: (N, 4) float ``x0, y0, x1, y1`` in pixels;
    ``scores``: (N,); ``keypoints``: (N, 17, 3) ``x, y, score`` in pixels (COCO order) or None."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")
        if self.keypoints is not None:
            kps = np.asarray(self.keypoints, dtype=np.float32)
            count = kps.shape[1] if kps.ndim == 3 else len(KEYPOINT_NAMES)
            self.keypoints = kps.reshape(len(self.boxes), count, 3)

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: Sequence[int] | np.ndarray) -> PersonDetections:
        """The detections at ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        return PersonDetections(self.boxes[index], self.scores[index],
                                None if self.keypoints is None else self.keypoints[index])

    @classmethod
    def empty(cls) -> PersonDetections:
        return cls(np.zeros((0, 4)), np.zeros(0))


@runtime_checkable
class PersonDetector(Protocol):
    """Anything that finds people: ``detector(image) -> PersonDetections`` for an (H, W, 3) uint8 RGB array."""

    def __call__(self, image: np.ndarray) -> PersonDetections: ...


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), ``x0, y0, x1, y1``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class BoxDetector:
    """Fixed person boxes (e.g. ground truth), each with score 1 unless given."""

    def __init__(self, boxes: np.ndarray | Sequence[Sequence[float]], scores: Sequence[float] | None = None) -> None:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.detections = PersonDetections(boxes, np.ones(len(boxes)) if scores is None else scores)

    def __call__(self, image: np.ndarray) -> PersonDetections:
        return self.detections


def _nms(dets: PersonDetections, iou: float, containment: float = 0.8) -> PersonDetections:
    """Greedy NMS by score: a box is dropped when its IoU with a kept box exceeds ``iou`` or when one of the two
    lies mostly (``containment`` of its area) inside the other (a tile's half person inside a whole one)."""
    order = np.argsort(-dets.scores, kind="stable")
    b = dets.boxes.astype(np.float64)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    overlaps = box_iou(b, b)
    inter = overlaps * (area[:, None] + area[None, :]) / (1 + overlaps)
    contained = inter / np.minimum(area[:, None], area[None, :])
    keep: list[int] = []
    for i in order:
        if all(overlaps[i, j] <= iou and contained[i, j] <= containment for j in keep):
            keep.append(int(i))
    return dets.select(keep)


def _tiles(height: int, width: int, full: bool) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, x1, y1): along the long side of a very elongated image (each tile about
    1.25x as long as the short side, 25% overlap), and 2x2 tiles of 60% of each side when a pass was full."""
    tiles = []
    long_side, short_side = max(height, width), min(height, width)
    if long_side > 2 * short_side and short_side >= 64:  # a strip thinner than 64 px holds no findable person
        size = max(min(long_side, int(1.25 * short_side)), long_side // 8)  # at most about 10 tiles
        count = math.ceil((long_side - size) / (0.75 * size)) + 1
        starts = np.linspace(0, long_side - size, count).round().astype(int)
        for s in starts:
            tiles.append((int(s), 0, int(s) + size, height) if width >= height else (0, int(s), width, int(s) + size))
    if full:
        th, tw = math.ceil(height * 0.6), math.ceil(width * 0.6)
        tiles += [(x0, y0, x0 + tw, y0 + th) for y0 in (0, height - th) for x0 in (0, width - tw)]
    return tiles


def accept_people(dets: PersonDetections, score_threshold: float, min_keypoints: int,
                  keypoint_threshold: float = 0.3) -> PersonDetections:
    """The detections :class:`MoveNetDetector` keeps: person score >= ``score_threshold`` and at least
    ``min_keypoints`` keypoints scored >= ``keypoint_threshold`` (order kept)."""
    confident = (dets.keypoints[..., 2] >= keypoint_threshold).sum(1)
    return dets.select(np.nonzero((dets.scores >= score_threshold) & (confident >= min_keypoints))[0])


class MoveNetDetector:
    """MoveNet-MultiPose as a :class:`PersonDetector` (no I/O in the constructor: give it the ported graph, or
    use :meth:`from_pretrained`).

    ``input_size``: the long side the image is resized to (a multiple of 32; 256 is MoveNet's native size and
    measured best: 320-448 found fewer of the right counts). A detection needs a person score of at least
    ``score_threshold`` *and* at least ``min_keypoints`` keypoints scored >= ``keypoint_threshold``: MoveNet
    gives garments lying on a bed person scores up to 0.34 but never more than 6 confident keypoints, while
    people score 0.24-0.56 with 5-16 (``benchmarks/bench_persons.py``). ``tile``: when a pass is full (6 people)
    or the image is more than twice as long as it is wide, overlapping tiles are run too and the detections
    merged (:func:`_nms`), so crowds of more than 6 and wide panoramas are found.
    """

    MAX_PEOPLE = 6

    def __init__(self, graph: TFGraphModule, input_size: int = 256, score_threshold: float = 0.15,
                 min_keypoints: int = 7, keypoint_threshold: float = 0.3, tile: bool = True,
                 nms_iou: float = 0.5) -> None:
        if input_size < 64 or input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32 and >= 64, got {input_size}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.graph = graph.eval()
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.min_keypoints = min_keypoints
        self.keypoint_threshold = keypoint_threshold
        self.tile = tile
        self.nms_iou = nms_iou

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None, **kwargs: object) -> MoveNetDetector:
        """Load the ported graph (default: the copy shipped in the package)."""
        return cls(load_graph_model(source or WEIGHTS_DIR / "movenet-multipose"), **kwargs)  # type: ignore[arg-type]

    def to(self, device: str | torch.device) -> MoveNetDetector:
        self.graph.to(device)
        return self

    @torch.no_grad()
    def _single_pass(self, image: np.ndarray) -> PersonDetections:
        h, w = image.shape[:2]
        scale = self.input_size / max(h, w)
        th = max(32, int(round(h * scale / 32)) * 32)
        tw = max(32, int(round(w * scale / 32)) * 32)
        device = next(iter(self.graph.buffers())).device
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
        x = x.round().clamp(0, 255).to(torch.int32).permute(0, 2, 3, 1).contiguous()
        out = self.graph(x)[self.graph.spec.outputs.get("output_0", "Identity")][0].float().cpu().numpy()
        kpts = out[:, :51].reshape(-1, 17, 3)
        keypoints = np.stack([kpts[..., 1] * w, kpts[..., 0] * h, kpts[..., 2]], axis=-1)
        boxes = np.stack([out[:, 52] * w, out[:, 51] * h, out[:, 54] * w, out[:, 53] * h], axis=-1)
        order = np.argsort(-out[:, 55], kind="stable")
        found = PersonDetections(boxes, out[:, 55], keypoints).select(order)
        return accept_people(found, self.score_threshold, self.min_keypoints, self.keypoint_threshold)

    def __call__(self, image: np.ndarray) -> PersonDetections:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        found = self._single_pass(image)
        h, w = image.shape[:2]
        tiles = _tiles(h, w, full=len(found) >= self.MAX_PEOPLE) if self.tile else []
        if not tiles:
            return found
        parts = [found]
        for x0, y0, x1, y1 in tiles:
            tile = self._single_pass(image[y0:y1, x0:x1])
            tile.boxes += np.array([x0, y0, x0, y0], dtype=np.float32)
            if tile.keypoints is not None:
                tile.keypoints[..., :2] += np.array([x0, y0], dtype=np.float32)
            parts.append(tile)
        merged = PersonDetections(np.concatenate([p.boxes for p in parts]),
                                  np.concatenate([p.scores for p in parts]),
                                  np.concatenate([p.keypoints for p in parts]))
        return _nms(merged, self.nms_iou)


class BlazePoseSegmenter:
    """Per-person masks from BlazePose's segmentation head: each detection's box is squared (side =
    ``scale`` x its longer side, centred), cropped (zero outside the image), resized to 256x256, and its person
    probability map pasted back at full resolution. No I/O in the constructor (:meth:`from_pretrained`)."""

    INPUT = 256

    def __init__(self, graph: TFGraphModule, scale: float = 1.25, batch_size: int = 8) -> None:
        if scale < 1.0:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.graph = graph.eval()
        self.scale = scale
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None, **kwargs: object) -> BlazePoseSegmenter:
        return cls(load_graph_model(source or WEIGHTS_DIR / "blazepose-full"), **kwargs)  # type: ignore[arg-type]

    def to(self, device: str | torch.device) -> BlazePoseSegmenter:
        self.graph.to(device)
        return self

    def squares(self, boxes: np.ndarray) -> np.ndarray:
        """The square crop (x0, y0, x1, y1), in pixels, used for each box."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).clip(min=8) * self.scale
        return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=-1)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        """(N, H, W) float person probabilities, one map per box (0 outside its crop)."""
        h, w = image.shape[:2]
        squares = np.round(self.squares(boxes)).astype(np.int64)
        device = next(iter(self.graph.buffers())).device
        out = torch.zeros(len(squares), h, w)
        if not len(squares):
            return out
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device).permute(2, 0, 1).float() / 255.0
        crops = []
        for x0, y0, x1, y1 in squares:
            canvas = torch.zeros(3, y1 - y0, x1 - x0, device=device)  # zero outside the image, as BlazePose pads
            ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if ix1 > ix0 and iy1 > iy0:
                canvas[:, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = pixels[:, iy0:iy1, ix0:ix1]
            crops.append(F.interpolate(canvas[None], size=(self.INPUT, self.INPUT), mode="bilinear",
                                       align_corners=False, antialias=True))
        batch = torch.cat(crops).permute(0, 2, 3, 1).contiguous()
        probs = []
        for start in range(0, len(batch), self.batch_size):
            result = self.graph(batch[start:start + self.batch_size], outputs=["Identity_1"])["Identity_1"]
            probs.append(result[..., 0].float())
        seg = torch.cat(probs)  # (N, 256, 256)
        for k, (x0, y0, x1, y1) in enumerate(squares):
            ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if ix1 <= ix0 or iy1 <= iy0:
                continue
            back = F.interpolate(seg[k][None, None], size=(int(y1 - y0), int(x1 - x0)), mode="bilinear",
                                 align_corners=False)[0, 0]
            out[k, iy0:iy1, ix0:ix1] = back[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].cpu()
        return out
