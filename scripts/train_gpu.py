"""Train an experiment config on a CUDA GPU within a fixed time budget (one prepared script for a lent GPU).

    python scripts/train_gpu.py --config .gpu/train.yaml --time-budget 420 --export $OUT
    python scripts/train_gpu.py --config .gpu/train.yaml --device cpu --time-budget 60 --calibrate 2   # smoke check

1. Calibration: ``--calibrate`` steps of the config's own training (same data, model, batch), timed; the first
   logged window (worker start-up, CUDA warm-up) is left out.
2. The run: as many steps as fit in what is left of ``--time-budget`` (less a margin for saving), with the
   config's schedule stretched over exactly those steps (warm-up at most a tenth of them), so the learning
   rate decays fully inside the budget. ``--steps`` fixes the count instead.
3. ``--export DIR``: the final model's ``config.json`` and its weights split into safetensors shards of at
   most ``--shard-mb`` (``model-0000N.safetensors``, join with ``python scripts/join_shards.py``), the metrics
   CSV and ``run.json`` (steps, seconds per step, samples seen, device, peak memory, timings).

The config is used as is (``scripts/pack_gpu_run.py`` writes one whose data and model travel with the
repository); only ``train.max_steps``, ``warmup_steps``, ``output_dir`` and ``device`` are set here.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _seconds_per_step(metrics: Path) -> float:
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"calibration logged nothing in {metrics}")
    later = rows[1:] or rows
    return sum(float(r["seconds_per_step"]) for r in later) / len(later)


def export_model(model_dir: Path, out: Path, shard_mb: float) -> list[str]:
    """Copy ``config.json`` and split ``model.safetensors`` into shards of at most ``shard_mb`` MiB."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text((model_dir / "config.json").read_text())
    limit = shard_mb * 2**20
    shards: list[dict] = [{}]
    size = 0
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
        for key in sorted(f.keys()):  # noqa: SIM118 (safe_open is not iterable)
            tensor = f.get_tensor(key)
            nbytes = tensor.numel() * tensor.element_size()
            if shards[-1] and size + nbytes > limit:
                shards.append({})
                size = 0
            shards[-1][key] = tensor
            size += nbytes
    names = []
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}.safetensors"
        save_file(shard, str(out / name), metadata=metadata)
        names.append(name)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--time-budget", type=float, default=420.0, help="seconds for calibration + run")
    parser.add_argument("--calibrate", type=int, default=30, help="steps timed before the run")
    parser.add_argument("--steps", type=int, default=None, help="fixed step count (no calibration)")
    parser.add_argument("--save-margin", type=float, default=25.0, help="seconds kept for saving and export")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--export", default=None, help="folder for the model shards, metrics and run.json")
    parser.add_argument("--shard-mb", type=float, default=15.0)
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    from spectrum_parsing.training import ExperimentConfig, train

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this script is for a GPU (on a CPU: --device cpu, or `spectrum train`)",
              file=sys.stderr)
        return 2
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    config = ExperimentConfig.from_yaml(args.config)
    base = config.train
    run_dir = Path(base.output_dir)
    info: dict = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                  "torch": torch.__version__, "config": args.config, "batch_size": base.batch_size}

    def with_train(**changes: object) -> ExperimentConfig:
        return dataclasses.replace(config, train=dataclasses.replace(base, device=args.device, **changes))

    steps = args.steps
    if steps is None:
        calib = run_dir.parent / (run_dir.name + "-calibration")
        t0 = time.perf_counter()
        train(with_train(max_steps=args.calibrate, warmup_steps=1, output_dir=str(calib),
                         log_every=max(1, args.calibrate // 3), checkpoint_every=10**6), progress=False)
        sps = _seconds_per_step(calib / "metrics.csv")
        left = args.time_budget - (time.perf_counter() - start) - args.save_margin
        # the run's own start-up (model load, workers) cost about what calibration's did beyond its steps
        startup = max(0.0, (time.perf_counter() - t0) - args.calibrate * sps)
        steps = max(1, int((left - startup) / sps))
        info.update(calibration_seconds_per_step=round(sps, 4), calibration_startup_s=round(startup, 1))
        print(f"calibration: {sps:.3f} s/step, start-up {startup:.1f} s -> {steps} steps", flush=True)
    warmup = max(1, min(base.warmup_steps, steps // 10))
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    final = train(with_train(max_steps=steps, warmup_steps=warmup), progress=False)
    info.update(steps=steps, warmup_steps=warmup, samples=steps * base.batch_size * base.grad_accum,
                run_seconds=round(time.perf_counter() - t0, 1), total_seconds=round(time.perf_counter() - start, 1))
    if args.device == "cuda":
        info["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(json.dumps(info), flush=True)
    if args.export:
        out = Path(args.export)
        info["shards"] = export_model(final, out, args.shard_mb)
        metrics = run_dir / "metrics.csv"
        if metrics.is_file():
            (out / "metrics.csv").write_text(metrics.read_text())
        (out / "run.json").write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
