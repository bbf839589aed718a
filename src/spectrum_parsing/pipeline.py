"""SpectrumPipeline: images in, persons with their parts (and a label map) out.

    pipe = SpectrumPipeline.from_pretrained()          # the embedded default model, offline
    result = pipe("photo.jpg", prompts=["dress", "heels"])
    result.persons[0].parts[0].label, result.label_map, result.to_dict()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data.targets import EBP_PROMPTS, with_ebp
from .evaluation import predict
from .images import load_image
from .modeling import SpectrumModel
from .postprocess import PersonInstance, group_instances, semantic_map
from .rendering import encode_rle, label_map_image, overlay

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "spectrum-bodypix"
"""The embedded default model shipped inside the package (see its README.md model card)."""

BUILTIN_DEFAULT_PROMPTS = [
    "hair", "face", "left arm", "right arm", "left leg", "right leg", "hat", "sunglasses", "scarf",
    "upper clothes", "dress", "coat", "skirt", "pants", "shorts", "left shoe", "right shoe", "bag",
]

ImageInput = str | os.PathLike | Image.Image | np.ndarray


@dataclass
class ParsingResult:
    """The parsing of one image.

    ``persons``: each with id, full-body mask, box, score and parts (label, score, mask, box).
    ``label_map``: (H, W) int32, 0 = background, ``i + 1`` = ``labels[i]``; restricted to detected persons.
    ``prompts``: every prompt scored (the user's, EBP additions, and the ``person`` prompt).
    """

    persons: list[PersonInstance]
    label_map: np.ndarray
    labels: list[str]
    prompts: list[str]
    height: int
    width: int

    def to_dict(self, image_name: str | None = None) -> dict[str, Any]:
        """JSON-ready dict: persons -> parts with label, score, box [x0, y0, x1, y1) and COCO RLE mask."""
        def part(p: Any) -> dict[str, Any]:
            return {"label": p.label, "score": round(float(p.score), 4), "box": list(p.box),
                    "segmentation": encode_rle(p.mask.cpu().numpy())}

        return {
            "image": image_name, "height": self.height, "width": self.width, "prompts": list(self.prompts),
            "labels": {str(i + 1): name for i, name in enumerate(self.labels)},
            "persons": [{"id": person.id, "score": round(float(person.score), 4), "box": list(person.box),
                         "segmentation": encode_rle(person.mask.cpu().numpy()),
                         "parts": [part(p) for p in person.parts]} for person in self.persons],
        }

    def label_map_image(self) -> Image.Image:
        """The label map as a palette PNG image (pixel value = label id)."""
        return label_map_image(self.label_map, len(self.labels))

    def overlay(self, image: ImageInput) -> Image.Image:
        """``image`` with the label map blended in, person boxes, and a legend."""
        pil = _as_pil(image)
        return overlay(pil, self.label_map, self.labels, boxes=[(p.id, p.box) for p in self.persons])


def _as_pil(image: ImageInput) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"numpy images must be HWC RGB uint8, got shape {image.shape} dtype {image.dtype}")
        return Image.fromarray(image)
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    raise TypeError(f"unsupported image type {type(image).__name__}: give a path, a PIL image or an HWC uint8 array")


class SpectrumPipeline:
    """Open-vocabulary, multi-person human parsing around a :class:`SpectrumModel` (no I/O in the constructor)."""

    def __init__(self, model: SpectrumModel, image_size: int = 512) -> None:
        self.model = model.eval()
        self.image_size = image_size

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None, device: str | torch.device | None = None,
                        image_size: int = 512) -> SpectrumPipeline:
        """Load a model directory or hub id; ``None`` loads the embedded default model (offline)."""
        if source is None:
            if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
                raise FileNotFoundError(f"the embedded default model is missing from {DEFAULT_MODEL_DIR}")
            source = DEFAULT_MODEL_DIR
        pipe = cls(SpectrumModel.from_pretrained(source), image_size=image_size)
        return pipe.to(device) if device is not None else pipe

    def to(self, device: str | torch.device) -> SpectrumPipeline:
        """Move the model to ``device``; returns self."""
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.model.device

    def resolve_prompts(self, prompts: Sequence[str] | None, ebp: bool) -> list[str]:
        """The prompts actually scored: the user's (or the model's defaults), plus EBP body parts if asked."""
        config = self.model.config
        if prompts is None:
            prompts = config.default_prompts or BUILTIN_DEFAULT_PROMPTS
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = [p.strip() for p in prompts]
        if any(not p for p in prompts):
            raise ValueError("prompts must be non-empty strings")
        if ebp:
            prompts = with_ebp(prompts, config.ebp_prompts if config.ebp_prompts is not None else EBP_PROMPTS)
        prompts = list(dict.fromkeys(p for p in prompts if p != config.person_prompt))
        if not prompts:
            raise ValueError("give at least one prompt other than the person prompt")
        return prompts

    @torch.no_grad()
    def __call__(self, images: ImageInput | Sequence[ImageInput], prompts: Sequence[str] | None = None,
                 threshold: float = 0.3, mask_threshold: float = 0.5, ebp: bool = True,
                 min_part_overlap: float = 0.5) -> ParsingResult | list[ParsingResult]:
        """Parse one image (returns a ParsingResult) or a list of images (returns a list)."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        labels = self.resolve_prompts(prompts, ebp)
        scored = [*labels, self.model.config.person_prompt]
        results = []
        for image in batch:
            array = np.asarray(_as_pil(image))
            h, w = array.shape[:2]
            logits, masks = predict(self.model, array, scored, self.image_size)
            persons = group_instances(logits, masks, scored, len(labels), score_threshold=threshold,
                                      mask_threshold=mask_threshold, min_part_overlap=min_part_overlap)
            label_map = semantic_map(logits, masks, exclude=(len(labels),)).numpy().astype(np.int32)
            if persons:
                worn = torch.stack([p.mask for p in persons]).any(0).cpu().numpy()
                label_map[~worn] = 0
            else:
                label_map[:] = 0
            results.append(ParsingResult(persons, label_map, labels, scored, h, w))
        return results[0] if single else results
