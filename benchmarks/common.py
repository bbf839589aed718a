"""Shared helpers of the benchmarks: machine description, timing, result history, BENCHMARKS.md rendering."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "benchmarks" / "history.jsonl"
REPORT = ROOT / "BENCHMARKS.md"
# The vocabulary the full-model benchmarks score (24 prompts: body parts and common garments).
PROMPTS = ["person", "hair", "face", "left arm", "right arm", "left hand", "right hand", "left leg", "right leg",
           "left shoe", "right shoe", "t-shirt", "shirt", "jacket", "coat", "dress", "skirt", "pants", "jeans",
           "shorts", "hat", "glasses", "bag", "scarf"]


def datasets_ready(threads: int) -> bool:
    """Set torch's thread count for a quality benchmark; False (with a message) when the shared datasets it
    measures on are missing."""
    torch.set_num_threads(threads)
    if not (ROOT.parent / "shared" / "datasets").is_dir():
        print(f"needs the shared datasets at {ROOT.parent / 'shared'}", file=sys.stderr)
        return False
    return True


def machine() -> str:
    """One line naming the CPU (and GPU if used), core count and torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name(0)}"
    return desc


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1, sync: bool = False) -> tuple[float, list]:
    """Median wall time in seconds of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def row_value(text: str) -> object:
    """A benchmark row option's value (``option=value``): an int, a float, true / false / none, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def side_by_side(results: dict[str, dict]) -> dict[str, str]:
    """{name: {measure: value or {sub: value}}} -> {measure: "name: value · name: value"}: one table row per
    measure, the models (or modes, or rows) side by side in the order given."""
    rows: dict[str, list[str]] = {}
    for name, row in results.items():
        for key, value in row.items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:
                rows.setdefault(key if sub is None else f"{key}: {sub}", []).append(f"{name}: {v}")
    return {k: " · ".join(v) for k, v in rows.items()}


def record(benchmark: str, command: str, params: dict, results: dict) -> dict:
    """Append one result to the history file and re-render BENCHMARKS.md."""
    entry = {"benchmark": benchmark, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "commit": git_commit(), "machine": machine(), "command": command, "params": params,
             "results": results}
    with HISTORY.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    render()
    return entry


RETIRED = {
    "Default model, time per stage (CPU)": "the bottom-up path's stages; replaced by 'Shipped path (spectrum parse, "
                                           "top-down), time per stage (CPU)'",
}
"""Benchmarks whose latest result no longer describes the library (kept in the history, not shown as current)."""


def render() -> None:
    """Write BENCHMARKS.md: the latest result of each benchmark/parameter set (but :data:`RETIRED` ones), then the
    full history."""
    text = HISTORY.read_text() if HISTORY.exists() else ""
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    latest: dict[str, dict] = {}
    for e in entries:
        if e["benchmark"] not in RETIRED:
            latest[e["benchmark"] + json.dumps(e["params"], sort_keys=True) + e["machine"]] = e
    lines = ["# Benchmarks", "",
             "Every figure here was produced by a script in `benchmarks/`; the command is given with each result.",
             "Times are medians over the stated number of runs, after warm-up. The machine line names the hardware.",
             "Regenerate this file from `benchmarks/history.jsonl` with `python benchmarks/common.py`.", "",
             "GPU figures (latency, throughput and peak memory of the full model in fp32/fp16/bf16, eager, "
             "channels_last and torch.compile, batch 1 and 8) come from `python benchmarks/bench_gpu.py` on a CUDA "
             "machine; a section appears below once it has been run. No GPU was available where the results below "
             "were taken.", ""]
    for e in sorted(latest.values(), key=lambda e: (e["benchmark"], e["date"])):
        lines += [f"## {e['benchmark']}", "", f"- command: `{e['command']}`", f"- machine: {e['machine']}",
                  f"- date: {e['date']}, commit {e['commit']}",
                  f"- parameters: {', '.join(f'{k}={v}' for k, v in e['params'].items())}",
                  *([f"- note: {e['note']}"] if e.get("note") else []), "",
                  "| measure | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in e["results"].items()]
        lines.append("")
    lines += ["## History", "", "| date | commit | benchmark | parameters | key results |",
              "| --- | --- | --- | --- | --- |"]
    for e in entries:
        key = ", ".join(f"{k}={v}" for k, v in list(e["results"].items())[:4])
        params = ", ".join(f"{k}={v}" for k, v in e["params"].items())
        lines.append(f"| {e['date']} | {e['commit']} | {e['benchmark']} | {params} | {key} |")
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    render()
