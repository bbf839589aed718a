"""Run the shipped MoveNet-MultiPose on every photo of a single-person dataset and store each photo's person
keypoints (the label engine's input, ``spectrum_parsing.data.pose_labels``).

    python scripts/cache_keypoints.py --dataset ccp:../shared/datasets/ccp --out runs/keypoints/ccp.json
    python scripts/cache_keypoints.py --dataset lip:../shared/datasets/viton --out runs/keypoints/viton.json

One detection per photo: MoveNet's candidates (all six, no acceptance threshold) are matched to the labelled
person (the pixels with a non-background label) and the one whose box covers most of it, weighted by its score,
is kept. Output: ``{"image_id": [[x, y, score] * 17] | null, ...}`` in the photo's pixels (COCO order). Resumes:
ids already in ``--out`` are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spectrum_parsing.data import open_dataset  # noqa: E402
from spectrum_parsing.persons import MoveNetDetector  # noqa: E402


def best_person(keypoints: np.ndarray, boxes: np.ndarray, scores: np.ndarray, person: np.ndarray) -> int | None:
    """Index of the candidate that best covers the labelled ``person`` mask (None when none overlaps it)."""
    if not person.any() or not len(boxes):
        return None
    ys, xs = np.nonzero(person)
    best, best_value = None, 0.0
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        inside = ((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)).mean()
        kx, ky = keypoints[k, :, 0].round().astype(int), keypoints[k, :, 1].round().astype(int)
        h, w = person.shape
        ok = (kx >= 0) & (kx < w) & (ky >= 0) & (ky < h) & (keypoints[k, :, 2] >= 0.3)
        on_person = person[ky[ok], kx[ok]].mean() if ok.any() else 0.0
        value = float(inside) * (0.5 + on_person) * (0.2 + float(scores[k]))
        if value > best_value:
            best, best_value = k, value
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="FORMAT:PATH of a single-person dataset")
    parser.add_argument("--split", default="all")
    parser.add_argument("--out", required=True)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    done: dict[str, list | None] = json.loads(out.read_text()) if out.is_file() else {}
    dataset = open_dataset(args.dataset, split=args.split)
    detector = MoveNetDetector.from_pretrained(score_threshold=0.0, min_keypoints=0, tile=False)
    ids = [i for i in dataset.image_ids if i not in done][: args.limit]
    start = time.perf_counter()
    for n, image_id in enumerate(ids, 1):
        sample = dataset.load(image_id)
        found = detector(sample.image)
        person = np.zeros(sample.size, dtype=bool)
        for seg in sample.segments:
            if seg.category == "person":
                person |= seg.mask
        k = best_person(found.keypoints, found.boxes, found.scores, person) if len(found) else None
        done[image_id] = None if k is None else np.round(found.keypoints[k].astype(np.float64), 2).tolist()
        if n % 200 == 0 or n == len(ids):
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(done))
            print(f"{n}/{len(ids)} in {time.perf_counter() - start:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(done))


if __name__ == "__main__":
    main()
