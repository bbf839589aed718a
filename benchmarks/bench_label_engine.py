"""The label engine measured where the truth is known: VITON's face, arms and legs merged into one skin mask,
split back by the person's MoveNet keypoints (``spectrum_parsing.limbs``, with the engine's connected-piece vote),
compared with VITON's own labels.

    python scripts/cache_keypoints.py --dataset lip:../shared/datasets/viton --out runs/keypoints/viton.json
    python benchmarks/bench_label_engine.py [--keypoints runs/keypoints/viton.json] [--limit N]

Reports per-part IoU (summed over the photos) and the share of skin pixels no region claimed; photos where
MoveNet gave no person count as all unclaimed. With ``--lip-dev`` the same on the real-world ``lip_dev`` photos
(keypoints cached the same way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from common import record
from spectrum_parsing.data import open_dataset
from spectrum_parsing.data.pose_labels import COMPONENT_MAJORITY
from spectrum_parsing.limbs import REGIONS, split_by_limbs

ROOT = Path(__file__).resolve().parents[1]
LIP_PARTS = {"face": 13, "left arm": 14, "right arm": 15, "left leg": 16, "right leg": 17}


def measure(dataset: str, split: str, keypoints: dict, regions: tuple[str, ...], limit: int | None,
            max_radii: float) -> dict[str, float]:
    data = open_dataset(dataset, split=split)
    ids = [i for i in data.image_ids if i in keypoints][:limit]
    inter = {p: 0 for p in LIP_PARTS}
    union = {p: 0 for p in LIP_PARTS}
    unclaimed = total = 0
    for image_id in ids:
        sample = data.load(image_id)
        sem = sample.semantic
        skin = np.isin(sem, list(LIP_PARTS.values()))
        total += int(skin.sum())
        kps = keypoints[image_id]
        if kps is None:
            split_map = np.where(skin, len(regions), -1)
        else:
            split_map = split_by_limbs(skin, np.asarray(kps), regions=regions, max_radii=max_radii,
                                       component_majority=COMPONENT_MAJORITY)
        unclaimed += int((split_map == len(regions)).sum())
        for part, lid in LIP_PARTS.items():
            truth = sem == lid
            pred = split_map == regions.index(part)
            inter[part] += int((truth & pred).sum())
            union[part] += int((truth | pred).sum())
    row = {p: round(100 * inter[p] / max(union[p], 1), 1) for p in LIP_PARTS}
    row["mean"] = round(float(np.mean([row[p] for p in LIP_PARTS])), 1)
    row["unclaimed %"] = round(100 * unclaimed / max(total, 1), 2)
    row["photos"] = len(ids)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=f"lip:{ROOT.parent / 'shared/datasets/viton'}")
    parser.add_argument("--split", default="all")
    parser.add_argument("--keypoints", default=str(ROOT / "runs/keypoints/viton.json"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-radii", type=float, default=4.0)
    parser.add_argument("--name", default="VITON")
    args = parser.parse_args()
    keypoints = json.loads(Path(args.keypoints).read_text())
    rows = {}
    for label, regions in (("face, arms, legs", tuple(r for r in REGIONS if r != "torso")),
                           ("with a torso region", REGIONS)):
        rows[label] = measure(args.dataset, args.split, keypoints, regions, args.limit, args.max_radii)
        print(label, rows[label], flush=True)
    record(f"Label engine on {args.name}: skin split back by MoveNet keypoints",
           "python benchmarks/bench_label_engine.py " + " ".join(sys.argv[1:]), {"max_radii": args.max_radii}, rows)


if __name__ == "__main__":
    main()
