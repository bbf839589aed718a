"""The shipped path's speed as a ratio to raw BodyPix in onnxruntime, measured side by side in one run.

BodyPix MobileNetV1 x0.50 (stride 16) in onnxruntime is the floor for a CPU human model here: one pass, no
people, no prompts. Against it, in the same process and minute: ``pipe(photo)`` of the default pipeline
(``spectrum parse``'s: top-down, default prompts) on a single-person photo and on the 5-person group photo,
both 512 px on the long side. Then the same with one competing busy process (a single-threaded Python loop,
like a neighbour job). Ratios are what the targets are stated in (issue: single person <= 5x, 5 people <= 13x,
under contention within 2x of idle). Medians of ``--repeats`` after warm-up.

    python benchmarks/bench_speed_ratio.py --repeats 7
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

# isort: off
import spectrum_parsing  # noqa: F401  (before torch, as `spectrum` imports it: libgomp's spinning is turned off)
import numpy as np
import torch
from PIL import Image
# isort: on

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median_time, record  # noqa: E402

BODYPIX = ROOT.parent / "shared" / "weights" / "bodypix" / "MobileNetV1-x050-stride16.onnx"


def _busy(stop: mp.Event) -> None:
    x = 0.0
    while not stop.is_set():
        for i in range(100_000):
            x += i * 0.5


def photo(name: str, size: int = 512) -> Image.Image:
    image = Image.open(ROOT / "examples" / name).convert("RGB")
    scale = size / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)))


def measure(pipe, session, repeats: int) -> dict[str, float]:
    selfie, group = photo("selfie.jpg"), photo("group.jpg")
    # BodyPix takes sides of the form 16k + 1, RGB in [-1, 1], NHWC.
    w, h = selfie.size
    side = lambda n: (n // 16) * 16 + 1  # noqa: E731
    x = (np.asarray(selfie.resize((side(w), side(h))), dtype=np.float32) / 127.5 - 1.0)[None]
    name = session.get_inputs()[0].name
    bodypix, _ = median_time(lambda: session.run(None, {name: x}), repeats, warmup=2)
    single, _ = median_time(lambda: pipe(selfie), repeats, warmup=1)
    five, _ = median_time(lambda: pipe(group), repeats, warmup=1)
    return {"bodypix": bodypix, "single": single, "five": five}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not BODYPIX.is_file():
        print(f"needs {BODYPIX}", file=sys.stderr)
        return 2
    import onnxruntime as ort

    from spectrum_parsing.pipeline import SpectrumPipeline

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(BODYPIX), options, providers=["CPUExecutionProvider"])
    pipe = SpectrumPipeline.from_pretrained()
    rows = {}
    with torch.inference_mode():
        rows["idle"] = measure(pipe, session, args.repeats)
        stop = mp.Event()
        busy = mp.Process(target=_busy, args=(stop,), daemon=True)
        busy.start()
        time.sleep(0.5)
        try:
            rows["one busy process"] = measure(pipe, session, args.repeats)
        finally:
            stop.set()
            busy.join(5)
    results = {}
    for label, r in rows.items():
        results[f"{label}: BodyPix x0.50 ORT, 512 px (s)"] = round(r["bodypix"], 3)
        results[f"{label}: default pipeline, 1 person (s)"] = round(r["single"], 3)
        results[f"{label}: default pipeline, 5 people (s)"] = round(r["five"], 3)
        results[f"{label}: ratio 1 person / BodyPix (target <= 5)"] = round(r["single"] / r["bodypix"], 1)
        results[f"{label}: ratio 5 people / BodyPix (target <= 13)"] = round(r["five"] / r["bodypix"], 1)
    busy, idle = rows["one busy process"], rows["idle"]
    results["busy / idle, 1 person (target <= 2)"] = round(busy["single"] / idle["single"], 2)
    results["busy / idle, 5 people (target <= 2)"] = round(busy["five"] / idle["five"], 2)
    for k, v in results.items():
        print(f"{k}: {v}")
    record("Speed of the shipped path as a ratio to raw BodyPix (CPU)",
           "python benchmarks/bench_speed_ratio.py " + " ".join(sys.argv[1:]),
           {"repeats": args.repeats, "threads": args.threads, "model input": pipe.image_size}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
