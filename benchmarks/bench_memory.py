"""Peak memory (RSS) of one `spectrum parse` run against the input's pixel count (CPU).

Each size runs in a fresh process: the whole CLI job (model load, decode, top-down parse at the working size,
masks scaled back, JSON with RLE, label map and overlay PNGs written). The photo is `examples/group.jpg`
(5 people) resized to the pixel count, saved as PNG. The slope between the two largest sizes is the memory each
extra megapixel costs; with the 100 MP input limit (`--max-pixels`) it gives the bound stated in the README.

    python benchmarks/bench_memory.py                     # this checkout
    python benchmarks/bench_memory.py --src /tmp/old/src --label "before"   # another checkout, same sizes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from spectrum_parsing.cli import main
t = time.perf_counter()
code = main(["parse", sys.argv[1], "--out", sys.argv[2], "--max-pixels", "200000000"])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def measure(image: Path, out: Path, src: str | None) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(image), str(out)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"child failed for {image}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[0.3, 4, 16, 36, 64, 100])
    parser.add_argument("--src", help="run another checkout's package (its src/ folder) instead of this one")
    parser.add_argument("--label", default="this commit")
    args = parser.parse_args()
    from PIL import Image

    photo = Image.open(ROOT / "examples" / "group.jpg").convert("RGB")
    results: dict[str, str] = {}
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.megapixels:
            scale = (mp * 1e6 / (photo.width * photo.height)) ** 0.5
            size = (round(photo.width * scale), round(photo.height * scale))
            path = Path(tmp) / f"group-{mp:g}mp.png"
            photo.resize(size, Image.Resampling.BILINEAR).save(path, compress_level=1)
            got = measure(path, Path(tmp) / f"out-{mp:g}", args.src)
            points.append((size[0] * size[1] / 1e6, got["peak_gb"]))
            results[f"{size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP)"] = (
                f"peak RSS {got['peak_gb']:.2f} GB, {got['seconds']:.1f} s")
            print(path.name, results[f"{size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP)"], flush=True)
    if len(points) >= 2:
        (p0, m0), (p1, m1) = points[-2], points[-1]
        slope = (m1 - m0) / (p1 - p0) * 1000
        results["cost per extra megapixel"] = f"{slope:.0f} MB (between the two largest sizes)"
        results["at the 100 MP input limit"] = f"{m1 + (100 - p1) * slope / 1000:.2f} GB"
    record(f"Peak memory vs input pixels, spectrum parse (CPU, {args.label})", "python benchmarks/bench_memory.py"
           + (" --src ... --label ..." if args.src else ""),
           {"megapixels": args.megapixels, "image": "group.jpg resized, PNG", "cores": os.cpu_count()}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
