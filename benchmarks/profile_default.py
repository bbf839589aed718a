"""Where the time of ``spectrum parse`` goes: the default pipeline (top-down) split into stages, for photos of 1, 5
and 12 people, plus torch.profiler's top operators.

Stages (each timed where the pipeline calls it, by wrapping that call; medians over ``--repeats`` whole parses):
decode (file to RGB), detector (MoveNet-MultiPose), peeling (its second look, at the photo with the people found
painted out, where it found two or more: ``persons.peeling``), person masks (BlazePose segmentation), preprocess (crop
resize), backbone (the model's feature backbones), decoder + grounding, semantic scores (the processor's
Mask2Former inference, per crop), crop post-processing (labels per crop, pooling, skin named and grown by pose,
hands, holes, ownership), assembly (parts and label map from the owned pixels), and writing (label-map PNG,
overlay PNG, JSON, as ``spectrum parse`` writes them). "other" is the parse's wall time minus its stages (prompt
embedding lookup, working-size checks, Python glue).

    python benchmarks/profile_default.py --size 512 --repeats 5 [--model spectrum-lite2]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench_persons import composite_12
from common import ROOT, record
from spectrum_parsing.images import as_rgb_image
from spectrum_parsing.pipeline import SpectrumPipeline
from spectrum_parsing.writers import PNG_COMPRESS_LEVEL


class StageTimer:
    """Wall time per stage, summed over the calls made while :attr:`active`."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)
        self.active = False

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.active:
                    self.times[name] += time.perf_counter() - start
        return timed

    def hook(self, name: str, module: torch.nn.Module) -> None:
        """Time ``module``'s forward with hooks (works for modules called by their parents)."""
        starts: list[float] = []
        module.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))

        def done(*_: Any) -> None:
            if self.active and starts:
                self.times[name] += time.perf_counter() - starts.pop()
        module.register_forward_hook(done)


class _Timed:
    """A callable object (detector, segmenter) whose calls are timed."""

    def __init__(self, inner: Any, timer: StageTimer, name: str) -> None:
        self.inner, self.call = inner, timer.wrap(name, inner.__call__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def instrument(pipe: SpectrumPipeline, timer: StageTimer) -> None:
    from spectrum_parsing import pipeline as pipeline_module
    from spectrum_parsing import topdown

    pipe.person_detector = _Timed(pipe.person_detector, timer, "detector")
    if pipe.person_segmenter is not None:
        segmenter = _Timed(pipe.person_segmenter, timer, "person masks")
        if hasattr(pipe.person_segmenter, "masks_and_keypoints"):  # what the pipeline calls when it fills keypoints
            segmenter.masks_and_keypoints = timer.wrap("person masks", pipe.person_segmenter.masks_and_keypoints)
        pipe.person_segmenter = segmenter
    processor = pipe.processor
    processor.preprocess = timer.wrap("preprocess", processor.preprocess)
    processor.semantic_scores = timer.wrap("semantic scores", processor.semantic_scores)
    timer.hook("backbone", pipe.model.backbone)
    timer.hook("decoder + grounding", pipe.model.decoder)
    topdown.assemble_persons = timer.wrap("assembly", topdown.assemble_persons)
    pipeline_module.hidden_people = timer.wrap("peeling", pipeline_module.hidden_people)
    pipeline_module.parse_top_down = timer.wrap(TOP_DOWN, pipeline_module.parse_top_down)


TOP_DOWN = "top-down parse"
"""Timed whole, then split: the stages timed inside it, and "crop post-processing" (the rest: labels per crop,
pooling, skin named and grown by pose, hands, holes, ownership)."""
NESTED = ("preprocess", "backbone", "decoder + grounding", "semantic scores", "assembly")


def write_outputs(result: Any, rgb: Image.Image) -> None:
    """What ``spectrum parse`` writes per image (to memory, at the writers' PNG level: the encoding is the cost)."""
    result.label_map_image().save(io.BytesIO(), format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    result.overlay(rgb).save(io.BytesIO(), format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    json.dumps(result.to_dict("photo.jpg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="long side of each photo")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None, help="default: the embedded default model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = SpectrumPipeline.from_pretrained(args.model)
    timer = StageTimer()
    instrument(pipe, timer)
    photos = {"1 person (selfie)": Image.open(ROOT / "examples" / "selfie.jpg"),
              "5 people (group)": Image.open(ROOT / "examples" / "group.jpg"),
              "12 people (composite)": Image.fromarray(composite_12())}
    tmp = Path(ROOT / "runs" / "profile")
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for label, photo in photos.items():
        photo = photo.convert("RGB")
        photo.thumbnail((args.size, args.size))
        path = tmp / f"{label.split()[0]}.jpg"
        photo.save(path, quality=92)
        per_run: list[dict[str, float]] = []
        persons = 0
        for run in range(args.repeats + 1):  # the first run warms up
            timer.times.clear()
            timer.active = run > 0
            start = time.perf_counter()
            t0 = time.perf_counter()
            rgb = as_rgb_image(str(path))
            decode = time.perf_counter() - t0
            result = pipe(rgb)
            parse = time.perf_counter() - t0 - decode
            t1 = time.perf_counter()
            write_outputs(result, rgb)
            write = time.perf_counter() - t1
            if run:
                stages = dict(timer.times)
                stages["assembly"] = stages.get("assembly", 0.0)
                whole = stages.pop(TOP_DOWN, 0.0)
                stages["crop post-processing"] = max(whole - sum(stages.get(n, 0.0) for n in NESTED), 0.0)
                stages["other"] = parse - sum(stages.values())
                per_run.append({"decode": decode, **stages, "writing": write,
                                "total": time.perf_counter() - start})
            persons = len(result.persons)
        names = list(per_run[0])
        median = {n: float(np.median([r.get(n, 0.0) for r in per_run])) for n in names}
        total = median["total"]
        results[f"{label}: persons found"] = persons
        for n in names:
            results[f"{label}: {n} (ms)"] = f"{1000 * median[n]:.0f}" + ("" if n == "total" else
                                                                          f" ({100 * median[n] / total:.0f}%)")
    timer.active = False
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        pipe(as_rgb_image(str(tmp / "5.jpg")))
    top = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    command = "python benchmarks/profile_default.py " + " ".join(sys.argv[1:])
    record("Shipped path (spectrum parse, top-down), time per stage (CPU)", command.strip(),
           {"size": args.size, "model": args.model or "default", "model input": pipe.image_size,
            "repeats": args.repeats, "threads": torch.get_num_threads()}, results)
    for k, v in results.items():
        print(f"{k}: {v}")
    print(top)


if __name__ == "__main__":
    main()
