"""Evaluation: prompt-based semantic parsing metrics, the paper's protocols, and multi-person AP^r.

Prompt-based evaluation: every category of the dataset is prompted by its canonical name and the label map is
compared with the dataset's own label map. **What is measured is what users run**: by default
(``mode="pipeline"``) each image goes through the same :class:`~spectrum_parsing.pipeline.SpectrumPipeline` call
that ``spectrum parse`` makes (its detector, crops, person masks and thresholds; EBP additions off, since the
dataset's classes are the prompts), and its label map is scored. ``mode="whole-image"`` keeps the bare-model
measurement for research comparisons: the whole image through the model once, the processor's semantic inference
(Mask2Former's) over the prompts, no persons; for the instance protocol, the bottom-up pipeline.

Protocols (reported separately, as in the paper):

- ``all``: every labelled category of the dataset.
- ``body``: body-part categories only; ground-truth pixels of other categories are ignored.
- ``clothing``: clothing and accessory categories only; other categories ignored.
- ``unseen``: only the categories withheld from training (``SpectrumConfig.withheld``): zero-shot prompting.
- ``person``: full-body masks: the ``person`` prompt against the union of all labelled foreground pixels
  (binary IoU, reported as ``miou`` over {background, person}).
- ``instance``: AP^r over IoU 0.5:0.95 of per-person part instances (pycocotools), for datasets with person
  instances.

In the subset protocols, ground-truth background is kept (predicting a garment on background is an error)
and pixels of categories outside the subset are ignored.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data.sample import IGNORE_ID, Sample
from .vocab import categories as vocabulary

PROTOCOLS = ("all", "body", "clothing", "unseen", "person", "instance")
MODES = ("pipeline", "whole-image")


# ------------------------------------------------------------------------------------------------ metrics
def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore: int = IGNORE_ID) -> np.ndarray:
    """(K, K) int64 confusion matrix, rows = ground truth, columns = prediction; ``ignore`` gt pixels skipped."""
    gt, pred = np.asarray(gt).ravel(), np.asarray(pred).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred differ in size: {gt.shape} vs {pred.shape}")
    valid = gt != ignore
    gt, pred = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
    if gt.size and (gt.max() >= num_classes or pred.max() >= num_classes or gt.min() < 0 or pred.min() < 0):
        raise ValueError(f"label ids outside [0, {num_classes})")
    return np.bincount(gt * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU per class from a confusion matrix; NaN for classes absent from both ground truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def summarize(cm: np.ndarray, names: Sequence[str], classes: Sequence[int] | None = None) -> dict[str, Any]:
    """mIoU (mean over ``classes`` that occur in gt or prediction), pixel accuracy and per-class IoU."""
    ious = iou_per_class(cm)
    classes = list(range(len(names))) if classes is None else list(classes)
    chosen = [ious[c] for c in classes if not math.isnan(ious[c])]
    total = cm.sum()
    return {
        "miou": 100.0 * float(np.mean(chosen)) if chosen else float("nan"),
        "pixel_acc": 100.0 * float(np.trace(cm) / total) if total else float("nan"),
        "per_class": {names[c]: (None if math.isnan(ious[c]) else round(100.0 * float(ious[c]), 2)) for c in classes},
    }


CONFUSIONS_SHOWN = 2
"""How many other labels :func:`confusions` lists per class."""


def confusions(cm: np.ndarray, names: Sequence[str], classes: Sequence[int] | None = None,
               top: int = CONFUSIONS_SHOWN) -> dict[str, list[list[Any]]]:
    """Per class of ``classes`` with ground-truth pixels: the ``top`` other labels its pixels were most often given,
    each as ``[name, share of the class's pixels (%)]``, largest first (none where every pixel was right). Where a
    class's IoU is lost: "blazer" -> ``[["coat", 80.1], ["blouse", 10.9]]``."""
    classes = list(range(len(names))) if classes is None else list(classes)
    out: dict[str, list[list[Any]]] = {}
    for c in classes:
        total = int(cm[c].sum())
        if not total:
            continue
        row = cm[c].astype(np.float64)
        row[c] = 0
        order = [int(k) for k in np.argsort(-row, kind="stable")[:top] if row[k] > 0]
        out[names[c]] = [[names[k], round(100.0 * row[k] / total, 1)] for k in order]
    return out


# ------------------------------------------------------------------------------------------------ inference
@dataclass
class EvalConfig:
    """What is evaluated and how images are run (``mode``: see the module docstring; the image size is the
    pipeline's)."""

    protocol: str = "all"
    mode: str = "pipeline"
    score_threshold: float = 0.3
    background_threshold: float = 0.5
    limit: int | None = None  # evaluate only the first N images
    withheld: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {PROTOCOLS}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {MODES}")
        if not 0.0 <= self.background_threshold <= 1.0:
            raise ValueError(f"background_threshold must be in [0, 1], got {self.background_threshold}")


def protocol_classes(sample_classes: Sequence[str], canonical: Sequence[str | None], protocol: str,
                     withheld: Sequence[str] = ()) -> list[int]:
    """Dataset class ids (>= 1) evaluated under ``protocol``."""
    chosen = []
    for cid, name in enumerate(canonical):
        if cid == 0 or name is None:
            continue
        kind = vocabulary.BY_NAME[name].kind if name in vocabulary.BY_NAME else "clothing"
        if (protocol == "all" or (protocol == "body" and kind == "body")
                or (protocol == "clothing" and kind in ("clothing", "accessory"))
                or (protocol == "unseen" and name in withheld)):
            chosen.append(cid)
    if not chosen:
        raise ValueError(f"protocol {protocol!r} selects no category of this dataset"
                         + (" (no withheld categories recorded)" if protocol == "unseen" and not withheld else ""))
    return chosen


MAX_SKIPPED = 0.5
"""An evaluation stops with an error when more than this share of its images cannot be read."""


def _readable(dataset: Any, indices: Iterable[int],
              skipped: list[dict[str, str]]) -> Iterator[tuple[int, Sample]]:
    """(index, sample) for every index whose sample loads; an unreadable image or label map (damaged file,
    wrong size, colour label PNG...) is recorded in ``skipped`` with its reason and left out, not fatal."""
    for i in indices:
        try:
            yield i, dataset[i]
        except (ValueError, OSError) as err:
            ids = getattr(dataset, "image_ids", None)
            name = ids[i] if ids is not None and i < len(ids) else str(i)
            skipped.append({"image": str(name), "reason": f"{type(err).__name__}: {str(err)[:200]}"})


def _check_skipped(skipped: list[dict[str, str]], n: int) -> None:
    if skipped and len(skipped) > MAX_SKIPPED * max(n, 1):
        raise ValueError(f"{len(skipped)} of {n} images could not be read (first: {skipped[0]['image']}: "
                         f"{skipped[0]['reason']}); is this the right dataset and format?")


def evaluate(pipeline: Any, dataset: Any, config: EvalConfig, progress: Iterable | None = None) -> dict[str, Any]:
    """Evaluate a :class:`~spectrum_parsing.pipeline.SpectrumPipeline` on a ``ParsingDataset`` under
    ``config.protocol`` (``config.mode``: the pipeline's own call, or the whole image through its model); returns
    the metrics dict. ``skipped`` lists unreadable samples, ``unlabelled`` the photos the reader found without a
    label map."""
    result = _evaluate(pipeline, dataset, config, progress)
    result["unlabelled"] = list(getattr(dataset, "unlabelled", []))
    result["mode"] = config.mode
    return result


def _label_map(pipeline: Any, image: np.ndarray, prompts: list[str], config: EvalConfig) -> np.ndarray:
    """(H, W) labels, 0 = background, else 1 + index into ``prompts`` (distinct, person prompt excluded)."""
    if config.mode == "pipeline":
        result = pipeline(image, prompts=prompts, ebp=False, score_threshold=config.score_threshold,
                          background_threshold=config.background_threshold)
        return np.asarray(result.label_map)
    scores = pipeline.predict_scores([image], prompts)[0]
    labels, _ = pipeline.processor.label_map(scores, background_threshold=config.background_threshold)
    return labels.numpy()


def _person_map(pipeline: Any, image: np.ndarray, config: EvalConfig) -> np.ndarray:
    """(H, W) bool: the pixels of any person."""
    if config.mode == "pipeline":
        result = pipeline(image, ebp=False, score_threshold=config.score_threshold,
                          background_threshold=config.background_threshold)
        out = np.zeros(image.shape[:2], dtype=bool)
        for person in result.persons:
            out |= person.mask.cpu().numpy()
        return out
    scores = pipeline.predict_scores([image], [pipeline.model.config.person_prompt])[0]
    return (pipeline.processor.label_map(scores, background_threshold=config.background_threshold)[0] > 0).numpy()


def _evaluate(pipeline: Any, dataset: Any, config: EvalConfig, progress: Iterable | None) -> dict[str, Any]:
    if config.protocol == "instance":
        return evaluate_instances(pipeline, dataset, config, progress)
    classes, canonical = list(dataset.classes), list(dataset.canonical)
    n = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    indices = progress if progress is not None else range(n)
    skipped: list[dict[str, str]] = []
    if config.protocol == "person":
        cm = np.zeros((2, 2), dtype=np.int64)
        for _, sample in _readable(dataset, indices, skipped):
            pred = _person_map(pipeline, sample.image, config)
            gt = np.where(sample.semantic == IGNORE_ID, IGNORE_ID, (sample.semantic > 0).astype(np.int64))
            cm += confusion_matrix(gt, pred.astype(np.int64), 2)
        _check_skipped(skipped, n)
        result = summarize(cm, ["background", "person"])
        return {**result, "num_images": n - len(skipped), "skipped": skipped, "protocol": "person",
                "dataset": dataset.name}

    selected = protocol_classes(classes, canonical, config.protocol, config.withheld)
    person_prompt = pipeline.model.config.person_prompt
    first_id: dict[str, int] = {}  # distinct prompts; a class sharing another's canonical name is never predicted
    for c in selected:
        if canonical[c] != person_prompt:
            first_id.setdefault(canonical[c], c)
    prompts = list(first_id)
    lut = np.array([0, *first_id.values()], dtype=np.int64)  # label (1 + prompt index) -> dataset id
    keep = np.full(len(classes) + 1, False)
    keep[[0, *selected]] = True
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    coarse = dataset.name == "ccp"
    coarse_cm = np.zeros((len(vocabulary.COARSE_GROUPS),) * 2, dtype=np.int64)
    coarse_lut = None
    if coarse:  # CCP's coarse grouping; other datasets may have categories outside the canonical vocabulary
        groups = [vocabulary.coarse_group(canonical[c]) if c else "background" for c in range(len(classes))]
        coarse_lut = np.array([vocabulary.COARSE_GROUPS.index(g) for g in groups])
    for _, sample in _readable(dataset, indices, skipped):
        pred = lut[_label_map(pipeline, sample.image, prompts, config)]
        gt = sample.semantic.astype(np.int64)
        in_range = (gt >= 0) & (gt < len(classes))
        gt = np.where(in_range & keep[np.clip(gt, 0, len(classes))], gt, IGNORE_ID)
        cm += confusion_matrix(gt, pred, len(classes))
        if coarse and config.protocol == "all":
            valid = gt != IGNORE_ID
            cgt = np.where(valid, coarse_lut[np.where(valid, gt, 0)], IGNORE_ID)
            coarse_cm += confusion_matrix(cgt, coarse_lut[pred], len(vocabulary.COARSE_GROUPS))
    _check_skipped(skipped, n)
    result = summarize(cm, classes, [0, *selected])
    result.update({"num_images": n - len(skipped), "skipped": skipped, "protocol": config.protocol,
                   "dataset": dataset.name, "prompts": prompts,
                   "confused_with": confusions(cm, classes, [0, *selected])})
    if coarse and config.protocol == "all":
        result["coarse_miou"] = summarize(coarse_cm, list(vocabulary.COARSE_GROUPS))["miou"]
        result["coarse_per_class"] = summarize(coarse_cm, list(vocabulary.COARSE_GROUPS))["per_class"]
    return result


def match_person_ious(gt: list[np.ndarray], pred: list[np.ndarray]) -> list[float]:
    """Per ground-truth person, the IoU of its one-to-one match among ``pred`` (Hungarian on IoU; 0 unmatched)."""
    from scipy.optimize import linear_sum_assignment

    if not gt or not pred:
        return [0.0] * len(gt)
    g = np.stack(gt).reshape(len(gt), -1).astype(np.float32)
    q = np.stack(pred).reshape(len(pred), -1).astype(np.float32)
    inter = g @ q.T
    union = g.sum(1)[:, None] + q.sum(1)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(-iou)
    out = [0.0] * len(gt)
    for r, c in zip(rows, cols):
        out[r] = float(iou[r, c])
    return out


def evaluate_instances(pipeline: Any, dataset: Any, config: EvalConfig, progress: Iterable | None = None) -> dict:
    """AP^r (IoU 0.5:0.95) and AP^r_50 of per-person part instances, with pycocotools' COCOeval; plus the share
    of images with the right person count and the mean person-mask IoU (GT persons matched one to one).

    The persons of ``pipeline`` are scored as it was made (``mode="pipeline"``), or those of the same model
    parsing bottom-up (``mode="whole-image"``: the parser's own person masks, no detector)."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if config.mode == "whole-image" and pipeline.mode != "bottom-up":
        pipeline = pipeline.with_mode("bottom-up")
    n = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    names = [c for c in vocabulary.names() if c != "person"]
    cat_ids = {name: i + 1 for i, name in enumerate(names)}
    images, gts, dts = [], [], []
    prompts_seen: set[str] = set()
    used_instances = False
    right_count, person_ious = 0, []
    skipped: list[dict[str, str]] = []
    for i, sample in _readable(dataset, progress if progress is not None else range(n), skipped):
        used_instances |= sample.has_instances
        h, w = sample.size
        images.append({"id": i + 1, "height": h, "width": w})
        parts = [s for s in sample.segments if s.category != "person" and s.category in cat_ids]
        for seg in parts:
            rle = mask_utils.encode(np.asfortranarray(seg.mask.astype(np.uint8)))
            gts.append({"id": len(gts) + 1, "image_id": i + 1, "category_id": cat_ids[seg.category],
                        "segmentation": rle, "area": float(seg.mask.sum()), "iscrowd": 0,
                        "bbox": list(mask_utils.toBbox(rle))})
        prompts = sorted({s.category for s in parts})
        prompts_seen.update(prompts)
        gt_persons = [s.mask for s in sample.segments if s.category == "person"]
        if not prompts:
            right_count += not gt_persons
            continue
        persons = pipeline(sample.image, prompts=prompts, ebp=False, score_threshold=config.score_threshold,
                           background_threshold=config.background_threshold).persons
        right_count += len(persons) == len(gt_persons)
        person_ious += match_person_ious(gt_persons, [p.mask.cpu().numpy() for p in persons])
        for person in persons:
            for part in person.parts:
                rle = mask_utils.encode(np.asfortranarray(part.mask.cpu().numpy().astype(np.uint8)))
                dts.append({"id": len(dts) + 1, "image_id": i + 1, "category_id": cat_ids[part.label],
                            "segmentation": rle, "score": float(part.score), "area": float(mask_utils.area(rle)),
                            "bbox": list(mask_utils.toBbox(rle))})
    _check_skipped(skipped, n)
    if not used_instances:
        raise ValueError(f"dataset {dataset.name!r} has no person-instance annotations: AP^r needs them")
    n -= len(skipped)
    gt_api = COCO()
    gt_api.dataset = {"images": images, "annotations": gts,
                      "categories": [{"id": cid, "name": name} for name, cid in cat_ids.items()]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        dt_api = gt_api.loadRes(dts) if dts else COCO()
        counts = {"right_person_count": round(100.0 * right_count / max(n, 1), 1),
                  "person_iou": round(100.0 * float(np.mean(person_ious)), 2) if person_ious else 0.0}
        if not dts:
            return {"apr": 0.0, "apr50": 0.0, "num_images": n, "protocol": "instance", "dataset": dataset.name,
                    "num_detections": 0, "skipped": skipped, **counts}
        evaluator = COCOeval(gt_api, dt_api, iouType="segm")
        evaluator.params.catIds = sorted(cat_ids[p] for p in prompts_seen)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"apr": round(100.0 * float(evaluator.stats[0]), 2), "apr50": round(100.0 * float(evaluator.stats[1]), 2),
            "num_images": n, "protocol": "instance", "dataset": dataset.name, "num_detections": len(dts),
            "skipped": skipped, **counts}


def to_markdown(result: dict[str, Any]) -> str:
    """A Markdown table of one evaluation result (headline metrics, then per-class IoU)."""
    head = [k for k in ("miou", "coarse_miou", "pixel_acc", "apr", "apr50", "right_person_count", "person_iou",
                        "num_images") if k in result]
    lines = [f"**{result.get('dataset', '?')}**, protocol `{result.get('protocol', '?')}`", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
             "| " + " | ".join(_fmt(result[k]) for k in head) + " |"]
    if result.get("unlabelled"):
        lines += ["", f"Left out {len(result['unlabelled'])} photo(s) with no label map: "
                  + ", ".join(result["unlabelled"][:10]) + (" ..." if len(result["unlabelled"]) > 10 else "")]
    if result.get("skipped"):
        lines += ["", f"Skipped {len(result['skipped'])} unreadable image(s):"]
        lines += [f"- {s['image']}: {s['reason']}" for s in result["skipped"]]
    if "per_class" in result:
        confused = result.get("confused_with")
        if confused is None:
            lines += ["", "| category | IoU |", "| --- | --- |"]
            lines += [f"| {name} | {_fmt(v)} |" for name, v in result["per_class"].items()]
        else:  # where each class's pixels went instead (share of its ground-truth pixels)
            lines += ["", "| category | IoU | its pixels labelled instead as |", "| --- | --- | --- |"]
            lines += [f"| {name} | {_fmt(v)} | "
                      + (", ".join(f"{other} {share:.1f}%" for other, share in confused.get(name, [])) or "–")
                      + " |" for name, v in result["per_class"].items()]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def to_json(result: dict[str, Any]) -> str:
    """One JSON object (NaN written as null)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(result), sort_keys=True)
