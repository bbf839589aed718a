"""Pack a training config for a GPU machine that has no ``../shared`` and no text encoder: a self-contained copy
of its training data, its starting model and a prompt table holding every training phrase, under ``.gpu/``.

    python scripts/pack_gpu_run.py --config configs/spectrum-lite2-ft.yaml [--long-side 416] [--viton 1000] \
        [--init-from runs/lite2-bodypix/model]
    # then, on the GPU machine, from the repository root:
    python scripts/train_gpu.py --config .gpu/train.yaml --time-budget 420 --export $OUT

What is packed (only the ``train`` split of each training source, so the packed copies are read with
``split: all``):
- ``ccp``: the photos, resized to ``--long-side`` (JPEG), with their label maps (the label engine's derived maps
  when the entry has ``options.body_parts``, else the ``.mat`` maps as PNGs of the same ids);
- ``lip`` (VITON-style): the first ``--viton`` photos and parsing maps, as they are;
- ``no-person``: the photos resized to ``--long-side`` with their ``images.csv`` rows;
- ``model.init_from``: the model, its weights in float16 (a starting point; training runs in float32/bf16) and
  a prompt table of every phrase training can draw (``vocab.phrases.training_phrases``), so no text encoder is
  loaded there.
Validation sources are dropped (evaluation runs here, on the full data). The packed config is ``.gpu/train.yaml``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spectrum_parsing.data import open_dataset  # noqa: E402
from spectrum_parsing.data.pose_labels import write_body_part_map  # noqa: E402
from spectrum_parsing.modeling import SpectrumModel, attach_prompt_table  # noqa: E402
from spectrum_parsing.text_encoders import load_text_encoder  # noqa: E402
from spectrum_parsing.training import ExperimentConfig  # noqa: E402
from spectrum_parsing.vocab.phrases import training_phrases  # noqa: E402


def _resized(image: np.ndarray, long_side: int, resample: int) -> Image.Image:
    im = Image.fromarray(image)
    scale = long_side / max(im.size)
    if scale >= 1:
        return im
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), resample)


def pack_ccp(entry: dict, out: Path, long_side: int) -> dict:
    path = entry["dataset"].split(":", 1)[1]
    options = dict(entry.get("options") or {})
    data = open_dataset(entry["dataset"], split=entry.get("split", "train"), **options)
    target = out / "ccp"
    (target / "photos").mkdir(parents=True, exist_ok=True)
    (target / "annotations").mkdir(exist_ok=True)
    shutil.copy(Path(path) / "label_list.mat", target / "label_list.mat")
    labels = out / "ccp-labels"
    for image_id in data.image_ids:
        sample = data.load(image_id)
        _resized(sample.image, long_side, Image.BICUBIC).save(target / "photos" / f"{image_id}.jpg", quality=85)
        small = np.asarray(_resized(sample.semantic.astype(np.uint8), long_side, Image.NEAREST))
        write_body_part_map(labels / f"{image_id}.png", small)
    if "body_parts" not in options:  # the .mat classes only: still read through the derived-map path
        raise SystemExit("pack_gpu_run: a CCP entry needs options.body_parts (the label engine's maps)")
    return {**entry, "dataset": f"ccp:{target}", "split": "all", "options": {"body_parts": str(labels)}}


def pack_lip(entry: dict, out: Path, count: int) -> dict:
    data = open_dataset(entry["dataset"], split=entry.get("split", "train"))
    target = out / "viton"
    (target / "image").mkdir(parents=True, exist_ok=True)
    (target / "image-parse").mkdir(parents=True, exist_ok=True)
    for image_id in data.image_ids[:count]:
        shutil.copy(data._images[image_id], target / "image" / Path(data._images[image_id]).name)
        shutil.copy(data._labels[image_id], target / "image-parse" / Path(data._labels[image_id]).name)
    return {**entry, "dataset": f"lip:{target}", "split": "all"}


def pack_no_person(spec: str, out: Path, long_side: int) -> str:
    data = open_dataset(spec, split="train")
    root = Path(spec.split(":", 1)[1])
    target = out / "unworn"
    (target / "images").mkdir(parents=True, exist_ok=True)
    keep = set(data.image_ids)
    for image_id in data.image_ids:
        _resized(data.load(image_id).image, long_side, Image.BICUBIC).save(target / "images" / f"{image_id}.jpg",
                                                                              quality=85)
    table = root / "images.csv"
    if table.is_file():
        with table.open(newline="", encoding="utf-8") as f, (target / "images.csv").open("w", newline="") as g:
            reader = csv.DictReader(f)
            writer = csv.DictWriter(g, fieldnames=reader.fieldnames)
            writer.writeheader()
            writer.writerows(row for row in reader if row.get("image") in keep)
    return f"no-person:{target}"


def pack_model(source: str, out: Path) -> Path:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    model = SpectrumModel.from_pretrained(source)
    target = model.save_pretrained(out / "init-model")
    weights = target / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    save_file({k: v.half() if v.dtype == torch.float32 else v for k, v in state.items()}, str(weights),
              metadata=metadata)
    encoder = load_text_encoder(model.config.text_encoder)
    phrases = [*training_phrases(), *getattr(model.text_encoder, "table", {})]
    attach_prompt_table(target, encoder, phrases)  # every training phrase, and its digest in config.json
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", default=str(ROOT / ".gpu"))
    parser.add_argument("--long-side", type=int, default=416)
    parser.add_argument("--background-side", type=int, default=320, help="long side of the person-free photos")
    parser.add_argument("--viton", type=int, default=1000, help="VITON-style photos to pack")
    parser.add_argument("--num-workers", type=int, default=12)
    parser.add_argument("--init-from", default=None,
                        help="the model to start from (default: model.init_from, or the final model of "
                             "model.init_from_experiment)")
    args = parser.parse_args()
    ExperimentConfig.from_yaml(args.config)  # validate first
    config = yaml.safe_load(Path(args.config).read_text())
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    data_dir = out / "data"
    rel = lambda p: str(Path(p).resolve().relative_to(ROOT))  # noqa: E731 (paths in the YAML: from the repo root)
    entries = []
    for entry in config["data"]["train"]:
        fmt = entry["dataset"].split(":", 1)[0]
        if fmt == "ccp":
            packed = pack_ccp(entry, data_dir, args.long_side)
            packed["options"]["body_parts"] = rel(packed["options"]["body_parts"])
        elif fmt == "lip":
            packed = pack_lip(entry, data_dir, args.viton)
        elif fmt == "no-person":
            packed = {**entry, "split": "all",
                      "dataset": pack_no_person(entry["dataset"], data_dir, args.background_side)}
        else:
            raise SystemExit(f"pack_gpu_run: no packer for format {fmt!r}")
        fmt_name, path = packed["dataset"].split(":", 1)
        packed["dataset"] = f"{fmt_name}:{rel(path)}"
        entries.append(packed)
        print(f"packed {entry['dataset']} -> {packed['dataset']}", flush=True)
    config["data"]["train"] = entries
    config["data"]["val"] = []
    augment = config["data"].get("augment", {})
    if augment.get("backgrounds"):
        fmt_name, path = augment["backgrounds"].split(":", 1)
        match = [e["dataset"] for e in entries if e["dataset"].startswith("no-person:")]
        augment["backgrounds"] = match[0] if match else augment["backgrounds"]
    config["data"]["num_workers"] = args.num_workers
    start = args.init_from or config["model"].get("init_from")
    if start is None and config["model"].get("init_from_experiment"):  # the earlier stage's final model
        earlier = ExperimentConfig.from_yaml(config["model"]["init_from_experiment"])
        start = str(Path(earlier.train.output_dir) / "model")
    if start is None or not Path(start).is_dir():
        raise SystemExit(f"pack_gpu_run: no starting model ({start}): train the earlier stage first, or --init-from")
    config["model"].pop("init_from_experiment", None)
    config["model"]["init_from"] = rel(pack_model(start, out))
    config["train"]["output_dir"] = "runs/gpu-" + Path(args.config).stem
    (out / "train.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    ExperimentConfig.from_yaml(out / "train.yaml")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB; config {out / 'train.yaml'}")


if __name__ == "__main__":
    main()
