"""The embedded default model on this machine: load time and per-image latency of SpectrumPipeline.

Times the whole call a user makes (image decode excluded; resize, backbone, decoder, grounding, grouping,
label map) on the bundled group photo resized to --size pixels on its longest side, with the model's default
prompts plus EBP.

    python benchmarks/bench_default.py --size 512 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from common import ROOT, median_time, record
from spectrum_parsing.pipeline import SpectrumPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=str(ROOT / "examples" / "group.jpg"))
    args = parser.parse_args()
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        pipe = SpectrumPipeline.from_pretrained()
        loads.append(time.perf_counter() - start)
    image = Image.open(args.image).convert("RGB")
    image.thumbnail((args.size, args.size))
    with torch.inference_mode():
        latency, runs = median_time(lambda: pipe(image), args.repeats, warmup=2)
        result = pipe(image)
    results = {"model load (s, median of 3 in one process)": round(sorted(loads)[1], 3),
               "first load incl. imports (s)": round(loads[0], 3),
               "latency per image (s)": round(latency, 3), "runs (s)": [round(t, 3) for t in runs],
               "image": f"{Path(args.image).name} {image.width}x{image.height}",
               "prompts scored": len(result.prompts), "persons found": len(result.persons)}
    command = "python benchmarks/bench_default.py " + " ".join(sys.argv[1:])
    record("Default model (spectrum-bodypix) on CPU", command.strip(),
           {"size": args.size, "model input": pipe.image_size, "repeats": args.repeats,
            "threads": torch.get_num_threads()}, results)
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
