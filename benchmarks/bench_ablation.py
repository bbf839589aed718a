"""Ablation of the embedded model's backbone: every row trained with the same recipe, budget and cached views.

Rows (``configs/ablation/*.yaml``): BodyPix alone, EfficientNet-Lite0 alone, Lite2 alone, Lite2 + BodyPix (the
shipped ``spectrum-lite2`` recipe), Lite2 + BodyPix + MoveNet-MultiPose features, and Lite2 + BodyPix at 384 px.
Everything but the backbone (and, for the last row, the input size) is the recipe of
``configs/spectrum-lite2-bodypix.yaml``: data, augmentation, negatives, decoder, warm start from the
``spectrum-bodypix`` decoder, learning rate and schedule, and a short equal budget (``max_steps`` in the configs).

The 320-px rows share one feature cache built with the fusion of all their members (``configs/ablation/
cache-320.yaml``), sliced per row, so they train on exactly the same augmented views; the MoveNet and 384-px
rows have their own caches of the same views (same seed and indices). Each stage is skipped when its output
exists, so the script resumes::

    python benchmarks/bench_ablation.py                 # caches, training, evaluation, BENCHMARKS.md
    python benchmarks/bench_ablation.py --rows lite0 lite2 --eval-only
    python benchmarks/bench_ablation.py --rows shipped-lite2 shipped-bodypix   # the shipped models, same protocol

Evaluation (same protocols as ``bench_quality.py``): CCP val fine / coarse / withheld, ``lip_dev`` body and all
categories, VITON val body parts (first ``--viton-limit``), the unworn-garment val split (no person reported),
absent prompts on ``lip_dev``, and the time of one single-person 512-px photo.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import (  # noqa: E402
    SHARED,
    eval_absent,
    eval_unworn_val,
    semantic,
    time_single,
    unseen_without_background,
)
from common import ROOT, datasets_ready, record, side_by_side  # noqa: E402

ENTRIES = 1000
# row name -> (config, cache config, cache directory)
ROWS = {
    "bodypix": ("bodypix", "cache-320", "cache-320"),
    "lite0": ("lite0", "cache-320", "cache-320"),
    "lite2": ("lite2", "cache-320", "cache-320"),
    "lite2-bodypix": ("lite2-bodypix", "cache-320", "cache-320"),
    "lite2-bodypix-movenet": ("lite2-bodypix-movenet", "lite2-bodypix-movenet", "cache-movenet-320"),
    "lite2-bodypix-384": ("lite2-bodypix-384", "lite2-bodypix-384", "cache-384"),
}
# Shipped models, evaluated the same way for reference (trained longer: see their model cards).
SHIPPED = {"shipped-lite2": "spectrum-lite2", "shipped-bodypix": "spectrum-bodypix"}
LABELS = {
    "shipped-lite2": "spectrum-lite2 (shipped: Lite2 + BodyPix, 800 steps)",
    "shipped-bodypix": "spectrum-bodypix (shipped, today's BodyPix model)",
    "bodypix": "BodyPix alone",
    "lite0": "Lite0 alone",
    "lite2": "Lite2 alone",
    "lite2-bodypix": "Lite2 + BodyPix",
    "lite2-bodypix-movenet": "Lite2 + BodyPix + MoveNet",
    "lite2-bodypix-384": "Lite2 + BodyPix, 384 px",
}


def spectrum(*args: str) -> None:
    """Run the ``spectrum`` CLI of this checkout's environment, failing loudly."""
    exe = Path(sys.executable).parent / "spectrum"
    print("+ spectrum", " ".join(args), flush=True)
    subprocess.run([str(exe), *args], cwd=ROOT, check=True)


