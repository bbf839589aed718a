"""BlazePose as a person detector: the pose detector finds people, the landmark model places their keypoints.

Two ported TF.js graphs (Google, Apache-2.0; :mod:`.tfgraph`), used as MediaPipe's BlazePose uses them:

1. **Pose detector** (224x224, RGB in [-1, 1]): an SSD over 2254 fixed anchors (strides 8, 16, 32, 32, 32; two
   anchors per cell below stride 32 and six at it). Each anchor gives a person logit and 12 regressions: a box
   around the face, then four alignment points (hip centre, a point on the full-body circle, shoulder centre, a
   point on the upper-body circle), offsets in input pixels from the anchor centre. Detections above
   ``score_threshold`` are merged by *weighted* non-maximum suppression (MediaPipe's: overlapping detections
   are averaged by score, not dropped).
2. **Landmark model** (``blazepose-full``, 256x256, RGB in [0, 1]) on each person's region: a square centred on
   the hip centre, side ``2.5 x`` the hip-to-circle distance (``roi_scale`` = 1.25 of the full-body circle's
   diameter), rotated so the hips-to-head axis points up. It gives 39 landmarks with visibility, a pose-presence
   flag and a person segmentation; people whose flag is below ``pose_threshold`` are dropped.

The box reported is the segmentation's extent (pixels > 0.5) joined with the visible landmarks, and the 17 COCO
keypoints are BlazePose's landmarks of the same names. Constructors do no I/O (:meth:`from_pretrained`).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch.nn import functional as F

from .tfgraph import TFGraphModule, load_graph_model
from .types import WEIGHTS_DIR, PersonDetections, box_iou, nms

DETECTOR_INPUT = 224
LANDMARK_INPUT = 256
STRIDES = (8, 16, 32, 32, 32)
# BlazePose's 33 landmarks -> the 17 COCO keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles), in COCO order.
COCO_FROM_BLAZEPOSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def detector_anchors(input_size: int = DETECTOR_INPUT, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """(N, 2) anchor centres ``x, y`` in [0, 1], in the detector's output order (MediaPipe's SSD anchors with
    fixed size: consecutive layers of one stride share a grid, each adding two anchors per cell)."""
    centres = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = 2 * (last - layer)
        cells = math.ceil(input_size / strides[layer])
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
        layer = last
    return np.asarray(centres, dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -100.0, 100.0)))


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, points: np.ndarray, iou: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: the best remaining detection absorbs every detection overlapping it by more than
    ``iou`` (box IoU); the merged box and points are their score-weighted mean, the score the best one's."""
    order = np.argsort(-scores, kind="stable")
    left = list(order)
    out_s, out_b, out_p = [], [], []
    while left:
        best = left[0]
        overlaps = box_iou(boxes[[best]], boxes[left])[0]
        group = [left[k] for k in range(len(left)) if overlaps[k] > iou or left[k] == best]
        weights = scores[group][:, None]
        out_s.append(scores[best])
        out_b.append((boxes[group] * weights).sum(0) / weights.sum())
        out_p.append((points[group] * weights[:, :, None]).sum(0) / weights.sum())
        left = [i for i in left if i not in group]
    if not out_s:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32)
    return np.asarray(out_s, np.float32), np.asarray(out_b, np.float32), np.asarray(out_p, np.float32)


