"""SpectrumPipeline: images in, persons with their parts (and a label map) out.

    pipe = SpectrumPipeline.from_pretrained()          # the embedded default model, offline
    result = pipe("photo.jpg", prompts=["dress", "heels"])
    result.persons[0].parts[0].label, result.label_map, result.to_dict()
    pipe("photo.jpg", preset="lip")                     # LIP's classes and ids (see presets.py)
    pipe("photo.jpg", prompts=[...], label_map={"merge": {"t-shirt": "upper clothes"}})
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from .embedded import (  # noqa: F401  (re-exported: the embedded models' names and folders)
    DEFAULT_MODEL_DIR,
    DEFAULT_MODEL_NAME,
    EMBEDDED_MODELS,
    embedded_model_dir,
    model_display_name,
)
from .export import OnnxRunner
from .garments import consistent_garments, contest, garment_roles
from .images import DEFAULT_MAX_PIXELS, as_rgb_image
from .limbs import knee_anchored_legs
from .modeling import SpectrumModel
from .options import ParseOptions
from .person_fill import drop_specks, speck_columns
from .persons import BlazePoseSegmenter, PersonDetections, PersonDetector, hidden_people
from .persons.peeling import PEEL_MIN_PEOPLE
from .postprocess import group_instances
from .presets import LabelScheme, Preset, apply_label_map, get_preset, label_map_prompts, load_label_map
from .processor import ImagePrediction, PersonCandidate, SpectrumImageProcessor, assemble_persons, render_label_map
from .prompts import clean_prompts
from .results import ImageInput, ParsingResult, PersonInstance
from .scoring import ScoringPlan, competitor_phrases, novel_prompts, plan_prompts
from .topdown import FILLED_KEYPOINTS, TopDownConfig, fill_keypoints, parse_top_down
from .vocab import categories as vocabulary
from .vocab.phrases import EBP_PROMPTS, with_ebp

BUILTIN_DEFAULT_PROMPTS = [
    "hair", "face", "left arm", "right arm", "left leg", "right leg", "hat", "sunglasses", "scarf",
    "upper clothes", "dress", "coat", "skirt", "pants", "shorts", "left shoe", "right shoe", "bag",
]


MODES = ("top-down", "bottom-up")
"""``top-down``: people found by a person detector, each parsed in its own crop (:mod:`.topdown`);
``bottom-up``: the whole image parsed once and parts grouped under the parser's own person masks."""
DEFAULT_MODE = "top-down"
DETECTORS = ("movenet", "blazepose")
"""Embedded person detectors for top-down mode: MoveNet-MultiPose (default) and BlazePose."""

DEFAULT_WORK_PIXELS = 4_000_000
"""Images above this many pixels are parsed at a downscaled working size; masks are scaled back (nearest)."""


