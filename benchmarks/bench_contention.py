"""Latency of the default pipeline on an idle CPU and with one competing busy process (CPU).

Users' machines are never idle (a server, a Ray actor, a laptop). Each configuration runs in a fresh process
(OpenMP reads its wait policy once): torch threads 1 or all cores, libgomp's spinning off (the library's
default: ``spectrum_parsing.SPIN_ENV``), at libgomp's own default (300000 spins), or OMP_WAIT_POLICY=PASSIVE.
The busy process is one Python loop doing single-threaded float work, like a neighbour job. Median of
``--repeats`` calls of ``pipe(photo)`` (top-down, default prompts) on a 512-px single-person photo, after
warm-up.

    python benchmarks/bench_contention.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

CHILD = r"""
import json, os, statistics, sys, time
threads = int(sys.argv[1]); repeats = int(sys.argv[2])
import spectrum_parsing  # first, as `spectrum` does: it turns libgomp's spinning off unless the env says otherwise
import torch
if threads > 0:
    torch.set_num_threads(threads)
from PIL import Image
from spectrum_parsing import SpectrumPipeline
pipe = SpectrumPipeline.from_pretrained()
image = Image.open(sys.argv[3]).convert("RGB")
scale = 512 / max(image.size)
image = image.resize((round(image.width * scale), round(image.height * scale)))
pipe(image); pipe(image)
times = []
for _ in range(repeats):
    t = time.perf_counter(); pipe(image); times.append(time.perf_counter() - t)
print(json.dumps({"median": statistics.median(times), "threads": torch.get_num_threads()}))
"""


def busy(stop: mp.Event) -> None:
    x = 1.0001
    while not stop.is_set():
        for _ in range(100_000):
            x = x * 1.0000001 % 7.0


LIBGOMP_SPIN = {"GOMP_SPINCOUNT": "300000"}
"""libgomp's own default spin count (the library turns it off; this puts it back)."""


def measure(threads: int, extra: dict[str, str], repeats: int) -> dict:
    env = dict(os.environ)
    for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT"):
        env.pop(name, None)
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(repeats),
                          str(ROOT / "examples" / "selfie.jpg")], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configs = [("library default (all cores, no spinning)", 0, {}), ("1 thread, no spinning", 1, {}),
               ("all cores, libgomp's default spinning", 0, LIBGOMP_SPIN),
               ("1 thread, libgomp's default spinning", 1, LIBGOMP_SPIN),
               ("all cores, OMP PASSIVE", 0, {"OMP_WAIT_POLICY": "PASSIVE"})]
    results: dict[str, str] = {}
    for name, threads, extra in configs:
        idle = measure(threads, extra, args.repeats)["median"]
        stop = mp.Event()
        worker = mp.Process(target=busy, args=(stop,), daemon=True)
        worker.start()
        time.sleep(0.5)
        try:
            loaded = measure(threads, extra, args.repeats)["median"]
        finally:
            stop.set()
            worker.join(5)
        results[name] = f"idle {idle:.3f} s · one busy process {loaded:.3f} s ({loaded / idle:.1f}x)"
        print(name, results[name], flush=True)
    record("CPU contention: pipeline latency idle vs one busy process (CPU)", "python benchmarks/bench_contention.py",
           {"repeats": args.repeats, "image": "selfie.jpg at 512 px", "cores": os.cpu_count()}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
