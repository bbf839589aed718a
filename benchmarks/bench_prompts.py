"""Prompt-embedding cache: the cost of a prompt the text encoder has not seen vs a cached one.

Times ``SpectrumModel.encode_prompts`` (the frozen text encoder behind every parse call) for --count prompts
never seen before (fresh phrases each run) and for the same prompts again (served from the cache), and the
whole default-model call with all-new prompts vs cached prompts.

    python benchmarks/bench_prompts.py --count 25 --repeats 5
"""

from __future__ import annotations

import argparse
import sys

import torch
from PIL import Image

from common import ROOT, median_time, record
from spectrum_parsing.pipeline import SpectrumPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    pipe = SpectrumPipeline.from_pretrained()
    model = pipe.model
    counter = {"n": 0}

    def fresh(count: int) -> list[str]:
        counter["n"] += 1
        return [f"garment number {counter['n']} variant {i}" for i in range(count)]

    with torch.inference_mode():
        model.encode_prompts(["warm up"])
        new_s, _ = median_time(lambda: model.encode_prompts(fresh(args.count)), args.repeats, warmup=1)
        cached_prompts = fresh(args.count)
        model.encode_prompts(cached_prompts)
        cached_s, _ = median_time(lambda: model.encode_prompts(cached_prompts), args.repeats, warmup=1)
        image = Image.open(ROOT / "examples" / "group.jpg").convert("RGB")
        image.thumbnail((args.size, args.size))
        call_new, _ = median_time(lambda: pipe(image, prompts=fresh(args.count), ebp=False), args.repeats)
        call_cached, _ = median_time(lambda: pipe(image, prompts=cached_prompts, ebp=False), args.repeats)
    results = {
        f"{args.count} new prompts (ms)": round(1000 * new_s, 2),
        "per new prompt (ms)": round(1000 * new_s / args.count, 2),
        f"{args.count} cached prompts (ms)": round(1000 * cached_s, 3),
        "parse call, all prompts new (s)": round(call_new, 3),
        "parse call, all prompts cached (s)": round(call_cached, 3),
    }
    command = "python benchmarks/bench_prompts.py " + " ".join(sys.argv[1:])
    record("Prompt-embedding cache (MiniLM, CPU)", command.strip(),
           {"count": args.count, "repeats": args.repeats, "size": args.size, "threads": torch.get_num_threads()},
           results)
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