class BlazePoseDetector:
    """BlazePose's pose detector + landmark model as a :class:`~.detection.PersonDetector` (see the module
    docstring). ``max_people`` bounds how many regions go through the landmark model (best first)."""

    def __init__(self, detector: TFGraphModule, landmarks: TFGraphModule, score_threshold: float = 0.5,
                 nms_iou: float = 0.3, pose_threshold: float = 0.5, roi_scale: float = 1.25,
                 keypoint_threshold: float = 0.5, max_people: int = 12) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.detector = detector.eval()
        self.landmarks = landmarks.eval()
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.pose_threshold = pose_threshold
        self.roi_scale = roi_scale
        self.keypoint_threshold = keypoint_threshold
        self.max_people = max_people
        self._anchors = detector_anchors()

    @classmethod
    def from_pretrained(cls, detector: str | os.PathLike[str] | None = None,
                        landmarks: str | os.PathLike[str] | None = None, **kwargs: object) -> BlazePoseDetector:
        """Load the ported graphs (default: the copies shipped in the package)."""
        return cls(load_graph_model(detector or WEIGHTS_DIR / "blazepose-detector"),
                   load_graph_model(landmarks or WEIGHTS_DIR / "blazepose-full"), **kwargs)  # type: ignore[arg-type]

    def to(self, device: str | torch.device) -> BlazePoseDetector:
        self.detector.to(device)
        self.landmarks.to(device)
        return self

    @property
    def _device(self) -> torch.device:
        return next(iter(self.detector.buffers())).device

    # ------------------------------------------------------------------------------------------ stage 1
    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        """(3, H, W) float pixel values 0-255 of an RGB image, on the models' device."""
        return torch.from_numpy(np.array(image, dtype=np.uint8)).to(self._device).permute(2, 0, 1).float()

    @torch.no_grad()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pose detector on the whole image (centred on a black square): (scores, face boxes ``x0, y0, x1,
        y1``, alignment points (N, 4, 2)) in image pixels, after weighted NMS."""
        return self._detect(self._pixels(image))

    def _detect(self, pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, h, w = pixels.shape
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        square = torch.zeros(3, side, side, device=pixels.device)
        square[:, top:top + h, left:left + w] = pixels
        x = F.interpolate(square[None], size=(DETECTOR_INPUT, DETECTOR_INPUT), mode="bilinear",
                          align_corners=False, antialias=True)
        x = (x / 127.5 - 1.0).permute(0, 2, 3, 1).contiguous()
        raw = self.detector(x)["Identity"][0].float().cpu().numpy()  # (2254, 13): logit, 12 regressions
        scores = _sigmoid(raw[:, 0])
        keep = scores >= self.score_threshold
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        reg = raw[:, 1:] / DETECTOR_INPUT
        cx, cy = reg[:, 0] + anchors[:, 0], reg[:, 1] + anchors[:, 1]
        boxes = np.stack([cx - reg[:, 2] / 2, cy - reg[:, 3] / 2, cx + reg[:, 2] / 2, cy + reg[:, 3] / 2], -1)
        points = reg[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
        scores, boxes, points = weighted_nms(scores, boxes * side, points * side, self.nms_iou)
        offset = np.array([left, top], np.float32)
        return scores, boxes - np.tile(offset, 2), points - offset

    def regions(self, points: np.ndarray) -> np.ndarray:
        """(N, 4) landmark regions ``cx, cy, side, rotation`` (pixels, radians) from the alignment points."""
        hip, circle = points[:, 0], points[:, 1]
        radius = np.linalg.norm(circle - hip, axis=-1)
        angle = math.pi / 2 - np.arctan2(-(circle[:, 1] - hip[:, 1]), circle[:, 0] - hip[:, 0])
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        return np.stack([hip[:, 0], hip[:, 1], 2 * radius * self.roi_scale, angle], -1).astype(np.float32)

    # ------------------------------------------------------------------------------------------ stage 2
    @staticmethod
    def _to_image(region: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """Crop coordinates (pixels of the 256x256 crop, (..., 2)) to image pixels for ``region``."""
        cx, cy, side, angle = (float(v) for v in region)
        d = (uv / LANDMARK_INPUT - 0.5) * side
        cos, sin = math.cos(angle), math.sin(angle)
        return np.stack([cx + cos * d[..., 0] - sin * d[..., 1], cy + sin * d[..., 0] + cos * d[..., 1]], -1)

    def _crops(self, pixels: torch.Tensor, regions: np.ndarray) -> torch.Tensor:
        """(N, 256, 256, 3) rotated crops in [0, 1] (zero outside the image), antialiased for large regions."""
        _, h, w = pixels.shape
        crops = []
        uv = (np.arange(LANDMARK_INPUT, dtype=np.float32) + 0.5)
        grid_uv = np.stack(np.meshgrid(uv, uv, indexing="xy"), -1)  # (256, 256, 2) as (u, v)
        for region in regions:
            scale = min(1.0, 2.0 * LANDMARK_INPUT / max(float(region[2]), 1.0))
            source = pixels if scale >= 1.0 else F.interpolate(
                pixels[None], scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)[0]
            sh, sw = source.shape[-2:]
            xy = self._to_image(region, grid_uv) * np.array([sw / w, sh / h], np.float32)
            grid = torch.from_numpy(np.stack([2 * xy[..., 0] / sw - 1, 2 * xy[..., 1] / sh - 1], -1)).float()
            crop = F.grid_sample(source[None], grid[None].to(source.device), mode="bilinear", padding_mode="zeros",
                                 align_corners=False)
            crops.append(crop[0].permute(1, 2, 0))
        return torch.stack(crops)

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> PersonDetections:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        h, w = image.shape[:2]
        pixels = self._pixels(image)
        scores, _, points = self._detect(pixels)
        scores, points = scores[:self.max_people], points[:self.max_people]
        if not len(scores):
            return PersonDetections.empty()
        regions = self.regions(points)
        out = self.landmarks(self._crops(pixels / 255, regions), outputs=["Identity_1", "Identity_2", "Identity_3"])
        seg = out["Identity_1"][..., 0].float().cpu().numpy()  # (N, 256, 256) person probability
        lms = out["Identity_2"].float().cpu().numpy().reshape(len(regions), -1, 5)  # x, y, z, visibility, presence
        flags = out["Identity_3"].float().cpu().numpy().reshape(-1)
        boxes, keypoints, keep = [], [], []
        for k, region in enumerate(regions):
            if flags[k] < self.pose_threshold:
                continue
            xy = self._to_image(region, lms[k, :33, :2])
            visible = _sigmoid(lms[k, :33, 3])
            vs, us = np.nonzero(seg[k] > 0.5)
            extent = [xy[visible >= self.keypoint_threshold]]
            if len(us):
                extent.append(self._to_image(region, np.stack([us + 0.5, vs + 0.5], -1).astype(np.float32)))
            pts = np.concatenate(extent)
            if not len(pts):
                continue
            box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], np.float32)
            box = np.clip(box, 0, [w, h, w, h])
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            coco = np.concatenate([xy[list(COCO_FROM_BLAZEPOSE)], visible[list(COCO_FROM_BLAZEPOSE), None]], -1)
            boxes.append(box)
            keypoints.append(coco)
            keep.append(k)
        if not keep:
            return PersonDetections.empty()
        found = PersonDetections(np.stack(boxes), scores[keep], np.stack(keypoints))
        return nms(found, 0.5)


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
        return self.masks_and_keypoints(image, boxes, keypoints=False)[0]

    @torch.no_grad()
    def masks_and_keypoints(self, image: np.ndarray, boxes: np.ndarray, keypoints: bool = True
                            ) -> tuple[torch.Tensor, np.ndarray | None]:
        """Per box: (N, H, W) float person probabilities (0 outside its crop) and, with ``keypoints``, the 17 COCO
        keypoints BlazePose's landmark model places in the same crop ((N, 17, 3): x, y in image pixels and the
        landmark's visibility in [0, 1]; one run of the graph gives both)."""
        h, w = image.shape[:2]
        squares = np.round(self.squares(boxes)).astype(np.int64)
        device = next(iter(self.graph.buffers())).device
        out = torch.zeros(len(squares), h, w)
        points = np.zeros((len(squares), 17, 3), np.float32) if keypoints else None
        if not len(squares):
            return out, points
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
        names = ["Identity_1", "Identity_2"] if keypoints else ["Identity_1"]
        probs, marks = [], []
        for start in range(0, len(batch), self.batch_size):
            result = self.graph(batch[start:start + self.batch_size], outputs=names)
            probs.append(result["Identity_1"][..., 0].float())
            if keypoints:
                marks.append(result["Identity_2"].float().cpu().numpy().reshape(-1, 39, 5))
        seg = torch.cat(probs)  # (N, 256, 256)
        if points is not None:
            lms = np.concatenate(marks)[:, list(COCO_FROM_BLAZEPOSE)]  # crop pixels x, y, z, visibility, presence
            side = (squares[:, 2] - squares[:, 0]).astype(np.float32)[:, None]
            points[..., 0] = squares[:, :1] + lms[..., 0] / self.INPUT * side
            points[..., 1] = squares[:, 1:2] + lms[..., 1] / self.INPUT * side
            points[..., 2] = _sigmoid(lms[..., 3])
        for k, (x0, y0, x1, y1) in enumerate(squares):
            ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if ix1 <= ix0 or iy1 <= iy0:
                continue
            back = F.interpolate(seg[k][None, None], size=(int(y1 - y0), int(x1 - x0)), mode="bilinear",
                                 align_corners=False)[0, 0]
            out[k, iy0:iy1, ix0:ix1] = back[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].cpu()
        return out, points
