"""Train an experiment config on a CUDA GPU, unchanged except for what a GPU affords (one prepared script).

    python scripts/train_gpu.py --config configs/spectrum-lite2-bodypix.yaml [--batch-size 32] [--entries 20000]

The config is read as is; the script only raises the batch size (scaling the learning rate linearly and the
step count down so the same number of samples is seen, unless --steps is given), turns on bf16 autocast, puts
the feature cache and the run under ``runs/gpu-*``, builds the feature cache on the GPU when the config uses
one, then trains. Everything else (data, augmentation, model, schedule shape) is the config's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=None, help="default: the config's samples / new batch size")
    parser.add_argument("--entries", type=int, default=20000, help="feature-cache views (configs with a cache)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this script is for a GPU (on a CPU, run `spectrum train --config ...`)",
              file=sys.stderr)
        return 2
    config = yaml.safe_load(Path(args.config).read_text())
    train = config.setdefault("train", {})
    old_batch = int(train.get("batch_size", 4))
    scale = args.batch_size / old_batch
    name = Path(args.config).stem
    train["batch_size"] = args.batch_size
    train["lr"] = float(train.get("lr", 1e-4)) * scale
    if "backbone_lr" in train:
        train["backbone_lr"] = float(train["backbone_lr"]) * scale
    train["max_steps"] = args.steps or max(1, round(int(train.get("max_steps", 1000)) / scale))
    train["warmup_steps"] = max(1, round(int(train.get("warmup_steps", 100)) / scale))
    train["checkpoint_every"] = max(1, round(int(train.get("checkpoint_every", 500)) / scale))
    train["mixed_precision"] = "bf16"
    train["device"] = "cuda"
    train["output_dir"] = f"runs/gpu-{name}"
    if train.get("feature_cache"):
        train["feature_cache"] = f"runs/gpu-{name}-cache"
    out = ROOT / "runs" / f"gpu-{name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    spectrum = [sys.executable, "-m", "spectrum_parsing.cli"]
    if train.get("feature_cache") and not (ROOT / train["feature_cache"] / "index.json").is_file():
        subprocess.run([*spectrum, "cache-features", "--config", str(out), "--entries", str(args.entries),
                        "--out", train["feature_cache"], "--device", "cuda"], check=True, cwd=ROOT)
    subprocess.run([*spectrum, "train", "--config", str(out), "--resume", "auto"], check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
