"""People kept apart: top-down vs bottom-up parsing on real photos, side by side, in one run.

    python benchmarks/bench_persons.py                       # everything below, recorded in BENCHMARKS.md
    python benchmarks/bench_persons.py --unworn-limit 100 --no-record

Measures, for each mode (bottom-up; top-down with MoveNet-MultiPose people and BlazePose person masks; the same
with the parser's own person masks; top-down with BlazePose's own detector finding the people), or the ones
named by ``--modes``:

* ``../shared/datasets/cihp_dev`` (5 real CIHP photos, 2-7 people, per-person labels; validation only):
  right person count, person-mask IoU (GT persons matched one-to-one by IoU, unmatched = 0), part AP^r and
  AP^r_50 (pycocotools, IoU 0.5:0.95, parts prompted by CIHP's category names);
* copy-paste composites of 2-8 people cut from CCP val photos (occluding each other, known instances): right
  person count, person IoU, part AP^r (the instance protocol of ``spectrum eval``);
* ``../shared/datasets/garments_unworn`` (photos of garments nobody wears): share of photos with no person and
  no part, and the mean share of the image labelled;
* the bundled photos (group: 5 people, two-dancers: 2, selfie: 1 — counted by eye) and a 12-person composite
  (:func:`composite_12`): persons found;
* time per image on this machine for 1, 5 and 12 people (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import ROOT, record, side_by_side

SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "examples"
MODES = {"bottom-up": {"mode": "bottom-up"},
         "top-down (BlazePose masks)": {"mode": "top-down", "person_masks": "blazepose"},
         "top-down (parser masks)": {"mode": "top-down", "person_masks": "parser"},
         "top-down (BlazePose detector)": {"mode": "top-down", "person_masks": "blazepose", "detector": "blazepose"}}
EXAMPLE_COUNTS = {"group.jpg": 5, "two-dancers.jpg": 2, "selfie.jpg": 1}


def composite_12() -> np.ndarray:
    """A 2x2 grid (1024x768) of the group photo, the two dancers and the mirrored group photo (5 + 2 + 5 = 12
    people), the fourth quarter grey: more people than one MoveNet pass (6) can report."""
    canvas = Image.new("RGB", (1024, 768), (128, 128, 128))
    for k, name in enumerate(("group.jpg", "two-dancers.jpg", "group.jpg")):
        part = Image.open(EXAMPLES / name).convert("RGB").resize((512, 384))
        if k == 2:
            part = part.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        canvas.paste(part, (512 * (k % 2), 384 * (k // 2)))
    return np.asarray(canvas)


def eval_cihp(pipe, root: Path) -> dict:
    """Person count, person IoU and part AP^r of ``pipe`` on a CIHP-layout folder."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from spectrum_parsing.data.formats.cihp import CIHPDataset
    from spectrum_parsing.evaluation import match_person_ious

    data = CIHPDataset(root, split="all")
    prompts = sorted({c for c in data.canonical[1:] if c})
    cat_ids = {name: k + 1 for k, name in enumerate(prompts)}
    images, gts, dts, ious, right, errors = [], [], [], [], 0, []
    for i in range(len(data)):
        sample = data[i]
        h, w = sample.size
        images.append({"id": i + 1, "height": h, "width": w})
        gt_persons = [s.mask for s in sample.segments if s.category == "person"]
        for seg in sample.segments:
            if seg.category != "person" and seg.category in cat_ids:
                rle = mask_utils.encode(np.asfortranarray(seg.mask.astype(np.uint8)))
                gts.append({"id": len(gts) + 1, "image_id": i + 1, "category_id": cat_ids[seg.category],
                            "segmentation": rle, "area": float(seg.mask.sum()), "iscrowd": 0,
                            "bbox": list(mask_utils.toBbox(rle))})
        result = pipe(sample.image, prompts=prompts, ebp=False)
        pred_persons = [p.mask.cpu().numpy() for p in result.persons]
        right += len(pred_persons) == len(gt_persons)
        errors.append(len(pred_persons) - len(gt_persons))
        ious += match_person_ious(gt_persons, pred_persons)
        for person in result.persons:
            for part in person.parts:
                rle = mask_utils.encode(np.asfortranarray(part.mask.cpu().numpy().astype(np.uint8)))
                dts.append({"id": len(dts) + 1, "image_id": i + 1, "category_id": cat_ids[part.label],
                            "segmentation": rle, "score": float(part.score), "area": float(mask_utils.area(rle)),
                            "bbox": list(mask_utils.toBbox(rle))})
    apr = apr50 = 0.0
    if dts:
        gt_api = COCO()
        gt_api.dataset = {"images": images, "annotations": gts,
                          "categories": [{"id": c, "name": n} for n, c in cat_ids.items()]}
        with contextlib.redirect_stdout(io.StringIO()):
            gt_api.createIndex()
            evaluator = COCOeval(gt_api, gt_api.loadRes(dts), iouType="segm")
            evaluator.params.catIds = sorted({g["category_id"] for g in gts})
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        apr, apr50 = 100 * float(evaluator.stats[0]), 100 * float(evaluator.stats[1])
    return {"photos": len(data), "right count": f"{right}/{len(data)}", "count errors": errors,
            "person IoU": round(100 * statistics.mean(ious), 1) if ious else 0.0,
            "part AP^r": round(apr, 1), "part AP^r_50": round(apr50, 1)}


class _Listed:
    """A list of samples with the ``len``/``[]``/``name`` that :func:`evaluate_instances` reads."""

    def __init__(self, samples: list, name: str) -> None:
        self.samples, self.name = samples, name

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


