"""Start-up time of the default pipeline in a fresh process: Python start, imports and
``SpectrumPipeline.from_pretrained()`` (parser, MoveNet, BlazePose; the text encoder only if needed).

    python benchmarks/bench_startup.py                                        # this checkout
    python benchmarks/bench_startup.py --src /tmp/old/src --label "before"    # another checkout's package

Each run is a new ``python -c`` process; the median of ``--repeats`` is reported with the split the process
prints (imports, load) and whether ``transformers`` was imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

CODE = """
import sys, time
t = time.perf_counter()
from spectrum_parsing import SpectrumPipeline
t1 = time.perf_counter()
SpectrumPipeline.from_pretrained()
t2 = time.perf_counter()
print(f"{t1 - t:.3f} {t2 - t1:.3f} {'transformers' in sys.modules}")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--src", help="run another checkout's package (its src/ folder) instead of this one")
    parser.add_argument("--label", default="this commit")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    walls, imports, loads, flags = [], [], [], set()
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - start)
        i, load, flag = out.stdout.split()[-3:]
        imports.append(float(i))
        loads.append(float(load))
        flags.add(flag)
    results = {"fresh process, start to loaded pipeline (s)": round(statistics.median(walls), 2),
               "of which package imports (s)": round(statistics.median(imports), 2),
               "of which from_pretrained (s)": round(statistics.median(loads), 2),
               "transformers imported": " / ".join(sorted(flags)),
               "runs (s)": [round(w, 2) for w in walls]}
    for key, value in results.items():
        print(f"{key}: {value}")
    record(f"Start-up of the default pipeline, fresh process (CPU, {args.label})",
           "python benchmarks/bench_startup.py" + (" --src ... --label ..." if args.src else ""),
           {"repeats": args.repeats}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
