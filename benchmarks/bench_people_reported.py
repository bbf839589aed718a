"""People the shipped pipeline reports (not the detector alone): variants of its top-down options side by side.

    python benchmarks/bench_people_reported.py                  # the rows below, recorded in BENCHMARKS.md
    python benchmarks/bench_people_reported.py --rows default "min_person_evidence=0" --no-record

A row is ``default`` (the shipped pipeline) or ``option=value,...`` of
:class:`~spectrum_parsing.topdown.TopDownConfig` or ``movenet.ARG=value`` (an argument of the default detector,
``MoveNetDetector``; ``none`` for None), where ``detector=merged`` adds the people BlazePose's detector
finds away from MoveNet's (:class:`~spectrum_parsing.persons.MergedDetector`). For each row, through
``SpectrumPipeline.__call__`` (prompt "face": the people, not their parts, are measured):

* ``cihp_dev`` (5 real photos, 2-7 people; validation only) and CCP val copy-paste composites of 2-12 people (the
  sets of ``bench_detectors.py``): exact-count rate, per-person recall and precision at box IoU 0.5 (a person's
  box is the box of the pixels it owns; the truth's, of the person's visible pixels);
* the bundled photos (counted by eye) and the 12-person composite: persons reported;
* ``lip_dev`` (25 photos of one person each): photos with at least one person;
* ``garments_unworn`` (photos of garments nobody wears), train and val splits: photos with no person reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detectors import labelled_sets, match  # noqa: E402
from bench_persons import EXAMPLE_COUNTS, EXAMPLES, SHARED, composite_12  # noqa: E402
from common import record, side_by_side  # noqa: E402

PROMPTS = ["face"]


def load(row: str):
    """The pipeline of a row: ``bench_body_parts.load``'s option parsing, plus ``detector=merged``."""
    from bench_body_parts import load as load_row

    items = [] if row == "default" else [item for item in row.split(",") if item]
    merged = "detector=merged" in items
    unknown = [item for item in items if item.startswith("detector=") and item != "detector=merged"]
    if unknown:
        raise ValueError(f"{unknown[0]}: only detector=merged is known")
    pipe = load_row("spectrum-lite2:" + ",".join(item for item in items if not item.startswith("detector=")))
    if merged:  # MoveNet, plus the people BlazePose's detector finds away from MoveNet's (persons.MergedDetector)
        from spectrum_parsing.persons import BlazePoseDetector, MergedDetector, MoveNetDetector

        pipe.person_detector = MergedDetector([MoveNetDetector.from_pretrained(), BlazePoseDetector.from_pretrained()])
    return pipe


def persons(pipe, image: np.ndarray) -> np.ndarray:
    """(N, 4) boxes of the persons the pipeline reports on ``image``."""
    found = pipe(image, prompts=PROMPTS).persons
    return np.asarray([p.box for p in found], dtype=np.float64).reshape(-1, 4)


def run(row: str, sets: dict) -> dict:
    from spectrum_parsing.data import open_dataset

    pipe = load(row)
    out: dict = {}
    for name, items in sets.items():
        gt_total = found_total = hits = exact = 0
        for image, gt in items:
            boxes = persons(pipe, image)
            gt_total += len(gt)
            found_total += len(boxes)
            exact += len(boxes) == len(gt)
            hits += match(gt, boxes, image.shape[:2])
        out[name] = {"photos": len(items), "exact count (%)": round(100 * exact / len(items), 1),
                     "recall (%)": round(100 * hits / max(gt_total, 1), 1),
                     "precision (%)": round(100 * hits / max(found_total, 1), 1)}
    out["bundled photos (reported / by eye)"] = {
        file: f"{len(persons(pipe, np.asarray(Image.open(EXAMPLES / file).convert('RGB'))))}/{count}"
        for file, count in EXAMPLE_COUNTS.items()}
    out["12-person composite: reported"] = len(persons(pipe, composite_12()))
    lip = SHARED / "datasets" / "lip_dev"
    if lip.is_dir():
        data = open_dataset(f"lip:{lip}", split="all")
        seen = sum(len(persons(pipe, np.asarray(data[i].image))) > 0 for i in range(len(data)))
        out["lip_dev: at least one person"] = f"{seen}/{len(data)}"
    unworn = SHARED / "datasets" / "garments_unworn"
    if unworn.is_dir():
        for split in ("train", "val"):
            data = open_dataset(f"no-person:{unworn}", split=split)
            empty = sum(len(persons(pipe, np.asarray(data[i].image))) == 0 for i in range(len(data)))
            out[f"garments_unworn {split}: no person"] = f"{empty}/{len(data)} ({100 * empty / len(data):.1f}%)"
    print(row, out, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["min_person_evidence=0", "default"])
    parser.add_argument("--composites", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = labelled_sets(args.composites)
    results = {row: run(row, sets) for row in args.rows}
    if not args.no_record:
        record("People reported by the shipped pipeline (CPU)",
               "python benchmarks/bench_people_reported.py --rows " + " ".join(f'"{r}"' for r in args.rows),
               {"threads": args.threads, "composites": args.composites, "prompts": PROMPTS},
               side_by_side(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
