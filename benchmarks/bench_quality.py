"""Model quality on the val splits and the real-world dev sets, side by side for several models (CPU).

For each model (the embedded default, or a model directory), with ``spectrum eval``'s code and protocols, through
the pipeline ``spectrum parse`` runs (top-down: MoveNet people, BlazePose masks, each person parsed in its crop;
``--mode whole-image``: the bare model on the whole image, for research comparisons):

* CCP val (81 photos): all 58 categories (fine) and CCP's coarse grouping; the withheld (unseen) categories,
  mIoU over the withheld garments with background excluded;
* VITON/LIP val (the first ``--viton-limit`` photos): body parts and all 19 categories;
* ``lip_dev`` (25 real-world LIP photos, human labels): body parts and all categories;
* ``cihp_dev`` (5 real multi-person photos): part AP^r of the persons, and mIoU;
* ``garments_unworn`` val split (every third photo by sorted id, the ones training never sees): share of
  photos where the top-down pipeline reports no person, and mean share of the image labelled, prompted with
  "saree", "heels" and the garment shown;
* absent prompts on ``lip_dev``: each photo prompted with its present categories plus garments its labels do
  not contain; mean share of the image the absent prompts label (top-down pipeline, what users get);
* time of ``pipe(photo)`` (top-down, default prompts) on a single-person photo resized to 512 px.

    python benchmarks/bench_quality.py --models spectrum-bodypix runs/lite2-bodypix/model [--mode whole-image]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, datasets_ready, median_time, record, side_by_side  # noqa: E402

SHARED = ROOT.parent / "shared"
ABSENT_CANDIDATES = ["saree", "heels", "skirt", "dress", "coat", "hat", "sunglasses", "scarf", "gloves", "jacket",
                     "tie", "bag"]


def semantic(pipe, spec: str, split: str, protocol: str, limit: int | None = None, mode: str = "pipeline") -> dict:
    """``spectrum eval``'s code: the pipeline `spectrum parse` runs (``mode="pipeline"``) or the bare model on the
    whole image (``"whole-image"``)."""
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.evaluation import EvalConfig, evaluate

    dataset = open_dataset(spec, split=split)
    config = EvalConfig(protocol=protocol, mode=mode, limit=limit, withheld=list(pipe.model.config.withheld))
    return evaluate(pipe, dataset, config)


def unseen_without_background(result: dict) -> float:
    values = [v for k, v in result["per_class"].items() if k not in ("null", "background") and v is not None]
    return round(float(np.mean(values)), 2) if values else float("nan")


def eval_unworn_val(pipe) -> dict:
    from spectrum_parsing.data import open_dataset

    dataset = open_dataset(f"no-person:{SHARED / 'datasets' / 'garments_unworn'}", split="val")
    empty, labelled = 0, []
    for i in range(len(dataset)):
        sample = dataset[i]
        prompts = ["saree", "heels", *(sample.tags or ["shirt"])]
        result = pipe(sample.image, prompts=list(dict.fromkeys(prompts)))
        empty += not result.persons
        labelled.append(float((result.label_map > 0).mean()))
    n = len(dataset)
    return {"photos (val split)": n, "no person reported (%)": round(100 * empty / n, 1),
            "mean labelled share (%)": round(100 * statistics.mean(labelled), 2)}


def eval_absent(pipe) -> dict:
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.data.targets import semantic_to_canonical

    dataset = open_dataset(f"lip:{SHARED / 'datasets' / 'lip_dev'}", split="all")
    shares, per_prompt = [], 0
    for i in range(len(dataset)):
        sample = dataset[i]
        _, present = semantic_to_canonical(sample)
        absent = [c for c in ABSENT_CANDIDATES if c not in present][:6]
        prompts = [c for c in present if c != "person"] + absent
        result = pipe(sample.image, prompts=prompts)
        ids = [k for k, name in result.id_to_label.items() if name in absent]
        shares.append(float(np.isin(result.label_map, ids).mean()) if ids else 0.0)
        per_prompt += len(absent)
    return {"photos": len(dataset), "absent prompts per photo": round(per_prompt / len(dataset), 1),
            "mean share labelled by absent prompts (%)": round(100 * statistics.mean(shares), 2)}


def time_single(pipe) -> float:
    from PIL import Image

    image = Image.open(ROOT / "examples" / "selfie.jpg").convert("RGB")
    scale = 512 / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    t, _ = median_time(lambda: pipe(image), repeats=5)
    return round(t, 3)


def run(name: str, args: argparse.Namespace) -> dict:
    import time

    from spectrum_parsing.pipeline import SpectrumPipeline

    t0 = time.perf_counter()
    # Embedded models load by name (SpectrumPipeline resolves them); "default" is the embedded default.
    pipe = SpectrumPipeline.from_pretrained(None if name == "default" else name)
    load = time.perf_counter() - t0
    model = pipe.model
    row: dict = {}
    mode = args.mode
    ccp = semantic(pipe, f"ccp:{SHARED / 'datasets' / 'ccp'}", "val", "all", mode=mode)
    row["CCP val fine mIoU"] = round(ccp["miou"], 2)
    row["CCP val coarse mIoU"] = round(ccp["coarse_miou"], 2)
    if model.config.withheld:
        unseen = semantic(pipe, f"ccp:{SHARED / 'datasets' / 'ccp'}", "val", "unseen", mode=mode)
        row["CCP val withheld mIoU (no background)"] = unseen_without_background(unseen)
    for protocol in ("body", "all"):
        r = semantic(pipe, f"lip:{SHARED / 'datasets' / 'viton'}", "val", protocol, args.viton_limit, mode=mode)
        row[f"VITON val {protocol} mIoU (first {args.viton_limit})"] = round(r["miou"], 2)
    for protocol in ("body", "all"):
        r = semantic(pipe, f"lip:{SHARED / 'datasets' / 'lip_dev'}", "all", protocol, mode=mode)
        row[f"lip_dev {protocol} mIoU"] = round(r["miou"], 2)
        if protocol == "body":
            row["lip_dev body per part"] = {k: v for k, v in r["per_class"].items() if k != "background"}
    from spectrum_parsing.data import open_dataset
    from spectrum_parsing.evaluation import EvalConfig, evaluate

    cihp = open_dataset(f"cihp:{SHARED / 'datasets' / 'cihp_dev'}", split="all")
    inst = evaluate(pipe, cihp, EvalConfig(protocol="instance", mode=mode))
    row["cihp_dev part AP^r / AP^r_50"] = f"{inst['apr']:.1f} / {inst['apr50']:.1f}"
    r = semantic(pipe, f"cihp:{SHARED / 'datasets' / 'cihp_dev'}", "all", "all", mode=mode)
    row["cihp_dev all mIoU"] = round(r["miou"], 2)
    row.update({f"unworn: {k}": v for k, v in eval_unworn_val(pipe).items()})
    row.update({f"absent prompts on lip_dev: {k}": v for k, v in eval_absent(pipe).items()})
    row["load (s)"] = round(load, 2)
    row["single person 512 px (s)"] = time_single(pipe)
    print(name, row, flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--viton-limit", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=["pipeline", "whole-image"], default="pipeline",
                        help="pipeline (default): what `spectrum parse` runs; whole-image: the bare model")
    args = parser.parse_args()
    if not datasets_ready(args.threads):
        return 2
    results = {name: run(name, args) for name in args.models}
    record("Model quality: val splits and real-world dev sets (CPU)",
           f"python benchmarks/bench_quality.py --mode {args.mode} --models " + " ".join(args.models),
           {"models": " ".join(args.models), "viton_limit": args.viton_limit, "threads": args.threads,
            "mode": args.mode},
           side_by_side(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
