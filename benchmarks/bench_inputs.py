"""Square model inputs (the default: as in training and as the ONNX export) against inputs padded only to
multiples of 32, side by side in one run (CPU): quality of the top-down pipeline on real photos
(``../shared/datasets/cihp_dev``, several people; ``lip_dev``, one person, body parts and all LIP categories;
validation only) and time per image for 1, 5 and 12 people.

    python benchmarks/bench_inputs.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_persons import EXAMPLES, SHARED, composite_12, eval_cihp  # noqa: E402
from common import record  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from spectrum_parsing import SpectrumPipeline

    pipe = SpectrumPipeline.from_pretrained()
    images = {"1 person (selfie)": str(EXAMPLES / "selfie.jpg"), "5 people (group)": str(EXAMPLES / "group.jpg"),
              "12 people (composite)": composite_12()}
    settings = {"square (default)": True, "multiples of 32": False}
    results: dict[str, str] = {}
    for label, image in images.items():
        times: dict[str, list[float]] = {name: [] for name in settings}
        for square in settings.values():  # warm-up
            pipe.square_inputs = square
            pipe(image)
        for _ in range(args.repeats):  # alternated, so both see the same machine load
            for name, square in settings.items():
                pipe.square_inputs = square
                start = time.perf_counter()
                pipe(image)
                times[name].append(time.perf_counter() - start)
        results[f"time (s), {label}, 1024x768"] = " · ".join(
            f"{name} {statistics.median(t):.2f}" for name, t in times.items())
        print(label, results[f"time (s), {label}, 1024x768"], flush=True)
    if (SHARED / "datasets" / "cihp_dev").is_dir():
        for name, square in settings.items():
            pipe.square_inputs = square
            got = eval_cihp(pipe, SHARED / "datasets" / "cihp_dev")
            results[f"cihp_dev, {name}: person IoU / part AP^r / AP^r_50"] = (
                f"{got['person IoU']} / {got['part AP^r']} / {got['part AP^r_50']}")
            print(name, got, flush=True)
    lip = SHARED / "datasets" / "lip_dev"
    if lip.is_dir():
        from bench_body_parts import body_parts
        from bench_quality import semantic

        for name, square in settings.items():
            pipe.square_inputs = square
            body = body_parts(pipe, f"lip:{lip}")["body mIoU"]
            every = semantic(pipe, f"lip:{lip}", "all", "all")["miou"]
            results[f"lip_dev, {name}: body parts / all categories mIoU"] = f"{body:.2f} / {every:.2f}"
            print(name, results[f"lip_dev, {name}: body parts / all categories mIoU"], flush=True)
    record("Model inputs: square vs multiples of 32, top-down pipeline (CPU)", "python benchmarks/bench_inputs.py",
           {"threads": args.threads, "repeats": args.repeats}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