def _downscaled(image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` shrunk (aspect kept) to at most ``max_pixels`` pixels; unchanged when already small enough."""
    w, h = image.size
    if w * h <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (w * h))
    return image.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BILINEAR,
                        reducing_gap=2.0)


def _nearest_index(source: int, target: int) -> np.ndarray:
    """For each of ``target`` output positions, the source position it copies (centre sampling, as Pillow's
    NEAREST): the label map and every mask are scaled with the same indices, so they agree pixel for pixel."""
    return np.minimum(((np.arange(target) + 0.5) * (source / target)).astype(np.int64), source - 1)


def _upscaled(result: ParsingResult, height: int, width: int) -> ParsingResult:
    """A result computed at a working size with its label map and masks scaled (nearest) to ``height x width``.

    Only each mask's box is scaled, so memory grows with the area the parts cover, not with parts x pixels."""
    from .results import region_mask

    ys, xs = _nearest_index(result.height, height), _nearest_index(result.width, width)

    def grow(item: Any) -> dict[str, Any]:
        x0, y0, x1, y1 = item.box
        top, bottom = np.searchsorted(ys, [y0, y1])
        left, right = np.searchsorted(xs, [x0, x1])
        crop = item.crop[torch.from_numpy(ys[top:bottom] - y0)][:, torch.from_numpy(xs[left:right] - x0)]
        return region_mask(crop, int(left), int(top), (height, width))

    persons = []
    for person in result.persons:
        parts = [part.replace(**grow(part)) for part in person.parts]
        keypoints = person.keypoints
        if keypoints is not None:
            keypoints = np.asarray(keypoints) * np.array([width / result.width, height / result.height, 1.0])
        persons.append(person.replace(parts=parts, keypoints=keypoints, **grow(person)))
    label_map = np.take(np.take(result.label_map, ys, axis=0), xs, axis=1)
    return dataclasses.replace(result, persons=persons, label_map=label_map, height=height, width=width)


class SpectrumPipeline:
    """Open-vocabulary, multi-person human parsing around a :class:`SpectrumModel` (no I/O in the constructor)."""

    def __init__(self, model: SpectrumModel, image_size: int | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, work_pixels: int = DEFAULT_WORK_PIXELS,
                 onnx: str | os.PathLike[str] | OnnxRunner | None = None, *, mode: str | None = None,
                 person_detector: PersonDetector | None = None, person_segmenter: BlazePoseSegmenter | None = None,
                 top_down: TopDownConfig | None = None, crop_batch: int = 8, square_inputs: bool = True) -> None:
        """``max_pixels``: larger images are refused (None: no limit). ``work_pixels``: larger images are parsed
        at a downscaled size and their masks scaled back, which bounds memory (masks are full-size).
        ``onnx``: run the image path with onnxruntime from this export (:mod:`.export`; prompts are still
        embedded by ``model``'s text encoder); its fixed size replaces ``image_size``.

        ``mode``: ``"top-down"`` (needs ``person_detector``, and ``person_segmenter`` when
        ``top_down.person_masks`` is ``"blazepose"``) or ``"bottom-up"``; default: top-down when a detector is
        given. :meth:`from_pretrained` loads the embedded MoveNet-MultiPose and BlazePose. ``crop_batch``: at most
        this many person crops share one forward pass (top-down; results do not depend on it). ``square_inputs``
        (default): every crop and image is padded to the model's square input, as in training and as the ONNX
        export (which then gives the same result); False pads only to multiples of 32: faster for groups of
        standing people but worse garments with the shipped model (README, Performance; ``bench_inputs.py``).
        Setting ``pipe.square_inputs`` later takes effect on the next call."""
        if crop_batch < 1:
            raise ValueError(f"crop_batch must be >= 1, got {crop_batch}")
        self.crop_batch = crop_batch
        if work_pixels < 64 * 64:
            raise ValueError(f"work_pixels must be at least {64 * 64}, got {work_pixels}")
        mode = mode or ("top-down" if person_detector is not None else "bottom-up")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.top_down = top_down or TopDownConfig()
        if mode == "top-down":
            if person_detector is None:
                raise ValueError("top-down parsing needs a person_detector (SpectrumPipeline.from_pretrained loads "
                                 "MoveNet-MultiPose), or use mode='bottom-up'")
            if self.top_down.person_masks == "blazepose" and person_segmenter is None:
                raise ValueError("person_masks='blazepose' needs a person_segmenter (BlazePoseSegmenter)")
        self.mode = mode
        self.person_detector = person_detector
        self.person_segmenter = person_segmenter
        self.model = model.eval()
        self.onnx = OnnxRunner(onnx) if isinstance(onnx, (str, os.PathLike)) else onnx
        if image_size is not None:
            from .configs import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, check_range

            check_range("SpectrumPipeline", "image_size", image_size, MIN_IMAGE_SIDE, MAX_IMAGE_SIDE)
        if self.onnx is not None and image_size is not None and image_size != self.onnx.image_size:
            raise ValueError(f"the ONNX export takes {self.onnx.image_size}-px inputs; image_size={image_size} "
                             "cannot change that (export again with --image-size)")
        self.image_size = self.onnx.image_size if self.onnx is not None else image_size or model.config.input_size
        # The ONNX export takes square inputs only; it then gives what the PyTorch model gives on them.
        self.processor = SpectrumImageProcessor(self.image_size, square=True)
        self.square_inputs = square_inputs  # sets the processor's rule (the ONNX export: square only)
        self.max_pixels = max_pixels
        self.work_pixels = work_pixels

    @property
    def square_inputs(self) -> bool:
        """Whether crops and images are padded to the model's square input (see the constructor)."""
        return self._square_inputs

    @square_inputs.setter
    def square_inputs(self, value: bool) -> None:
        self._square_inputs = bool(value)
        self.processor.square = self._square_inputs or self.onnx is not None  # the ONNX export: square only

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str] | None = None, device: str | torch.device | None = None,
                        image_size: int | None = None, mode: str = DEFAULT_MODE,
                        person_masks: str | None = None, detector: str = "movenet", *,
                        body_parts: str | None = None, competitors: str | bool | None = None, flip: bool | None = None,
                        parser_person: float | None = None, peel: bool | None = None, **kwargs: Any
                        ) -> SpectrumPipeline:
        """Load a model directory or hub id; ``None`` loads the embedded default model (offline).

        ``mode="top-down"`` (default) also loads an embedded person detector — ``detector="movenet"``
        (MoveNet-MultiPose, default) or ``"blazepose"`` (BlazePose's pose detector + landmarks) — and, for
        ``person_masks="blazepose"`` (default), BlazePose's segmentation. ``body_parts`` (``"sides"``, default,
        ``"pose"`` or ``"model"``), ``competitors`` (``"novel"``, default, ``"all"`` or ``"off"``), ``flip``,
        ``parser_person`` (default 0.6, 0: BlazePose's person masks alone) and ``peel`` (default True: people hidden
        behind the people found are looked for, :mod:`.persons.peeling`) set those :class:`~.topdown.TopDownConfig`
        fields.
        ``kwargs``: ``max_pixels``,
        ``work_pixels``, ``onnx``, ``person_detector`` (any :class:`~.persons.PersonDetector`, instead of
        ``detector``), ``top_down`` (see the constructor)."""
        from .persons import BlazePoseDetector, BlazePoseSegmenter, MoveNetDetector

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        embedded = embedded_model_dir(source)
        if embedded is not None:
            if not (embedded / "model.safetensors").is_file():
                raise FileNotFoundError(f"the embedded model {embedded.name} is missing from {embedded}")
            source = embedded
        top_down = kwargs.pop("top_down", None) or TopDownConfig()
        changes = {k: v for k, v in (("person_masks", person_masks), ("body_parts", body_parts),
                                     ("competitors", competitors), ("flip", flip),
                                     ("parser_person", parser_person), ("peel", peel)) if v is not None}
        top_down = dataclasses.replace(top_down, **changes) if changes else top_down
        if mode == "top-down":
            if "person_detector" not in kwargs:
                kwargs["person_detector"] = (MoveNetDetector.from_pretrained() if detector == "movenet"
                                             else BlazePoseDetector.from_pretrained())
            if top_down.person_masks == "blazepose":
                kwargs.setdefault("person_segmenter", BlazePoseSegmenter.from_pretrained())
        pipe = cls(SpectrumModel.from_pretrained(source), image_size=image_size, mode=mode, top_down=top_down,
                   **kwargs)
        return pipe.to(device) if device is not None else pipe

    def to(self, device: str | torch.device) -> SpectrumPipeline:
        """Move the model (and the person detector / segmenter) to ``device``; returns self."""
        self.model.to(device)
        for part in (self.person_detector, self.person_segmenter):
            if hasattr(part, "to"):
                part.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.model.device

    def resolve_prompts(self, prompts: Sequence[str] | None, ebp: bool) -> list[str]:
        """The prompts actually scored: the user's (or the model's defaults), plus EBP body parts if asked."""
        config = self.model.config
        if prompts is None:
            prompts = config.default_prompts or BUILTIN_DEFAULT_PROMPTS
        prompts = clean_prompts(prompts)
        if ebp:
            prompts = with_ebp(prompts, config.ebp_prompts if config.ebp_prompts is not None else EBP_PROMPTS)
        prompts = list(dict.fromkeys(p for p in prompts if p != config.person_prompt))
        if not prompts:
            raise ValueError("give at least one prompt other than the person prompt")
        return prompts

    def with_mode(self, mode: str) -> SpectrumPipeline:
        """The same model, backend and settings parsing in ``mode`` (``"bottom-up"`` needs no detector)."""
        return SpectrumPipeline(self.model, image_size=None if self.onnx is not None else self.image_size,
                                max_pixels=self.max_pixels, work_pixels=self.work_pixels, onnx=self.onnx, mode=mode,
                                person_detector=self.person_detector, person_segmenter=self.person_segmenter,
                                top_down=self.top_down, crop_batch=self.crop_batch, square_inputs=self.square_inputs)

    @property
    def backend(self) -> Any:
        """What runs the model: the ONNX runner when one is given, else the PyTorch model."""
        return self.onnx if self.onnx is not None else self.model

    @torch.no_grad()
    def __call__(self, images: ImageInput | Sequence[ImageInput], prompts: Sequence[str] | None = None, *,
                 options: ParseOptions | None = None, preset: str | Preset | None = None,
                 label_map: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                 **knobs: Any) -> ParsingResult | list[ParsingResult]:
        """Parse one image (returns a ParsingResult) or a list of images (returns a list).

        ``options`` (:class:`~spectrum_parsing.options.ParseOptions`) holds every knob; any of its fields may
        also be given by name (``pipe(photo, score_threshold=0.4, ebp=False)``), overriding ``options``.
        ``preset``: a dataset label scheme (``"lip"``, ``"cihp"``, ``"atr"``, ``"pascal-person-part"``, ``"ccp"``
        or a :class:`Preset`): its prompts are scored (without EBP additions) and the label map holds the dataset's
        ids; not combinable with ``prompts``. ``label_map``: merge / rename / fixed ids of the output labels (a
        dict or a JSON file, schema in :mod:`.presets`). ``batch_size`` images run through the model together
        (those of one batch with the same model input size share a forward pass).
        """
        options = options or ParseOptions()
        if knobs:
            options = options.replace(**knobs)
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        if isinstance(label_map, (str, os.PathLike)):
            label_map = load_label_map(label_map)
        preset_obj = get_preset(preset) if preset is not None else None
        if preset_obj is not None:
            if prompts is not None:
                raise ValueError(f"give prompts or a preset, not both: preset {preset_obj.name!r} scores exactly its "
                                 "dataset's classes (use a label map to merge, rename or drop them)")
            labels = list(preset_obj.prompts)
            scheme = apply_label_map(preset_obj.classes[1:], preset_obj.label_ids, label_map, keep_ids=True)
        else:
            if prompts is None and label_map is not None:
                prompts = label_map_prompts(label_map)
            labels = self.resolve_prompts(prompts, options.ebp)
            scheme = apply_label_map(labels, None, label_map)
        relabel = preset_obj is not None or label_map is not None
        lut = np.array([0, *scheme.source_ids], dtype=np.int32)
        scored = [*labels, self.model.config.person_prompt]
        results: list[ParsingResult] = []
        for start in range(0, len(batch), options.batch_size):
            pils = [as_rgb_image(image, self.max_pixels) for image in batch[start:start + options.batch_size]]
            arrays = [np.asarray(_downscaled(pil, self.work_pixels)) for pil in pils]
            whole = self.whole_image_plan(scored) if self.mode == "bottom-up" else None
            predictions = (self._predict(arrays, whole.scored) if whole is not None else [None] * len(arrays))
            for pil, array, prediction in zip(pils, arrays, predictions):
                h, w = array.shape[:2]
                if prediction is None:
                    persons, semantic = self._parse_top_down(array, scored, len(labels), options)
                else:
                    assert whole is not None
                    persons, semantic = self._parse_bottom_up(prediction, whole, len(labels), options)
                if relabel:
                    persons = _relabel(persons, scheme)
                result = ParsingResult(persons, lut[semantic], list(scheme.names), scored, h, w,
                                       label_ids=list(scheme.ids),
                                       palette=preset_obj.palette if preset_obj is not None else None,
                                       preset=preset_obj.name if preset_obj is not None else None)
                if (pil.height, pil.width) != (h, w):
                    result = _upscaled(result, pil.height, pil.width)
                results.append(result)
        return results[0] if single else results

    def _predict(self, arrays: Sequence[np.ndarray], prompts: Sequence[str]) -> list[ImagePrediction]:
        """The backend's outputs for each image (inputs of equal padded size share calls)."""
        embeds = self.model.encode_prompts(list(prompts))
        return self.processor.predict(self.backend, arrays, embeds, max_batch=self.crop_batch)

    def predict_scores(self, arrays: Sequence[np.ndarray], prompts: Sequence[str],
                       pool: Sequence[int | Sequence[int]] = (), aside: Sequence[int] = (),
                       alone: Sequence[int] = ()) -> list[torch.Tensor]:
        """Per-prompt pixel scores (P, H, W) of each image, whole (the processor's semantic inference; ``pool``:
        columns or groups of columns merged into one last map, the pixel-wise best of them, a group scoring its
        sum; ``aside``: columns that change no other's score; ``alone``: columns also scored against no-object
        only, one map each after the others)."""
        return [self.processor.semantic_scores(p, pool, aside, alone) for p in self._predict(arrays, prompts)]

    def competitors(self, scored: Sequence[str]) -> tuple[list[str], list[int] | None]:
        """The hidden competitors of ``scored`` (the prompts and the person prompt) and the prompt indices they
        contest (None: every column; ``TopDownConfig.competitors``). Competitors are the known categories the
        model's prompt table holds (so no text encoder is loaded for them)."""
        contested: list[int] | None = None
        mode = self.top_down.competitors
        person = self.model.config.person_prompt
        if mode == "novel":
            contested = [i for i in novel_prompts(scored) if scored[i] != person]
        if mode == "all" or contested:
            table = getattr(self.model.text_encoder, "table", None)
            known = [c for c in vocabulary.names() if table is None or c in table]
            return competitor_phrases([p for p in scored if p != person], known), contested
        return [], contested

    def plan(self, scored: Sequence[str]) -> ScoringPlan:
        """What top-down parsing scores for ``scored`` (the prompts and the person prompt): see
        :func:`~spectrum_parsing.scoring.plan_prompts`, with :meth:`competitors`."""
        competitors, contested = self.competitors(scored)
        return plan_prompts(scored, self.top_down.body_parts, competitors, grow_skin=self.top_down.skin_colour > 0,
                            contested=contested)

    def whole_image_plan(self, scored: Sequence[str]) -> ScoringPlan:
        """What a whole-image parse (``bottom-up`` mode, the top-down fallback) scores for ``scored``: the
        prompts and, pooled last and hidden, the same competitors as top-down parsing (:meth:`competitors`), so an
        absent "saree" stays empty there too."""
        competitors, contested = self.competitors(scored)
        prompts = [*scored, "(competitors)"] if competitors else list(scored)
        hidden = {len(scored)} if competitors else set()
        return ScoringPlan(prompts, {}, {}, [], hidden, competitors, contested=contested)

    def _parse_top_down(self, array: np.ndarray, scored: Sequence[str], person_index: int,
                        options: ParseOptions) -> tuple[list[PersonInstance], np.ndarray]:
        """Persons and semantic map of one working-size image, people first (:mod:`.topdown`)."""
        assert self.person_detector is not None
        detections = self.person_detector(array)
        if len(detections) == 0 and self.top_down.fallback_score < 1.0:
            return self._parse_fallback(array, scored, person_index, options)
        return self._parse_people(array, detections, scored, person_index, options)

    def _posable(self, config: TopDownConfig) -> bool:
        """Whether the person masks come with BlazePose's landmarks (one graph run gives both)."""
        return config.person_masks == "blazepose" and hasattr(self.person_segmenter, "masks_and_keypoints")

    def _parse_people(self, array: np.ndarray, detections: PersonDetections, scored: Sequence[str],
                      person_index: int, options: ParseOptions, config: TopDownConfig | None = None
                      ) -> tuple[list[PersonInstance], np.ndarray]:
        """Persons and semantic map of one working-size image, given the people found (:mod:`.topdown`;
        ``config``: in place of :attr:`top_down`). Detections without keypoints (the nobody-found fallback's
        people) take BlazePose's landmarks as their pose where the person masks come from BlazePose."""
        config = self.top_down if config is None else config
        probs = None
        if config.person_masks == "blazepose" and len(detections):
            # people with a detector's pose, in a crowd: those hidden behind them are looked for once their masks
            # are known (persons.peeling); the fallback's people (no pose) are the parser's, not the detector's
            peel = config.peel and detections.keypoints is not None and len(detections) >= PEEL_MIN_PEOPLE
            probs, detections = self._person_masks(array, detections, config)
            if peel and self.person_detector is not None:
                # MoveNet's second look is its native pass alone (MoveNetDetector.native_only); others look again
                second = getattr(self.person_detector, "native_only", None)
                hidden = hidden_people(array, detections, probs,
                                       second() if callable(second) else self.person_detector)
                if len(hidden) and hidden.keypoints is not None:
                    more, hidden = self._person_masks(array, hidden, config)
                    probs = torch.cat([probs, more])
                    detections = PersonDetections.concatenate([detections, hidden])
        plan = self.plan(scored)

        # the parser's own person map, prompt-independent, completes the person masks (TopDownConfig.parser_person)
        alone = [person_index] if probs is not None and config.parser_person > 0 else []

        def predict(crops: Sequence[np.ndarray]) -> list[torch.Tensor]:
            scores = self.predict_scores(crops, plan.scored, plan.pool_groups, plan.aside, alone)
            if not config.flip:
                return scores
            # Flip test-time augmentation: the mirrored crops' scores, mirrored back with left and right swapped.
            mirrored = self.predict_scores([np.ascontiguousarray(c[:, ::-1]) for c in crops], plan.scored,
                                           plan.pool_groups, plan.aside, alone)
            swap = list(range(len(plan.prompts) + len(alone)))
            for left, right in vocabulary.side_pairs(plan.prompts):
                swap[left], swap[right] = right, left
            return [(s + m.flip(-1)[swap]) / 2 for s, m in zip(scores, mirrored)]

        return parse_top_down(array, detections, predict, plan, person_index, config, person_probs=probs,
                              threshold=options.score_threshold, background_threshold=options.background_threshold)

    def _person_masks(self, array: np.ndarray, detections: PersonDetections, config: TopDownConfig
                      ) -> tuple[torch.Tensor, PersonDetections]:
        """BlazePose's (N, H, W) person probabilities of ``detections``, and the detections with the pose each is
        parsed with: detections without keypoints take BlazePose's landmarks (a leg named from its knee), and
        MoveNet's unsure leg keypoints are filled by BlazePose's sure landmarks (``config.fill_keypoints``)."""
        assert self.person_segmenter is not None
        filled = FILLED_KEYPOINTS[config.fill_keypoints]
        # any callable (image, boxes) -> masks may segment; BlazePose's also gives landmarks
        if not (self._posable(config) and (detections.keypoints is None or filled)):
            return self.person_segmenter(array, detections.boxes), detections
        probs, landmarks = self.person_segmenter.masks_and_keypoints(array, detections.boxes)
        assert landmarks is not None
        if detections.keypoints is None:  # no pose given: BlazePose's, a leg named from its knee
            keypoints = np.stack([knee_anchored_legs(p, config.keypoint_threshold) for p in landmarks])
        else:  # MoveNet's unsure leg keypoints filled by BlazePose's sure landmarks (topdown.fill_keypoints)
            keypoints = fill_keypoints(detections.keypoints, landmarks, config.keypoint_threshold, filled,
                                       config.fill_visibility)
        return probs, dataclasses.replace(detections, keypoints=keypoints)

    def _parse_fallback(self, array: np.ndarray, scored: Sequence[str], person_index: int,
                        options: ParseOptions) -> tuple[list[PersonInstance], np.ndarray]:
        """When the detector finds nobody: the parser's own people on the whole image, kept only when one is
        confident and large (``TopDownConfig.fallback_score`` / ``fallback_share``). A photo that is mostly one
        person, cut by the frame or too small for the detector, is parsed; a garment on a bed stays empty (the
        parser was trained on such photos as negatives: its person score there stays lower). With
        ``TopDownConfig.fallback_pose`` (default) and BlazePose's person masks, the people kept are parsed top-down
        in their boxes, BlazePose's landmarks as their pose; the whole-image parse stands if that reports nobody."""
        plan = self.whole_image_plan(scored)
        persons, semantic = self._parse_bottom_up(self._predict([array], plan.scored)[0], plan, person_index, options)
        h, w = semantic.shape
        kept = [p.replace(id=k) for k, p in enumerate(
            p for p in persons if p.score >= self.top_down.fallback_score
            and p.area >= self.top_down.fallback_share * h * w)]
        if kept and self.top_down.fallback_pose and self._posable(self.top_down):
            # the people the parser is sure of, parsed top-down like detected ones, with BlazePose's pose of each
            # (their boxes come from the parser's own person map, so it does not complete their masks: it would own
            # a neighbour it merged into the box, as a bystander boy's arm in a `lip_dev` girl's)
            boxes = np.array([p.box for p in kept], dtype=np.float32)
            found = self._parse_people(array, PersonDetections(boxes, np.array([p.score for p in kept])), scored,
                                       person_index, options, dataclasses.replace(self.top_down, parser_person=0.0))
            if found[0]:
                return found
        if len(kept) == len(persons):
            return persons, semantic
        return kept, render_label_map(kept, (h, w))

    def _parse_bottom_up(self, prediction: ImagePrediction, plan: ScoringPlan, person_index: int,
                         options: ParseOptions) -> tuple[list[PersonInstance], np.ndarray]:
        """Persons and semantic map from one whole-image prediction of ``plan.scored`` (:meth:`whole_image_plan`),
        with the top-down path's contract: person instances (Mask2Former instance inference) own the pixels where
        they score highest (people never share a pixel), and each person's parts are the semantic labels on its
        pixels (the processor's assembly); the hidden competitors take the pixels they score higher than the
        prompts they contest (but find no people)."""
        masks = self.processor.mask_logits(prediction)
        logits, prompts = prediction.logits, plan.scored
        if plan.pool:  # people are found as without competitors (they would dilute the person score)
            prompts = plan.prompts[:-1]
            logits = torch.cat([logits[:, :len(prompts)], logits[:, -1:]], 1)
        found = group_instances(logits, masks, prompts, person_index,
                                score_threshold=options.score_threshold, mask_threshold=options.mask_threshold,
                                min_part_overlap=options.min_part_overlap)
        del masks
        scores = self.processor.semantic_scores(prediction, plan.pool_groups)
        rival = len(plan.prompts) - 1 if plan.pool else None
        columns = [p for p in range(scores.shape[0])
                   if p != person_index and (p != rival or plan.contested is None)]
        labels, best = self.processor.label_map(scores, columns, options.background_threshold)
        if rival is not None and plan.contested:
            contest(labels, best, scores, plan.contested, rival)
        owner = torch.full(labels.shape, -1, dtype=torch.long)
        for k in reversed(range(len(found))):  # by descending score: the best-scored person wins a shared pixel
            owner[found[k].mask.cpu()] = k
        roles = garment_roles(plan.prompts, [c for c in columns if c != rival])
        speckled = speck_columns(plan, person_index)  # the reported labels but bare skin (rival: hidden)
        for k in range(len(found)):  # each person's garments consistent and its specks dropped, as top-down makes them
            consistent_garments(labels, scores, roles, region=owner == k)
            drop_specks(labels, (owner == k).float(), speckled, self.top_down.speck_share)
        h, w = labels.shape
        candidates = [PersonCandidate(region=(0, 0, w, h), owned=owner == k, labels=labels, scores=best,
                                      score=person.score) for k, person in enumerate(found)]
        return assemble_persons(candidates, plan.prompts, (h, w), threshold=options.score_threshold,
                                min_person_pixels=self.top_down.min_person_pixels,
                                min_part_pixels=self.top_down.min_part_pixels, hidden=plan.hidden)


def _relabel(persons: list[PersonInstance], scheme: LabelScheme) -> list[PersonInstance]:
    """Persons whose parts carry the output label names of ``scheme`` (parts of dropped labels removed)."""
    out = []
    for person in persons:
        parts = [p.replace(label=scheme.source_names[p.prompt_index]) for p in person.parts
                 if p.prompt_index < len(scheme.source_names) and scheme.source_names[p.prompt_index] is not None]
        out.append(person.replace(parts=parts))
    return out
