"""Derive body-part labels for CCP's real photos with the label engine and write them as id PNGs.

    python scripts/cache_keypoints.py --dataset ccp:../shared/datasets/ccp --out runs/keypoints/ccp.json
    python scripts/build_pose_labels.py --keypoints runs/keypoints/ccp.json --out runs/pose-labels/ccp

Every pixel-level CCP photo's ``skin`` is split into face / left arm / right arm / left leg / right leg by its
person's MoveNet keypoints (``spectrum_parsing.data.pose_labels``); the maps go to ``--out/NNNN.png`` in the CCP
classes extended by the five parts. Train on them with the CCP reader's ``body_parts`` option
(``{dataset: "ccp:PATH", options: {body_parts: runs/pose-labels/ccp}}``). Prints how much skin was split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spectrum_parsing.data import open_dataset  # noqa: E402
from spectrum_parsing.data.pose_labels import (  # noqa: E402
    BODY_PART_CLASSES,
    extended_classes,
    split_skin,
    write_body_part_map,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared/datasets/ccp"), help="CCP root")
    parser.add_argument("--keypoints", required=True, help="JSON written by scripts/cache_keypoints.py")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    keypoints = json.loads(Path(args.keypoints).read_text())
    data = open_dataset(f"ccp:{args.dataset}", split="all")
    classes = extended_classes(data.classes)
    skin_id = data.classes.index("skin")
    counts = np.zeros(len(BODY_PART_CLASSES) + 1, dtype=np.int64)
    missing = 0
    for image_id in data.image_ids:
        sample = data.load(image_id)
        kps = keypoints.get(image_id)
        missing += kps is None
        derived = split_skin(sample.semantic, data.classes, None if kps is None else np.asarray(kps))
        counts[:-1] += np.bincount(derived.ravel()[derived.ravel() >= len(data.classes)] - len(data.classes),
                                   minlength=len(BODY_PART_CLASSES))[: len(BODY_PART_CLASSES)]
        counts[-1] += int((derived == skin_id).sum())
        write_body_part_map(Path(args.out) / f"{image_id}.png", derived)
    total = max(int(counts.sum()), 1)
    shares = ", ".join(f"{n} {100 * c / total:.1f}%" for n, c in zip([*BODY_PART_CLASSES, "skin (unclaimed)"], counts))
    print(f"{len(data.image_ids)} maps in {args.out} ({len(classes)} classes); no keypoints: {missing}; "
          f"skin pixels: {shares}")


if __name__ == "__main__":
    main()
