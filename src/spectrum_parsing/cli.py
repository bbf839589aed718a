"""The ``spectrum`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .configs import ConfigError
from .hub import ModelLoadError
from .images import ImageLoadError

EXPECTED_ERRORS = (ConfigError, ModelLoadError, ImageLoadError, FileNotFoundError, ValueError)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    return name


def cmd_features(args: argparse.Namespace) -> int:
    """Extract multi-scale backbone features of one or more images into safetensors files."""
    import dataclasses

    import torch
    from safetensors.torch import save_file
    from tqdm import tqdm

    from .backbones import load_backbone
    from .configs import load_backbone_config
    from .images import load_image, to_tensor

    config = load_backbone_config(args.backbone)
    if args.dtype:
        config = dataclasses.replace(config, dtype=args.dtype)
    out = Path(args.out)
    if len(args.images) > 1 and out.suffix == ".safetensors":
        raise ValueError("several images were given: --out must be a directory")
    device = _device(args.device)
    start = time.perf_counter()
    backbone = load_backbone(config).to(device)
    print(f"loaded {config.type} backbone in {time.perf_counter() - start:.1f}s on {device}", file=sys.stderr)
    save_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.save_dtype]
    single_file = len(args.images) == 1 and out.suffix == ".safetensors"
    for path in tqdm(args.images, desc="features", unit="img", disable=len(args.images) < 2):
        image = to_tensor(load_image(path))[None].to(device)
        feats = backbone(image)
        target = out if single_file else out / f"{Path(path).stem}.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"stride{s}": f.to(save_dtype).contiguous().cpu() for s, f in feats.items()}
        meta = {"image": str(path), "image_size": json.dumps(list(image.shape[-2:])),
                "backbone": json.dumps(config.to_dict())}
        save_file(tensors, str(target), metadata=meta)
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
        print(f"{target}: {shapes}")
    return 0


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files as given; directories searched recursively for images; glob patterns expanded. Order kept."""
    import glob

    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif any(ch in item for ch in "*?["):
            found += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def cmd_parse(args: argparse.Namespace) -> int:
    """Parse images into per-person parts: label-map PNG, overlay PNG, JSON per image."""
    from tqdm.auto import tqdm

    from .pipeline import SpectrumPipeline

    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise ValueError("no input images found")
    start = time.perf_counter()
    pipe = SpectrumPipeline.from_pretrained(args.model, device=_device(args.device), image_size=args.image_size)
    print(f"loaded model {args.model or 'spectrum-bodypix (embedded)'} in {time.perf_counter() - start:.1f}s",
          file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for path in tqdm(inputs, desc="parse", unit="img"):
        try:
            result = pipe(str(path), prompts=args.prompt or None, threshold=args.threshold, ebp=not args.no_ebp)
            result.label_map_image().save(out / f"{path.stem}.png")
            result.overlay(str(path)).save(out / f"{path.stem}_overlay.png")
            (out / f"{path.stem}.json").write_text(json.dumps(result.to_dict(path.name)))
        except EXPECTED_ERRORS as err:
            failures.append(f"{path}: {err}")
            tqdm.write(f"failed: {path}: {err}", file=sys.stderr)
    done = len(inputs) - len(failures)
    print(f"parsed {done} of {len(inputs)} image(s) into {out}" + (f"; {len(failures)} failed" if failures else ""))
    for line in failures:
        print(f"  failed: {line}", file=sys.stderr)
    return 1 if failures else 0


def cmd_tiny_models(args: argparse.Namespace) -> int:
    """Write tiny random models in the real formats (for smoke tests; their features are meaningless)."""
    from .testing import build_tiny_models

    paths = build_tiny_models(args.directory, seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model from a YAML experiment config."""
    from .training import ExperimentConfig, train

    config = ExperimentConfig.from_yaml(args.config)
    if args.output_dir:
        import dataclasses

        config = dataclasses.replace(config, train=dataclasses.replace(config.train, output_dir=args.output_dir))
    final = train(config, resume=args.resume)
    print(f"model saved to {final}")
    return 0


def cmd_cache_features(args: argparse.Namespace) -> int:
    """Precompute backbone features of augmented training views for decoder-only training."""
    from .feature_cache import build_feature_cache
    from .training import ExperimentConfig, MixtureDataset, _open_sources, build_model

    config = ExperimentConfig.from_yaml(args.config)
    model = build_model(config).to(_device(args.device))
    data = config.data
    sources = _open_sources(data.train)
    dataset = MixtureDataset(sources, [e.weight for e in data.train], args.entries, data.image_size, data.augment,
                             data.targets, config.train.seed)
    out = build_feature_cache(model, dataset, args.entries, args.out, shard_size=args.shard_size, dtype=args.dtype)
    print(f"feature cache with {args.entries} views written to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a model on a dataset under one of the paper's protocols."""
    from tqdm.auto import tqdm

    from .data import open_dataset
    from .evaluation import EvalConfig, evaluate, to_json, to_markdown
    from .modeling import SpectrumModel

    model = SpectrumModel.from_pretrained(args.model).to(_device(args.device)).eval()
    dataset = open_dataset(args.dataset, split=args.split)
    config = EvalConfig(protocol=args.protocol, image_size=args.image_size, limit=args.limit,
                        withheld=list(model.config.withheld))
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    result = evaluate(model, dataset, config, progress=tqdm(range(n), desc="eval", unit="img", disable=args.json))
    print(to_json(result) if args.json else to_markdown(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``spectrum`` command."""
    parser = argparse.ArgumentParser(prog="spectrum", description="Open-vocabulary multi-person human parsing.")
    sub = parser.add_subparsers(dest="command", required=True)

    feats = sub.add_parser("features", help="extract multi-scale backbone features to safetensors")
    feats.add_argument("images", nargs="+", help="image file(s)")
    feats.add_argument("--backbone", required=True, help="backbone config JSON (type i2tx or t2i)")
    feats.add_argument("--out", required=True,
                       help="output .safetensors file (one image) or directory (several images)")
    feats.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="override the compute dtype")
    feats.add_argument("--save-dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    feats.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    feats.set_defaults(func=cmd_features)

    parse = sub.add_parser("parse", help="parse images into per-person body parts and clothing")
    parse.add_argument("inputs", nargs="+", help="image files, directories (recursive) or glob patterns")
    parse.add_argument("--prompt", action="append", help="a text prompt (repeatable); default: the model's list")
    parse.add_argument("--model", help="model directory or hub id (default: the embedded spectrum-bodypix)")
    parse.add_argument("--out", default="outputs", help="output directory (default: outputs)")
    parse.add_argument("--threshold", type=float, default=0.3, help="minimum instance score")
    parse.add_argument("--image-size", type=int, default=512, help="longest side fed to the model")
    parse.add_argument("--no-ebp", action="store_true", help="do not add the expanded body-part prompts")
    parse.add_argument("--device", default="auto")
    parse.set_defaults(func=cmd_parse)

    tr = sub.add_parser("train", help="train a model from a YAML experiment config")
    tr.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    tr.add_argument("--resume", help="checkpoint directory, or 'auto' for the newest in output_dir")
    tr.add_argument("--output-dir", help="override train.output_dir")
    tr.set_defaults(func=cmd_train)

    cache = sub.add_parser("cache-features", help="precompute frozen-backbone features of augmented training views")
    cache.add_argument("--config", required=True, help="experiment YAML (its model and data sections are used)")
    cache.add_argument("--out", required=True, help="cache directory")
    cache.add_argument("--entries", type=int, required=True, help="number of augmented views to cache")
    cache.add_argument("--shard-size", type=int, default=64)
    cache.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16")
    cache.add_argument("--device", default="auto")
    cache.set_defaults(func=cmd_cache_features)

    ev = sub.add_parser("eval", help="evaluate a model on a dataset (prompt-based)")
    ev.add_argument("--model", required=True, help="model directory or hub id")
    ev.add_argument("--dataset", required=True, help="FORMAT:PATH, e.g. ccp:../shared/datasets/ccp")
    ev.add_argument("--split", default="val", help="train, val or all (default val)")
    ev.add_argument("--protocol", default="all", choices=["all", "body", "clothing", "unseen", "person", "instance"])
    ev.add_argument("--image-size", type=int, default=512, help="longest side fed to the model")
    ev.add_argument("--limit", type=int, help="evaluate only the first N images")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=cmd_eval)

    tiny = sub.add_parser("tiny-models", help="write tiny random SD/LoRA/CLIP/IM2CONTEXT models for smoke tests")
    tiny.add_argument("directory")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=cmd_tiny_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spectrum`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EXPECTED_ERRORS as err:
        print(f"spectrum {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
