"""SpectrumImageProcessor: the one owner of how images become model inputs and how model outputs become
per-pixel scores, label maps and persons (in the manner of SAM 2's ``SAM2Transforms`` and transformers'
``Mask2FormerImageProcessor``). The pipeline (top-down crops and whole images), evaluation and the ONNX path all
go through it; a change to how scores become masks is an edit here.

Input rule: an image is resized so its longest side is the model's input size ``S`` (antialiased when
shrinking) and zero-padded right/bottom to ``S x S`` (:func:`pad_square`): how training presents images (random
scale, then an ``S x S`` crop padded where the image is smaller) and what the fixed-size ONNX export takes, so
PyTorch and ONNX Runtime see the same tensor. (``square=False`` pads only to multiples of 32.)

Output rule (Mask2Former semantic inference): per-prompt scores ``einsum('qp,qhw->phw', softmax(logits)[:, :-1],
sigmoid(masks))`` at the model's stride-4 mask resolution, upsampled x4, cropped to the resized image and resized
to the image; a pixel's label is its best prompt, or background when that score is below a threshold.

Any **backend** works: a callable ``backend(pixel_values, text_embeds=...) -> SpectrumOutput`` with a
``device`` (the PyTorch :class:`~spectrum_parsing.modeling.SpectrumModel` and the ONNX runner
:class:`~spectrum_parsing.export.OnnxRunner` alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn import functional as F

from .configs import MIN_IMAGE_SIDE
from .outputs import SpectrumOutput
from .results import PartInstance, PersonInstance, region_mask

__all__ = ["Backend", "ImagePrediction", "PersonCandidate", "SpectrumImageProcessor", "assemble_persons",
           "forward_grouped", "pad_square", "padded_size", "render_label_map", "resize_for_model"]

FEATURE_MULTIPLE = 32
"""Every backbone's features cover its input rounded up to a multiple of 32, padded with black at the right and
bottom (:class:`~spectrum_parsing.backbones.base.FeatureBackbone`)."""
MIN_MODEL_SIDE = 64
"""``SpectrumModel`` pads sides under this (black, right/bottom): the coarsest level (stride 32) needs 2 cells."""


class Backend(Protocol):
    """What runs the model: ``backend(pixel_values (B, 3, h, w), text_embeds=(P, D)) -> SpectrumOutput``."""

    device: torch.device

    def __call__(self, pixel_values: torch.Tensor, *, text_embeds: torch.Tensor) -> SpectrumOutput: ...


def resize_for_model(image: np.ndarray, size: int) -> torch.Tensor:
    """HWC uint8 image -> (1, 3, h, w) float in [0, 1] with its longest side resized to ``size``."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    t = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255)[None]
    if scale != 1:
        t = F.interpolate(t, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                          align_corners=False, antialias=scale < 1)
    return t


