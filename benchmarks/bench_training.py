"""Training step time with and without the feature cache (frozen full-size I2Tx backbone, random weights).

Both paths run the same decoder forward + loss + backward + AdamW step on the same augmented views; the
uncached path also runs the frozen backbone on every step, the cached path reads its features from disk.

    python benchmarks/bench_training.py --size 256 --steps 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import record
from spectrum_parsing.backbones.diffusion import build_full_size_backbone
from spectrum_parsing.configs import DecoderConfig, TextEncoderConfig
from spectrum_parsing.data import open_dataset
from spectrum_parsing.data.targets import TargetConfig
from spectrum_parsing.feature_cache import FeatureCacheDataset, build_feature_cache
from spectrum_parsing.losses import LossConfig, SpectrumCriterion
from spectrum_parsing.modeling import SpectrumConfig, SpectrumModel
from spectrum_parsing.text_encoders import load_text_encoder
from spectrum_parsing.training import AugmentConfig, BatchCollator, MixtureDataset, training_step


def synthetic_lip(root: Path, n: int, size: int) -> Path:
    """Single-person scenes in the LIP ``image/`` + ``image-parse/`` layout."""
    (root / "image").mkdir(parents=True)
    (root / "image-parse").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        sem = np.zeros((size, size * 3 // 4), dtype=np.uint8)
        x = int(rng.integers(0, size // 4))
        sem[size // 10:size // 4, x + size // 10:x + size // 4] = 13
        sem[size // 4:size * 6 // 10, x:x + size // 3] = 5
        sem[size * 6 // 10:size * 9 // 10, x:x + size // 3] = 9
        image = (rng.random((*sem.shape, 3)) * 60 + sem[..., None] * 10).astype(np.uint8)
        Image.fromarray(image).save(root / "image" / f"{i:06d}_0.jpg")
        Image.fromarray(sem, mode="L").save(root / "image-parse" / f"{i:06d}_0.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    backbone = build_full_size_backbone("i2tx")
    text_encoder = load_text_encoder(TextEncoderConfig())
    decoder = DecoderConfig(in_channels=backbone.feature_channels(), text_dim=text_encoder.dim)
    model = SpectrumModel(SpectrumConfig(backbone=backbone.config, decoder=decoder), backbone,
                          text_encoder)
    criterion = SpectrumCriterion(LossConfig())
    optimizer = torch.optim.AdamW(model.decoder.parameters(), lr=1e-4)
    targets = TargetConfig(num_negative_phrases=4)
    with tempfile.TemporaryDirectory() as tmp:
        data = open_dataset(f"lip:{synthetic_lip(Path(tmp) / 'lip', 8, args.size)}", split="all")
        n = (args.steps + 1) * args.batch_size
        mixture = MixtureDataset([data], [1.0], n, args.size, AugmentConfig(copy_paste=0.5), targets, seed=0)
        start = time.perf_counter()
        cache_dir = build_feature_cache(model, mixture, n, Path(tmp) / "cache", progress=False)
        cache_build_s = time.perf_counter() - start
        cache = FeatureCacheDataset(cache_dir, model.backbone.config, targets)
        collator = BatchCollator(targets, 0)

        def run(fetch) -> list[float]:
            times = []
            for step in range(args.steps + 1):  # the first step is warm-up
                t0 = time.perf_counter()
                batch = fetch(step)
                losses = training_step(model, model, criterion, batch, torch.device("cpu"))
                optimizer.zero_grad()
                losses["loss"].backward()
                optimizer.step()
                times.append(time.perf_counter() - t0)
            return times[1:]

        ids = lambda step: range(step * args.batch_size, (step + 1) * args.batch_size)  # noqa: E731
        plain = run(lambda step: collator([mixture[i] for i in ids(step)]))
        cached = run(lambda step: cache.collate([cache[i] for i in ids(step)]))
        cache_mb = sum(p.stat().st_size for p in cache_dir.glob("*")) / n / 1e6
    plain_s, cached_s = statistics.median(plain), statistics.median(cached)
    results = {"step without cache (s)": round(plain_s, 3), "step with cache (s)": round(cached_s, 3),
               "speed-up": f"{plain_s / cached_s:.1f}x", "cache build (s per view)": round(cache_build_s / n, 3),
               "cache size (MB per view, float16)": round(cache_mb, 1)}
    command = "python benchmarks/bench_training.py " + " ".join(sys.argv[1:])
    record("Training step, feature cache (cpu)", command.strip(),
           {"backbone": "i2tx full-size random", "size": args.size, "batch_size": args.batch_size,
            "steps": args.steps}, results)
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
