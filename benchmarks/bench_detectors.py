"""Every person found: the person detector on its own, its variants side by side in one run.

    python benchmarks/bench_detectors.py                     # every row below, recorded in BENCHMARKS.md
    python benchmarks/bench_detectors.py --rows before "extra_sizes=384" --no-record

A row is ``NAME`` or ``option=value,...`` of :class:`~spectrum_parsing.persons.MoveNetDetector` (``extra_sizes``
as ``384+512``, ``None`` for no value); ``default`` is the shipped detector, ``before`` the previous one. For each row:

* ``cihp_dev`` (5 real CIHP photos, 2-7 people, per-person labels; validation only), CCP val copy-paste
  composites of 2-12 people (mixed sizes, people cut by the frame, occluding each other; the canvas is a street
  photo whose unlabelled bystanders count as false detections), the same people on person-free photos (every
  person in the image labelled: :func:`labelled_sets`), and the bundled photos
  (counted by eye; no boxes): exact-count rate; for the labelled sets per-person recall and precision at box IoU
  0.5 (the ground-truth box is the box of the person's visible pixels; a detection's box is clipped to the image;
  one-to-one greedy matching by IoU);
* a 12-person composite of the bundled photos: persons found;
* ``lip_dev`` (25 photos, each of one person): share with at least one person found, by the detector alone and
  through the shipped pipeline (which parses the whole photo as one person when the parser is sure of one);
* ``garments_unworn`` (photos of garments nobody wears): share with no person;
* time per image (detector only): the rows timed side by side, alternated image by image (the host's load swings a
  row run alone by 30%), each image's best of 2 rounds; the median over ``cihp_dev``, the composites and the bundled
  photos, and per bundled photo.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_persons import EXAMPLE_COUNTS, EXAMPLES, SHARED, composite_12  # noqa: E402
from common import record, row_value, side_by_side  # noqa: E402

ROWS = {"default": {}, "before": {"extra_sizes": (), "merge": "box", "border_keypoints": None}}
"""Named rows: the shipped detector, and the one shipped before the 512-px pass, OKS merging and the border rule."""


def detector(row: str):
    """The detector of a row: ``[+blazepose:]option=value,...`` (``+blazepose``: BlazePose's second opinion
    merged, :class:`~spectrum_parsing.persons.MergedDetector`)."""
    from spectrum_parsing.persons import BlazePoseDetector, MergedDetector, MoveNetDetector

    second, row = row.startswith("+blazepose"), row.removeprefix("+blazepose").lstrip(":")
    options: dict = dict(ROWS.get(row, {}))
    if row not in ROWS:
        for item in filter(None, row.split(",")):
            key, _, value = item.partition("=")
            key, value = key.strip(), value.strip()
            options[key] = tuple(int(v) for v in value.split("+")) if key == "extra_sizes" else row_value(value)
    movenet = MoveNetDetector.from_pretrained(**options)
    return MergedDetector([movenet, BlazePoseDetector.from_pretrained()]) if second else movenet


def person_boxes(masks: list[np.ndarray]) -> np.ndarray:
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def matches(gt: np.ndarray, found: np.ndarray, shape: tuple[int, int]) -> dict[int, int]:
    """{truth index: found index}: ground-truth boxes matched one-to-one by a found box (clipped to the image) at
    IoU >= 0.5, greedily by IoU."""
    from spectrum_parsing.persons.types import box_iou, clip_boxes

    if not len(gt) or not len(found):
        return {}
    iou = box_iou(gt, clip_boxes(found, shape))
    pairs: dict[int, int] = {}
    while iou.size and iou.max() >= 0.5:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        pairs[int(i)] = int(j)
        iou[i, :] = -1
        iou[:, j] = -1
    return pairs


def match(gt: np.ndarray, found: np.ndarray, shape: tuple[int, int]) -> int:
    """Ground-truth boxes matched one-to-one by a found box (clipped to the image) at IoU >= 0.5 (:func:`matches`)."""
    return len(matches(gt, found, shape))


COMPOSITES = "CCP val composites (2-12 people)"
CLEAN_COMPOSITES = "CCP val composites on person-free photos (2-12 people)"


def labelled_sets(composites: int, clean: bool = True) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{set: [(image, ground-truth boxes)]}: cihp_dev, CCP val composites of 2-12 people and, with ``clean``, the
    same composites on person-free photos.

    A composite's canvas is a CCP street photo, whose bystanders CCP does not label: a person found among them
    counts as a false detection and a wrong count. The clean set puts the same pasted people (same draws) onto a
    photo of garments nobody wears (``garments_unworn`` val, no person: every pixel outside the labelled people
    becomes that photo), so that its truth holds everyone in the image."""
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.data.formats.cihp import CIHPDataset
    from spectrum_parsing.data.transforms import CopyPasteComposite
    from spectrum_parsing.data.transforms.composite import paste_on_background

    out: dict[str, list] = {}
    cihp = SHARED / "datasets" / "cihp_dev"
    if cihp.is_dir():
        data = CIHPDataset(cihp, split="all")
        out["cihp_dev"] = [(np.asarray(s.image), person_boxes([g.mask for g in s.segments if g.category == "person"]))
                           for s in (data[i] for i in range(len(data)))]
    ccp = SHARED / "datasets" / "ccp"
    unworn = SHARED / "datasets" / "garments_unworn"
    if ccp.is_dir() and composites:
        data = open_dataset(f"ccp:{ccp}", split="val")
        backgrounds = open_dataset(f"no-person:{unworn}", split="val") if clean and unworn.is_dir() else None
        rng = np.random.default_rng(0)
        clean_rng = np.random.default_rng(1)  # its own draws: the street composites stay as they were
        # mixed sizes (a far person is 0.25 of the canvas person's height), cut by the frame (40% may be outside)
        paste = CopyPasteComposite(num_people=(2, 12), scale=(0.25, 1.0), min_inside=0.6, min_visible=0.4)
        items, clean_items = [], []
        for k in range(composites):
            picks = rng.choice(len(data), size=12, replace=False)
            sample = paste([data[int(i)] for i in picks], rng)
            items.append((np.asarray(sample.image), people_boxes(sample)))
            if backgrounds is not None:
                back = backgrounds[k % len(backgrounds)].image
                moved = paste_on_background(sample, back, clean_rng)
                clean_items.append((np.asarray(moved.image), people_boxes(moved)))
        out[COMPOSITES] = items
        if backgrounds is not None:
            out[CLEAN_COMPOSITES] = clean_items
    return out