def pad_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (B, 3, h, w) right/bottom to (B, 3, size, size); h and w must not exceed ``size``."""
    h, w = images.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"images of {h}x{w} do not fit the exported {size}x{size} input")
    return F.pad(images, (0, size - w, 0, size - h))


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size the model really runs ``height x width`` at: each side rounded up to a multiple of 32, at least
    64. Inputs zero-padded to it give the same outputs as unpadded ones, so inputs with equal padded sizes can
    share a forward pass (Mask2Former's ``size_divisibility`` batching, without changing any result)."""
    def side(n: int) -> int:
        return max(MIN_MODEL_SIDE, -(-n // FEATURE_MULTIPLE) * FEATURE_MULTIPLE)

    return side(height), side(width)


@torch.no_grad()
def forward_grouped(backend: Backend, inputs: Sequence[torch.Tensor], text_embeds: torch.Tensor,
                    max_batch: int = 8, channels_last: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Grounding logits (Q, P+1) and stride-4 mask logits (Q, H/4, W/4) of each input (1, 3, h, w).

    Inputs whose :func:`padded_size` is equal run together (at most ``max_batch`` per call), zero-padded to it;
    the results are those of one call per input (the masks cover the padded size). A PyTorch backend gets them
    channels-last (NHWC) unless ``channels_last`` is False: ~20% faster on CPU (oneDNN), values within ~1e-3
    (another summation order; label maps agree on all but a few pixels)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    results: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(inputs)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(inputs):
        groups.setdefault(padded_size(*t.shape[-2:]), []).append(i)
    for (ph, pw), members in groups.items():
        for start in range(0, len(members), max_batch):
            chunk = members[start:start + max_batch]
            batch = torch.cat([F.pad(inputs[i], (0, pw - inputs[i].shape[-1], 0, ph - inputs[i].shape[-2]))
                               for i in chunk])
            if channels_last and isinstance(backend, torch.nn.Module):  # faster convolutions (oneDNN, cuDNN)
                batch = batch.contiguous(memory_format=torch.channels_last)
            out = backend(batch.to(backend.device), text_embeds=text_embeds)
            for k, i in enumerate(chunk):
                results[i] = out.image(k)
    return results  # type: ignore[return-value]


@dataclass
class ImagePrediction:
    """One image's model outputs, and where the image lies in the model input.

    ``logits`` (Q, P + 1) and ``masks`` (Q, h/4, w/4) at stride 4 of the padded input; ``content_size``: the
    resized image's (h, w), at the top-left of the input; ``size``: the image's own (H, W)."""

    logits: torch.Tensor
    masks: torch.Tensor
    content_size: tuple[int, int]
    size: tuple[int, int]


@dataclass
class PersonCandidate:
    """One person before assembly: the region of the image its maps cover (``x0, y0, x1, y1``), and over that
    region the pixels it owns, each pixel's label (0 = none, else 1 + prompt index) and that label's score."""

    region: tuple[int, int, int, int]
    owned: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    score: float
    keypoints: Any = None


class SpectrumImageProcessor:
    """Pre- and post-processing of a Spectrum model at input size ``image_size`` (see the module docstring).
    No I/O, no model: the pipeline and evaluation hand it a backend."""

    def __init__(self, image_size: int, square: bool = True) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIDE:
            raise ValueError(f"image_size must be an int >= {MIN_IMAGE_SIDE}, got {image_size!r}")
        self.image_size = image_size
        self.square = square

    # ------------------------------------------------------------------------------------------ pre-processing
    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float in [0, 1], longest side ``image_size`` (not yet padded)."""
        return resize_for_model(image, self.image_size)

    def pad(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The model input of a preprocessed image: padded to ``S x S`` (``square``), else left to the model's
        own padding to multiples of 32."""
        return pad_square(pixel_values, self.image_size) if self.square else pixel_values

    @torch.no_grad()
    def predict(self, backend: Backend, images: Sequence[np.ndarray], text_embeds: torch.Tensor,
                max_batch: int = 8) -> list[ImagePrediction]:
        """Run ``backend`` on ``images`` (inputs of equal padded size share calls, at most ``max_batch``)."""
        inputs = [self.preprocess(a) for a in images]
        outputs = forward_grouped(backend, [self.pad(t) for t in inputs], text_embeds, max_batch=max_batch)
        return [ImagePrediction(logits.float(), masks, (int(t.shape[-2]), int(t.shape[-1])), a.shape[:2])
                for t, a, (logits, masks) in zip(inputs, images, outputs)]

    # ----------------------------------------------------------------------------------------- post-processing
    @staticmethod
    def _to_image(maps: torch.Tensor, prediction: ImagePrediction) -> torch.Tensor:
        """(C, h/4, w/4) maps at stride 4 -> (C, H, W): upsampled x4, cropped to the content, resized."""
        rh, rw = prediction.content_size
        up = F.interpolate(maps[None].float(), scale_factor=4, mode="bilinear", align_corners=False)[..., :rh, :rw]
        return F.interpolate(up, size=tuple(prediction.size), mode="bilinear", align_corners=False)[0]

    def semantic_scores(self, prediction: ImagePrediction, pool: Sequence[int | Sequence[int]] = (),
                        aside: Sequence[int] = (), alone: Sequence[int] = ()) -> torch.Tensor:
        """Per-prompt pixel scores (P, H, W) in [0, 1] (Mask2Former semantic inference; computed at stride 4, so
        P maps are resized instead of Q masks). ``pool``: prompt columns replaced by one last map (hidden
        competitors: one map to resize however many they are), the pixel-wise best of its members; a member may
        be a group of columns, scoring their sum (similar phrases split one thing's score in the grounding
        softmax). ``aside``: columns kept out of the others' softmax (scored against all, they change no other
        column's score). ``alone``: for each of these columns one more map after all others, the column scored
        against no-object only (no other prompt in its softmax), so it does not change with the prompts; summed
        over the queries like the others, clipped to 1 (overlapping queries may each be that phrase)."""
        logits = prediction.logits.float()
        probs = logits.softmax(-1)[:, :-1]
        if aside:
            apart = set(aside)
            rest = [p for p in range(logits.shape[-1]) if p not in apart]  # the no-object column included
            probs[:, rest[:-1]] = logits[:, rest].softmax(-1)[:, :-1]
        low = torch.einsum("qp,qhw->phw", probs, prediction.masks.float().sigmoid())
        if pool:
            groups = [[m] if isinstance(m, int) else list(m) for m in pool]
            pooled = {c for group in groups for c in group}
            keep = [p for p in range(low.shape[0]) if p not in pooled]
            best = torch.stack([low[group].sum(0) for group in groups]).amax(0, keepdim=True)
            low = torch.cat([low[keep], best])
        if alone:
            own = torch.stack([(logits[:, c] - logits[:, -1]).sigmoid() for c in alone], 1)
            alone_maps = torch.einsum("qp,qhw->phw", own, prediction.masks.float().sigmoid()).clamp(max=1.0)
            low = torch.cat([low, alone_maps])
        return self._to_image(low, prediction).cpu()

    def mask_logits(self, prediction: ImagePrediction) -> torch.Tensor:
        """The Q mask logits at the image's size (Q, H, W), for instance inference."""
        return self._to_image(prediction.masks, prediction)

    @staticmethod
    def label_map(scores: torch.Tensor, columns: Sequence[int] | None = None,
                  background_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels (H, W) long — 0 = background, else 1 + prompt index — and each pixel's best score, from
        per-prompt ``scores`` (P, H, W); only ``columns`` (default: all) compete, and a best score below
        ``background_threshold`` is background."""
        cols = list(range(scores.shape[0])) if columns is None else [int(c) for c in columns]
        if not cols:
            zeros = torch.zeros(scores.shape[1:])
            return zeros.long(), zeros
        # column by column (no (P, H, W) copy); a tie keeps the first column, as max(0) does
        best = scores[cols[0]].clone()
        labels = torch.full(best.shape, cols[0] + 1, dtype=torch.long)
        for c in cols[1:]:
            labels.masked_fill_(scores[c] > best, c + 1)
            torch.maximum(best, scores[c], out=best)
        labels[best < background_threshold] = 0
        return labels, best

    def post_process_semantic(self, prediction: ImagePrediction, exclude: Sequence[int] = (),
                              background_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """Label map and best scores (see :meth:`label_map`) of one prediction; prompts in ``exclude`` (e.g.
        the person prompt) never win."""
        scores = self.semantic_scores(prediction)
        excluded = set(exclude)
        columns = [p for p in range(scores.shape[0]) if p not in excluded]
        return self.label_map(scores, columns, background_threshold)

    @staticmethod
    def post_process_persons(candidates: Sequence[PersonCandidate], prompts: Sequence[str],
                             size: tuple[int, int], **kwargs: Any) -> tuple[list[PersonInstance], np.ndarray]:
        """Persons with their parts, and the label map rendered from them (:func:`assemble_persons`)."""
        return assemble_persons(candidates, prompts, size, **kwargs)


@torch.no_grad()
def assemble_persons(candidates: Sequence[PersonCandidate], prompts: Sequence[str], size: tuple[int, int], *,
                     threshold: float = 0.3, min_person_pixels: int = 64, min_part_pixels: int = 16,
                     hidden: set[int] | frozenset[int] = frozenset()) -> tuple[list[PersonInstance], np.ndarray]:
    """The one person assembly of top-down and bottom-up parsing.

    Candidates owning fewer than ``min_person_pixels`` are dropped; each kept person's parts are its labels on
    the pixels it owns, one part per label, kept when it has at least ``min_part_pixels`` and a mean score of
    at least ``threshold`` (labels of ``hidden`` prompts are never reported). A part's reported score is that mean
    times its person's score, each clipped to [0, 1] (a pixel's score sums the queries' probabilities): a part of
    an unsure person is unsure, and parts rank across people as top-down instance parsers rank them (``cihp_dev``
    part AP^r 19.9 -> 20.5, ``spectrum eval --protocol instance``). Parts are sorted by score, persons numbered
    in candidate order. The (H, W) int32 label map (0 = background, else 1 + prompt index) is rendered from the
    parts, so it, the persons and their JSON agree pixel for pixel (people never share a pixel)."""
    h, w = size
    persons: list[PersonInstance] = []
    for candidate in candidates:
        x0, y0, _, _ = candidate.region
        confidence = min(max(float(candidate.score), 0.0), 1.0)
        owned = candidate.owned.bool()
        if int(owned.sum()) < min_person_pixels:
            continue
        parts = []
        # each label's area and score sum on the owned pixels in one pass (no mask per rejected label)
        owned_labels = candidate.labels[owned].long()
        areas = torch.bincount(owned_labels)
        sums = torch.bincount(owned_labels, weights=candidate.scores[owned].double(), minlength=len(areas))
        for label in torch.nonzero(areas).flatten().tolist():
            if label == 0 or label - 1 in hidden:
                continue
            area = int(areas[label])
            score = float(sums[label]) / area
            if area < min_part_pixels or score < threshold:
                continue
            part = owned & (candidate.labels == label)
            # a pixel's score sums the queries' probabilities and may pass 1; a reported score is a probability
            parts.append(PartInstance(label=prompts[label - 1], prompt_index=label - 1,
                                      score=min(score * confidence, 1.0),
                                      **region_mask(part, x0, y0, (h, w))))
        parts.sort(key=lambda p: -p.score)
        persons.append(PersonInstance(id=len(persons), score=float(candidate.score), parts=parts,
                                      keypoints=candidate.keypoints, **region_mask(owned, x0, y0, (h, w))))
    return persons, render_label_map(persons, size)


def render_label_map(persons: Sequence[PersonInstance], size: tuple[int, int]) -> np.ndarray:
    """The (H, W) int32 label map of ``persons``' parts: 0 = background, else 1 + prompt index."""
    semantic = np.zeros(size, dtype=np.int32)
    for person in persons:
        for part in person.parts:
            x0, y0, x1, y1 = part.box
            semantic[y0:y1, x0:x1][part.crop.numpy()] = part.prompt_index + 1
    return semantic
