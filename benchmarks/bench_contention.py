"""Latency of the default pipeline on an idle CPU and with one competing busy process (CPU).

Users' machines are never idle (a server, a Ray actor, a laptop). Each configuration runs in a fresh process
(OpenMP reads its wait policy once): torch threads 1 / 2 / all cores, OpenMP wait policy ACTIVE (spin, the
default of the libgomp PyTorch ships) or PASSIVE (sleep), and the library's own default (no env, no thread
setting: what `spectrum parse` does). The busy process is one Python loop doing single-threaded float work,
like a neighbour job. Median of ``--repeats`` calls of ``pipe(photo)`` (top-down, default prompts) on a
512-px single-person photo, after warm-up.

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


def measure(threads: int, policy: str | None, repeats: int) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("OMP_NUM_THREADS", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(repeats),
                          str(ROOT / "examples" / "selfie.jpg")], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configs = [("library default", 0, None), ("1 thread", 1, None), ("2 threads, OMP ACTIVE", 2, "ACTIVE"),
               ("2 threads, OMP PASSIVE", 2, "PASSIVE"), ("1 thread, OMP PASSIVE", 1, "PASSIVE")]
    results: dict[str, str] = {}
    for name, threads, policy in configs:
        idle = measure(threads, policy, args.repeats)["median"]
        stop = mp.Event()
        worker = mp.Process(target=busy, args=(stop,), daemon=True)
        worker.start()
        time.sleep(0.5)
        try:
            loaded = measure(threads, policy, args.repeats)["median"]
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