def ccp_composites(count: int, seed: int = 0) -> _Listed:
    """``count`` copy-paste composites of 2-8 people cut from CCP *val* photos (never trained on), with
    occlusion (depth order, people partly outside the canvas): person instances known by construction."""
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.data.transforms import CopyPasteComposite

    data = open_dataset(f"ccp:{SHARED / 'datasets' / 'ccp'}", split="val")
    rng = np.random.default_rng(seed)
    paste = CopyPasteComposite(num_people=(2, 8), scale=(0.45, 0.8), min_inside=0.8, min_visible=0.3)
    out = []
    for _ in range(count):
        picks = rng.choice(len(data), size=8, replace=False)
        out.append(paste([data[int(i)] for i in picks], rng))
    return _Listed(out, "ccp-composites")


def eval_composites(pipe, composites: _Listed) -> dict:
    """Right person count, person IoU and part AP^r on the composites (``spectrum eval``'s instance protocol)."""
    from spectrum_parsing.evaluation import EvalConfig, evaluate_instances

    result = evaluate_instances(pipe, composites, EvalConfig(protocol="instance"))
    people = [len({s.person for s in c.segments if s.category == "person"}) for c in composites.samples]
    return {"composites": len(composites), "people per composite": f"{min(people)}-{max(people)}",
            "right count (%)": result["right_person_count"], "person IoU": result["person_iou"],
            "part AP^r": result["apr"], "part AP^r_50": result["apr50"]}


def eval_unworn(pipe, root: Path, limit: int | None) -> dict:
    """Share of unworn-garment photos with nothing reported, and the mean labelled share of the image."""
    with (root / "images.csv").open() as f:
        rows = list(csv.DictReader(f))[:limit]
    empty, labelled = 0, []
    for row in rows:
        path = root / "images" / f"{row['image']}.jpg"
        garment = row["label"].lower().replace("outwear", "coat").replace("longsleeve", "shirt")
        result = pipe(str(path), prompts=["saree", "heels", garment])
        empty += not result.persons
        labelled.append(float((result.label_map > 0).mean()))
    return {"photos": len(rows), "empty": f"{empty}/{len(rows)} ({100 * empty / max(len(rows), 1):.1f}%)",
            "mean labelled share (%)": round(100 * statistics.mean(labelled), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unworn-limit", type=int, default=None, help="unworn-garment photos to use (default all)")
    parser.add_argument("--composites", type=int, default=20, help="CCP copy-paste composites (default 20)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--timing-only", action="store_true",
                        help="only the bundled photos and the timings (rerun on a quiet machine: timings are noisy)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from spectrum_parsing import SpectrumPipeline

    composite = composite_12()
    timing_images = {"1 person (selfie, 1024x768)": str(EXAMPLES / "selfie.jpg"),
                     "5 people (group, 1024x768)": str(EXAMPLES / "group.jpg"),
                     "12 people (composite, 1024x768)": composite}
    composites = (ccp_composites(args.composites)
                  if (SHARED / "datasets" / "ccp").is_dir() and not args.timing_only else None)
    results: dict[str, dict] = {}
    for name in args.modes:
        options = MODES[name]
        pipe = SpectrumPipeline.from_pretrained(**options)
        row: dict = {}
        row["bundled photos (persons found / by eye)"] = {
            k: f"{len(pipe(str(EXAMPLES / k)).persons)}/{v}" for k, v in EXAMPLE_COUNTS.items()}
        row["12-person composite: persons found"] = len(pipe(composite).persons)
        batched = pipe.mode == "top-down"  # crops of equal padded size share a pass; also time one pass each
        for label, image in timing_images.items():
            pipe(image)
            times: dict[int, list[float]] = {8: [], 1: []}
            for _ in range(args.repeats):  # alternated, so both see the same machine load
                for crop_batch in ((8, 1) if batched else (8,)):
                    pipe.crop_batch = crop_batch
                    start = time.perf_counter()
                    pipe(image)
                    times[crop_batch].append(time.perf_counter() - start)
            pipe.crop_batch = 8
            row[f"time (s): {label}"] = round(statistics.median(times[8]), 3)
            if batched:
                row[f"time (s): {label}, one crop per pass"] = round(statistics.median(times[1]), 3)
        if (SHARED / "datasets" / "cihp_dev").is_dir() and not args.timing_only:
            row["cihp_dev"] = eval_cihp(pipe, SHARED / "datasets" / "cihp_dev")
        if composites is not None:
            row["CCP val composites"] = eval_composites(pipe, composites)
        if (SHARED / "datasets" / "garments_unworn").is_dir() and not args.timing_only:
            row["garments_unworn"] = eval_unworn(pipe, SHARED / "datasets" / "garments_unworn", args.unworn_limit)
        results[name] = row
        print(f"## {name}")
        for key, value in row.items():
            print(f"- {key}: {value}")
    if not args.no_record:
        modes = "" if args.modes == list(MODES) else " --modes " + " ".join(f"'{m}'" for m in args.modes)
        command = "python benchmarks/bench_persons.py" + modes + (
            f" --unworn-limit {args.unworn_limit}" if args.unworn_limit else "") + (
            " --timing-only" if args.timing_only else "")
        title = ("People: time per image, top-down vs bottom-up (CPU)" if args.timing_only
                 else "People: top-down vs bottom-up on real photos (CPU)")
        params = {"threads": args.threads, "repeats": args.repeats, "composites": args.composites,
                  "unworn_limit": args.unworn_limit, "modes": ", ".join(args.modes)}
        record(title, command, params, side_by_side(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