def prepare(name: str) -> tuple[Path, float | None]:
    """Build the row's cache and train it unless done; returns (model directory, training minutes or None)."""
    config, cache_config, cache = ROWS[name]
    cache_dir = ROOT / "runs" / "ablation" / cache
    if not (cache_dir / "index.json").is_file():
        spectrum("cache-features", "--config", f"configs/ablation/{cache_config}.yaml", "--entries", str(ENTRIES),
                 "--out", str(cache_dir))
    model_dir = ROOT / "runs" / "ablation" / name / "model"
    minutes = None
    if not (model_dir / "model.safetensors").is_file():
        t0 = time.perf_counter()
        spectrum("train", "--config", f"configs/ablation/{config}.yaml")
        minutes = (time.perf_counter() - t0) / 60
        (model_dir.parent / "train_minutes.txt").write_text(f"{minutes:.1f}\n")
    elif (model_dir.parent / "train_minutes.txt").is_file():
        minutes = float((model_dir.parent / "train_minutes.txt").read_text())
    return model_dir, minutes


def evaluate_row(model_dir: Path, viton_limit: int) -> dict:
    """The row's figures (see the module docstring)."""
    from spectrum_parsing.pipeline import SpectrumPipeline

    pipe = SpectrumPipeline.from_pretrained(str(model_dir))
    model = pipe.model
    row: dict = {}
    ccp_dir = f"ccp:{SHARED / 'datasets' / 'ccp'}"
    ccp = semantic(model, ccp_dir, "val", "all")
    row["CCP val coarse / fine"] = f"{ccp['coarse_miou']:.1f} / {ccp['miou']:.1f}"
    row["CCP val withheld (no background)"] = unseen_without_background(semantic(model, ccp_dir, "val", "unseen"))
    lip = {p: semantic(model, f"lip:{SHARED / 'datasets' / 'lip_dev'}", "all", p)["miou"] for p in ("body", "all")}
    row["lip_dev body / all"] = f"{lip['body']:.1f} / {lip['all']:.1f}"
    viton = semantic(model, f"lip:{SHARED / 'datasets' / 'viton'}", "val", "body", viton_limit)
    row[f"VITON val body (first {viton_limit})"] = round(viton["miou"], 1)
    unworn = eval_unworn_val(pipe)
    row["unworn: no person (%) / labelled (%)"] = (f"{unworn['no person reported (%)']} / "
                                                   f"{unworn['mean labelled share (%)']}")
    row["absent prompts on lip_dev: share labelled (%)"] = eval_absent(pipe)[
        "mean share labelled by absent prompts (%)"]
    row["single person 512 px (s)"] = time_single(pipe)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=[*ROWS, *SHIPPED])
    parser.add_argument("--eval-only", action="store_true", help="evaluate the rows already trained, train none")
    parser.add_argument("--viton-limit", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not datasets_ready(args.threads):
        return 2
    results: dict[str, dict] = {}
    for name in args.rows:
        model_dir = ROOT / "runs" / "ablation" / name / "model"
        minutes = None
        if name in SHIPPED:
            from spectrum_parsing.embedded import embedded_model_dir

            model_dir = embedded_model_dir(SHIPPED[name])
        elif args.eval_only:
            if not (model_dir / "model.safetensors").is_file():
                print(f"{name}: not trained, skipped", flush=True)
                continue
            stamp = model_dir.parent / "train_minutes.txt"
            minutes = float(stamp.read_text()) if stamp.is_file() else None
        else:
            model_dir, minutes = prepare(name)
        row = evaluate_row(model_dir, args.viton_limit)
        if name not in SHIPPED:
            row["training time (min, 2 cores)"] = "?" if minutes is None else round(minutes, 1)
        print(name, row, flush=True)
        results[LABELS[name]] = row
    if not results:
        return 1
    record("Backbone ablation, equal short budget (CPU)",
           "python benchmarks/bench_ablation.py --rows " + " ".join(args.rows),
           {"rows": " ".join(args.rows), "viton_limit": args.viton_limit, "threads": args.threads,
            "cached views": ENTRIES},
           side_by_side(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
