"""MoveNet-MultiPose's acceptance thresholds: right person counts on real photos vs no person on garment photos.

A detection is kept when its person score is at least ``score`` and at least ``keypoints`` of its 17 keypoints
are scored >= 0.3 (``MoveNetDetector``; default 0.15 and 7). This sweeps both on:

* the real multi-person photos with known counts: ``../shared/datasets/cihp_dev`` (5, per-person labels) and
  the bundled group (5 people) and two-dancers (2) photos, plus the selfie (1) — right count out of 8;
* ``../shared/datasets/garments_unworn``: share of photos with no detection, on its train split (two thirds,
  where thresholds may be chosen) and its val split (the third kept for measuring);
* the 20 CCP copy-paste composites of ``bench_persons.py`` (2-8 occluded people): right count; and the
  12-person composite (2x2 grid of the bundled photos): people found.

One MoveNet pass per photo, thresholds applied afterwards; the 12-person composite runs the whole detector
(its first pass is full, so tiles are added).

    python benchmarks/bench_detector_thresholds.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

SHARED = ROOT.parent / "shared"
SCORES = (0.1, 0.15, 0.2, 0.25)
KEYPOINTS = (5, 7, 9)


def main() -> int:
    from bench_persons import ccp_composites, composite_12
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.data.formats.cihp import CIHPDataset
    from spectrum_parsing.persons import MoveNetDetector
    from spectrum_parsing.persons.movenet import accept_people
    from spectrum_parsing.persons.types import nms

    if not (SHARED / "datasets").is_dir():
        print(f"needs the shared datasets at {SHARED}", file=sys.stderr)
        return 2
    raw_detector = MoveNetDetector.from_pretrained(score_threshold=0.0, min_keypoints=0)

    def rgb(image) -> np.ndarray:
        return np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)

    photos = []
    cihp = CIHPDataset(SHARED / "datasets" / "cihp_dev", split="all")
    for i in range(len(cihp)):
        sample = cihp[i]
        photos.append((rgb(sample.image), sum(s.category == "person" for s in sample.segments)))
    for name, count in (("group", 5), ("two-dancers", 2), ("selfie", 1)):
        photos.append((np.asarray(Image.open(ROOT / "examples" / f"{name}.jpg").convert("RGB")), count))
    real = [(raw_detector._single_pass(image), count) for image, count in photos]
    unworn = {}
    for split in ("train", "val"):
        data = open_dataset(f"no-person:{SHARED / 'datasets' / 'garments_unworn'}", split=split)
        unworn[split] = [raw_detector._single_pass(rgb(data[i].image)) for i in range(len(data))]

    composites = ccp_composites(20)
    scenes = [(raw_detector._single_pass(rgb(composites[i].image)),
               sum(s.category == "person" for s in composites[i].segments)) for i in range(len(composites))]
    crowd = composite_12()

    def kept(found, score: float, keypoints: int) -> int:
        return len(nms(accept_people(found, score, keypoints), 0.5))

    results = {}
    for score in SCORES:
        for keypoints in KEYPOINTS:
            right = sum(kept(f, score, keypoints) == c for f, c in real)
            empty = {k: 100 * np.mean([kept(f, score, keypoints) == 0 for f in v]) for k, v in unworn.items()}
            scene_right = sum(kept(f, score, keypoints) == c for f, c in scenes)
            twelve = len(MoveNetDetector(raw_detector.graph, score_threshold=score, min_keypoints=keypoints)(crowd))
            tag = " (default)" if (score, keypoints) == (0.15, 7) else ""
            results[f"score >= {score}, keypoints >= {keypoints}{tag}"] = (
                f"real photos right {right}/{len(real)} · unworn empty: train {empty['train']:.1f}%, "
                f"val {empty['val']:.1f}% · composites right {scene_right}/{len(scenes)} · 12-person: {twelve}")
            print(score, keypoints, results[next(reversed(results))], flush=True)
    record("Person detector thresholds: counts vs garment photos (CPU)",
           "python benchmarks/bench_detector_thresholds.py",
           {"real photos": len(real), "unworn train/val": f"{len(unworn['train'])}/{len(unworn['val'])}"}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
