"""The README's try-on figure: a photo, then its agnostic masks for the upper, lower and dress categories (grey).

    python scripts/tryon_figure.py [--image examples/two-dancers.jpg] [--out docs/tryon_two_dancers.jpg]

The same masks as ``spectrum parse PHOTO --format tryon --garment upper|lower|dress`` writes per person
(``OUT/STEM_tryon/person<id>_agnostic_<garment>.png``), here merged over all persons for one picture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spectrum_parsing.pipeline import SpectrumPipeline  # noqa: E402
from spectrum_parsing.tryon import GARMENTS, tryon_masks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(ROOT / "examples" / "two-dancers.jpg"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "tryon_two_dancers.jpg"))
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    photo = Image.open(args.image).convert("RGB")
    photo.thumbnail((512, 512))
    result = SpectrumPipeline.from_pretrained(args.model)(photo, preset="lip")
    tiles = [np.asarray(photo)]
    for garment in GARMENTS:
        mask = np.zeros(result.label_map.shape, dtype=bool)
        for person in tryon_masks(result, garment):
            mask |= person.agnostic
        tile = np.asarray(photo).copy()
        tile[mask] = (tile[mask] * 0.25 + 96).astype(np.uint8)
        tiles.append(tile)
    figure = Image.fromarray(np.concatenate(tiles, axis=1))
    figure.thumbnail((1600, 1600))
    figure.save(args.out, quality=82)
    print(f"{args.out}: photo | upper | lower | dress")


if __name__ == "__main__":
    main()