def people_boxes(sample) -> np.ndarray:
    """Boxes of each person's visible pixels in a composite (a sliver under 200 px left by occlusion is nobody to
    find)."""
    masks: dict[int, np.ndarray] = {}
    for seg in sample.segments:
        if seg.category == "person":
            masks[seg.person] = masks.get(seg.person, 0) | seg.mask
    keep = [m for m in masks.values() if m.sum() >= 200]  # a sliver left by occlusion is nobody to find
    return person_boxes(keep)


def run(row: str, sets: dict, args: argparse.Namespace) -> dict:
    from spectrum_parsing import SpectrumPipeline

    found_by = detector(row)
    out: dict = {}
    for name, items in sets.items():
        gt_total = det_total = hits = exact = 0
        for image, gt in items:
            dets = found_by(image)
            gt_total += len(gt)
            det_total += len(dets)
            exact += len(dets) == len(gt)
            hits += match(gt, dets.boxes.astype(np.float64), image.shape[:2])
        counts = [len(gt) for _, gt in items]
        out[name] = {"photos": len(items), "people": f"{min(counts)}-{max(counts)} ({gt_total})",
                     "exact count (%)": round(100 * exact / len(items), 1),
                     "recall (%)": round(100 * hits / max(gt_total, 1), 1),
                     "precision (%)": round(100 * hits / max(det_total, 1), 1)}
    out["bundled photos (found / by eye)"] = {
        file: f"{len(found_by(np.asarray(Image.open(EXAMPLES / file).convert('RGB'))))}/{count}"
        for file, count in EXAMPLE_COUNTS.items()}
    out["12-person composite: found"] = len(found_by(composite_12()))
    lip = SHARED / "datasets" / "lip_dev"
    if lip.is_dir():
        from spectrum_parsing.data import open_dataset

        data = open_dataset(f"lip:{lip}", split="all")
        images = [np.asarray(data[i].image) for i in range(len(data))]
        pipe = SpectrumPipeline.from_pretrained(person_detector=found_by)
        alone = sum(len(found_by(a)) > 0 for a in images)
        parsed = sum(len(pipe(a, prompts=["face"]).persons) > 0 for a in images)
        out["lip_dev: at least one person"] = {"detector": f"{alone}/{len(images)}",
                                               "pipeline": f"{parsed}/{len(images)}"}
    unworn = SHARED / "datasets" / "garments_unworn" / "images"
    if unworn.is_dir():
        files = sorted(unworn.glob("*.jpg"))[: args.unworn_limit]
        empty = sum(len(found_by(np.asarray(Image.open(f).convert("RGB")))) == 0 for f in files)
        out["garments_unworn: no person"] = f"{empty}/{len(files)} ({100 * empty / len(files):.1f}%)"
    print(row, out, flush=True)
    return out


def timings(rows: list[str], sets: dict, rounds: int = 2) -> dict[str, dict]:
    """Detector time per row, the rows alternated image by image: each image's best of ``rounds``; the median over
    every labelled image and bundled photo, and per bundled photo."""
    detectors = {row: detector(row) for row in rows}
    images = [image for items in sets.values() for image, _ in items]
    bundled = {file: np.asarray(Image.open(EXAMPLES / file).convert("RGB")) for file in EXAMPLE_COUNTS}
    best = {row: [float("inf")] * (len(images) + len(bundled)) for row in rows}
    for image in images[:1]:  # warm-up
        for found_by in detectors.values():
            found_by(image)
    for _ in range(rounds):
        for k, image in enumerate([*images, *bundled.values()]):
            for row, found_by in detectors.items():
                start = time.perf_counter()
                found_by(image)
                best[row][k] = min(best[row][k], time.perf_counter() - start)
    return {row: {"bundled photos: detector time (s, best of 2, alternated)": {
                      file: round(t, 3) for file, t in zip(bundled, best[row][len(images):])},
                  "time per image (s, median, alternated)": round(statistics.median(best[row]), 3)}
            for row in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    parser.add_argument("--composites", type=int, default=40)
    parser.add_argument("--unworn-limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = labelled_sets(args.composites)
    results = {row: run(row, sets, args) for row in args.rows}
    for row, times in timings(args.rows, sets).items():
        results[row].update(times)
    if not args.no_record:
        record("People found: the person detector and its variants (CPU)",
               "python benchmarks/bench_detectors.py --rows " + " ".join(f'"{r}"' for r in args.rows),
               {"threads": args.threads, "composites": args.composites, "unworn_limit": args.unworn_limit},
               side_by_side(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
