"""The ``spectrum`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import EXPECTED_ERRORS, decode_row, expand_inputs, parse_rows, plan_images, summary_line
from .configs import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from .embedded import DEFAULT_MODEL_NAME, EMBEDDED_MODELS, model_display_name
from .terminal import shown
from .writers import PARSE_FORMATS, SIDE_BY_SIDE, Manifest, slugify, sweep_stale_parts

__all__ = ["EXPECTED_ERRORS", "build_parser", "expand_inputs", "main", "slugify"]

if TYPE_CHECKING:
    from .pipeline import SpectrumPipeline

MODEL_HELP = (f"model directory, hub id, or an embedded model ({', '.join(EMBEDDED_MODELS)}; "
              f"default: {DEFAULT_MODEL_NAME})")


def _number(low: float, high: float, *, integer: bool = False, low_open: bool = False,
            unit: str = "") -> Callable[[str], float]:
    """argparse type of a bounded finite number: ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    kind = ("an integer" if integer else "a number") + (f" {'number ' if integer else ''}of {unit}" if unit else "")
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]" + (f" {unit}" if unit else "")

    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            raise argparse.ArgumentTypeError(f"must be in {bounds}, got {text}")
        return value
    return parse


def _count(low: int, high: int) -> Callable[[str], float]:
    """argparse type of a count: an integer in ``[low, high]``."""
    return _number(low, high, integer=True)


_unit = _number(0.0, 1.0)
_megabytes = _number(0.0, 10240.0, low_open=True, unit="megabytes")
_positive_seconds = _number(0.0, 7 * 24 * 3600.0, low_open=True, unit="seconds")
_image_side = _number(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE, integer=True, unit="pixels")
"""--image-size: an integer side (0, negative or huge sizes are refused)."""


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r}: only auto, cpu, cuda[:N] and mps are supported")
    return name


def cmd_features(args: argparse.Namespace) -> int:
    """Extract multi-scale backbone features of one or more images into safetensors files."""
    import dataclasses

    from safetensors.torch import save_file
    from tqdm import tqdm

    from .backbones import load_backbone, load_backbone_config
    from .backbones.base import DTYPES
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
    save_dtype = DTYPES[args.save_dtype]
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


def _image_options(args: argparse.Namespace) -> dict:
    """Check ``spectrum parse``'s image options before the model loads: formats, preset, label map, batch size."""
    from .images import DEFAULT_MAX_PIXELS
    from .presets import get_preset, load_label_map

    formats = list(dict.fromkeys(f.strip().lower() for f in args.format.split(",") if f.strip()))
    unknown = [f for f in formats if f not in PARSE_FORMATS]
    if unknown or not formats:
        raise ValueError(f"--format {args.format!r}: give a comma-separated list of {', '.join(PARSE_FORMATS)}")
    if getattr(args, "overlay", "standard") == "side-by-side":
        formats = [SIDE_BY_SIDE if f == "overlay" else f for f in formats]
    if "tryon" in formats:
        if not getattr(args, "garment", None):
            raise ValueError("--format tryon needs --garment upper, lower or dress")
        formats = [f"tryon-{args.garment}" if f == "tryon" else f for f in formats]
    if args.preset and args.prompt:
        raise ValueError("--prompt and --preset cannot be combined: a preset scores exactly its dataset's classes "
                         "(use --label-map to merge, rename or drop them)")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise ValueError("--max-pixels must be >= 1")
    return {"formats": formats, "batch_size": args.batch_size, "overwrite": args.overwrite,
            "max_pixels": args.max_pixels if args.max_pixels is not None else DEFAULT_MAX_PIXELS,
            "call": {"prompts": args.prompt or None, "score_threshold": args.score_threshold,
                     "background_threshold": args.background_threshold, "ebp": not args.no_ebp,
                     "preset": get_preset(args.preset) if args.preset else None,
                     "label_map": load_label_map(args.label_map) if args.label_map else None,
                     "batch_size": args.batch_size}}


def _report_skipped(finished: Sequence[Path]) -> None:
    if finished:
        print(f"skipping {len(finished)} input(s) whose outputs exist (--overwrite to redo them)", file=sys.stderr)


PIXELS_IN_FLIGHT = 48_000_000
"""Decoded pixels one group of ``spectrum parse --batch-size`` holds at most (about 4 GB at the pipeline's peak
per working-size pixel): the batch size bounds the count, this bounds the memory."""


def _parse_images(pipe: SpectrumPipeline, todo: Sequence[tuple[Path, list[str]]], out: Path, options: dict,
                  names: dict[Path, str], manifest: Manifest | None = None, settings: dict | None = None,
                  ) -> list[str]:
    """Parse ``todo`` (path, formats) in groups of ``--batch-size`` and write the outputs; returns the failures."""
    from tqdm.auto import tqdm

    size = options["batch_size"]
    failures: list[str] = []
    bar = tqdm(total=len(todo), desc="parse", unit="img", disable=not todo)
    queue = iter(todo)
    while True:
        # A group holds at most --batch-size images and at most PIXELS_IN_FLIGHT decoded pixels: twelve 12-MP
        # photos go through in groups of four, so memory is bounded by pixels, not by the count.
        rows, pixels = [], 0
        for path, formats in queue:
            rows.append(decode_row(path, names[path], formats, options["max_pixels"]))
            image = rows[-1].image
            pixels += image.width * image.height if image is not None else 0
            if len(rows) >= size or pixels >= PIXELS_IN_FLIGHT:
                break
        if not rows:
            break
        if manifest is not None:
            manifest.intend(((row.name, row.path) for row in rows if not row.error), settings or {})
        for row in parse_rows(pipe, rows, options["call"], out):
            if row.error:
                failures.append(row.error)
                tqdm.write(f"failed: {shown(row.error)}", file=sys.stderr)
        bar.update(len(rows))
    bar.close()
    return failures


def _parse_ray(args: argparse.Namespace, options: dict, inputs: list[Path]) -> int:
    """``spectrum parse --engine ray``: the images parsed by a Ray Data pipeline; same outputs, summary and code."""
    try:
        from .distributed import parse_with_ray, require_ray

        require_ray()
    except ImportError as err:
        print(f"spectrum parse: error: {shown(err)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    manifest = Manifest.load(out)
    names = manifest.names(inputs)
    settings = _settings(args, options)
    todo, finished, refused = plan_images(inputs, out, options["formats"], options["overwrite"], names, manifest,
                                          settings)
    _report_skipped(finished)
    manifest.intend(((names[path], path) for path, _ in todo), settings)
    summary = parse_with_ray([p for p, _ in todo], out, args.model, options["call"], options["formats"],
                             batch_size=options["batch_size"], device=args.device, ray_address=args.ray_address,
                             image_size=args.image_size, names=names, pending=dict(todo),
                             max_pixels=options["max_pixels"], load_options=_load_options(args))
    print(shown(summary_line(out, summary["total"], summary["failed"], len(finished), len(refused))))
    for line in [*refused, *summary["failures"]]:
        print(f"  failed: {shown(line)}", file=sys.stderr)
    return 1 if summary["failures"] or refused else 0


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``SpectrumPipeline.from_pretrained`` that the people and naming options set."""
    return {"mode": args.mode, "person_masks": args.person_masks, "detector": args.detector,
            "body_parts": args.body_parts, "competitors": args.competitors, "flip": args.flip,
            "parser_person": args.parser_person, "peel": False if args.no_peel else None}


def _settings(args: argparse.Namespace, options: dict) -> dict:
    """What decides an image's outputs besides the image: recorded in the manifest, compared on reruns."""
    call = options["call"]
    return {"model": str(Path(args.model).resolve()) if args.model and Path(args.model).exists() else args.model,
            "onnx": args.onnx, **_load_options(args), "image_size": args.image_size,
            "prompts": call["prompts"], "preset": args.preset, "label_map": call["label_map"],
            "score_threshold": call["score_threshold"], "background_threshold": call["background_threshold"],
            "ebp": call["ebp"], "max_pixels": options["max_pixels"]}


def _check_out(out: Path) -> None:
    """Refuse an unusable ``--out`` before the model loads: a file, or a folder that cannot be written."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: is a file, not a folder")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: {existing} is not writable")


def _plan_videos(videos: Sequence[Path], out: Path, names: dict[Path, str], manifest: Manifest,
                 settings: dict, overwrite: bool) -> tuple[list[Path], list[Path], list[str]]:
    """Videos to parse, videos finished (their summary exists and the manifest says they were made from this file,
    unchanged, with these settings: prompts, --every, --max-frames, formats...) and refusals (outputs of another
    file or other settings, or files of the user's under our names, kept unless ``overwrite``)."""
    todo, done, refused = [], [], []
    for path in videos:
        name = names[path]
        outputs = [out / f"{name}.json", out / name, out / f"{name}_overlay.mp4"]
        same = manifest.matches(name, path, settings)
        if overwrite or not any(o.exists() for o in outputs):
            todo.append(path)
        elif same is True:  # ours: finished, or half-written by a killed run (then done again)
            (done if outputs[0].exists() else todo).append(path)
        else:
            why = ("were made from another input or with other settings (prompts, --every, --max-frames...)"
                   if same is False else "exist but this tool has no record of what made them")
            refused.append(f"{path}: its outputs {out / name}* {why}; --overwrite to replace them")
    return todo, done, refused


def cmd_parse(args: argparse.Namespace) -> int:
    """Parse images (label-map PNG, overlay PNG, JSON per image) and videos (the same per frame, tracked ids)."""
    from tqdm.auto import tqdm

    from .pipeline import SpectrumPipeline
    from .video import VIDEO_FORMATS, is_video, parse_video, require_av

    if args.every < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise ValueError("--every and --max-frames must be >= 1")
    options = _image_options(args)
    out = Path(args.out)
    _check_out(out)
    for stale in sweep_stale_parts(out) if out.is_dir() else []:  # left by a run that was killed (any engine)
        print(f"removed {shown(stale.name)}: an unfinished temporary file of a killed run", file=sys.stderr)
    inputs = expand_inputs(args.inputs, out)  # never our own outputs
    if not inputs:
        raise ValueError(f"no input images or videos found (files under --out {out} are never inputs)")
    if args.engine == "ray":
        if args.onnx:
            raise ValueError("--onnx works with --engine local only")
        return _parse_ray(args, options, inputs)
    videos = [p for p in inputs if is_video(p)]
    inputs = [p for p in inputs if not is_video(p)]
    if videos:
        require_av()
    manifest = Manifest.load(out)
    names = manifest.names([*inputs, *videos])  # unique across images and videos (a video's frames go to OUT/NAME/)
    settings = _settings(args, options)
    todo, finished, refused = plan_images(inputs, out, options["formats"], options["overwrite"], names, manifest,
                                          settings)
    video_formats = [f for f in ("overlay" if f == SIDE_BY_SIDE else f for f in options["formats"])
                     if f in VIDEO_FORMATS] + ["video"]
    video_settings = {**settings, "every": args.every, "max_frames": args.max_frames, "formats": video_formats}
    videos, videos_done, video_refused = _plan_videos(videos, out, names, manifest, video_settings,
                                                      options["overwrite"])
    refused = [*refused, *video_refused]
    _report_skipped([*finished, *videos_done])
    failures: list[str] = []
    if todo or videos:
        start = time.perf_counter()
        pipe = SpectrumPipeline.from_pretrained(args.model, device=_device(args.device), image_size=args.image_size,
                                                max_pixels=options["max_pixels"], onnx=args.onnx,
                                                **_load_options(args))
        print(f"loaded model {model_display_name(args.model)} in {time.perf_counter() - start:.1f}s",
              file=sys.stderr)
        call = options["call"]
        if "png" in options["formats"] and call["preset"] is None and call["label_map"] is None:
            count = len(pipe.resolve_prompts(call["prompts"], call["ebp"]))
            if count > 255:  # checked before parsing: the palette PNG holds ids up to 255
                raise ValueError(f"{count} labels (your prompts plus the expanded body parts) do not fit the label-map "
                                 "PNG (ids up to 255): give fewer prompts, --no-ebp, or leave png out of --format")
        out.mkdir(parents=True, exist_ok=True)
        failures = _parse_images(pipe, todo, out, options, names, manifest, settings)
    if inputs:
        print(shown(summary_line(out, len(todo), len(failures), len(finished), len(refused))))
    failures = [*refused, *failures]
    video_failures = 0
    for path in videos:
        try:
            call = dict(options["call"])  # prompts, threshold, preset, batch_size (frames per pipeline call)...
            manifest.intend([(names[path], path)], video_settings)
            summary = parse_video(pipe, path, out, every=args.every, max_frames=args.max_frames,
                                  formats=video_formats, name=names[path], **call)
            print(shown(f"parsed {summary['frames']} frame(s) of {path} with {len(summary['tracks'])} person "
                        f"track(s) into {out / names[path]}"))
        except EXPECTED_ERRORS as err:
            video_failures += 1
            failures.append(f"{path}: {err}")
            tqdm.write(f"failed: {shown(path)}: {shown(err)}", file=sys.stderr)
    if len(videos) > 1 or video_failures:
        print(f"parsed {len(videos) - video_failures} of {len(videos)} video(s) into {out}")
    for line in failures:
        print(f"  failed: {shown(line)}", file=sys.stderr)
    return 1 if failures else 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model's image path to ONNX (checked against PyTorch with onnxruntime)."""
    from .export import export_onnx
    from .pipeline import SpectrumPipeline

    if args.format != "onnx":
        raise ValueError(f"unknown export format {args.format!r}; supported: onnx")
    pipe = SpectrumPipeline.from_pretrained(args.model)
    start = time.perf_counter()
    path = export_onnx(pipe.model, args.out, image_size=args.image_size, check=not args.no_check)
    size = path.stat().st_size / 2**20
    print(f"exported {model_display_name(args.model)} to {path} ({size:.1f} MiB, "
          f"{args.image_size or pipe.model.config.input_size} px inputs) in {time.perf_counter() - start:.1f}s"
          + ("" if args.no_check else "; onnxruntime matches PyTorch"))
    return 0


def cmd_tiny_models(args: argparse.Namespace) -> int:
    """Write tiny random models in the real formats (for smoke tests; their features are meaningless)."""
    from .tiny_models import build_tiny_models

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
    from .training import ExperimentConfig, MixtureDataset, build_model, open_sources

    config = ExperimentConfig.from_yaml(args.config)
    model = build_model(config).to(_device(args.device))
    data = config.data
    sources = open_sources(data.train)
    dataset = MixtureDataset(sources, [e.weight for e in data.train], args.entries, data.image_size, data.augment,
                             data.targets, config.train.seed)
    out = build_feature_cache(model, dataset, args.entries, args.out, shard_size=args.shard_size, dtype=args.dtype)
    print(f"feature cache with {args.entries} views written to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a model on a dataset under one of the paper's protocols."""
    from tqdm.auto import tqdm

    from .data import open_dataset
    from .embedded import embedded_model_dir
    from .evaluation import EvalConfig, evaluate, to_json, to_markdown
    from .pipeline import SpectrumPipeline

    embedded = embedded_model_dir(args.model)  # None, or a name this tool prints for an embedded model
    if embedded is not None:
        args.model = str(embedded)
    # The pipeline `spectrum parse` builds (same detector, crops, person masks); --mode whole-image runs only
    # its model (and, for the instance protocol, its bottom-up grouping).
    pipe = SpectrumPipeline.from_pretrained(args.model, device=_device(args.device), image_size=args.image_size,
                                            **{**_load_options(args),
                                               "mode": "bottom-up" if args.mode == "whole-image" else "top-down"})
    dataset = open_dataset(args.dataset, split=args.split)
    config = EvalConfig(protocol=args.protocol, mode="whole-image" if args.mode == "whole-image" else "pipeline",
                        limit=args.limit, withheld=list(pipe.model.config.withheld),
                        score_threshold=args.score_threshold, background_threshold=args.background_threshold)
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    result = evaluate(pipe, dataset, config, progress=tqdm(range(n), desc="eval", unit="img", disable=args.json))
    result["mode"] = args.mode
    print(to_json(result) if args.json else to_markdown(result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the web demo and JSON API (``spectrum_parsing.server``) with uvicorn."""
    try:
        from .server import ServerSettings, create_app
        from .server.http import serve
    except ImportError as err:
        print(f"spectrum serve: error: {err.name or err} is missing; install the demo extra: "
              "pip install 'spectrum-parsing[demo]'", file=sys.stderr)
        return 2
    from .pipeline import SpectrumPipeline
    from .server.http import guarded_protocol

    guarded_protocol(args.header_timeout, args.max_connections)  # bad limits fail before the model loads
    settings = ServerSettings(max_upload_bytes=int(args.max_upload_mb * 2**20), max_concurrency=args.max_concurrency,
                              max_queue=args.max_queue, request_timeout_s=args.timeout,
                              max_pixels=args.max_pixels, model_name=model_display_name(args.model))
    start = time.perf_counter()
    pipe = SpectrumPipeline.from_pretrained(args.model, device=_device(args.device), image_size=args.image_size,
                                            **_load_options(args))
    print(f"loaded model {settings.model_name} in {time.perf_counter() - start:.1f}s; "
          f"serving on http://{args.host}:{args.port}", file=sys.stderr)
    try:
        serve(create_app(pipe, settings), args.host, args.port, header_timeout_s=args.header_timeout,
              idle_timeout_s=args.idle_timeout, max_connections=args.max_connections)
    except KeyboardInterrupt:  # a second Ctrl-C during uvicorn's graceful shutdown: one line, not tracebacks
        print("spectrum serve: stopped", file=sys.stderr)
        return 130
    return 0


def _add_person_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=["top-down", "bottom-up"], default="top-down",
                        help="top-down (default): people found by MoveNet-MultiPose, each parsed in its own crop; "
                             "bottom-up: the whole image parsed once, parts grouped under the parser's person masks")
    parser.add_argument("--person-masks", choices=["blazepose", "parser"], default=None,
                        help="top-down: whose masks decide which pixels are each person's (default blazepose)")
    parser.add_argument("--detector", choices=["movenet", "blazepose"], default="movenet",
                        help="top-down: who finds the people: MoveNet-MultiPose (default) or BlazePose")
    _add_naming_options(parser)


def _add_naming_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--body-parts", choices=["sides", "pose", "model"], default="sides",
                        help="top-down: who names bare skin (face, arms, legs): sides (default: the parser's limb "
                             "type, the pose's side), pose (the pose names everything) or model (the parser's "
                             "own labels)")
    parser.add_argument("--competitors", default="novel", choices=["novel", "all", "off"],
                        help="top-down: known categories of other groups compete, hidden, with the prompts the model "
                             "never saw as a label (novel, default: synonyms such as 'saree', free phrases, unknown "
                             "words), with every prompt (all: costs part AP on real photos, see the README) or "
                             "with none (off)")
    parser.add_argument("--parser-person", type=_unit, default=None, metavar="W",
                        help="top-down: inside each person's box the parser's own person map, times W, completes "
                             "BlazePose's person mask (people in dark clothes; default 0.6, 0: BlazePose's alone)")
    parser.add_argument("--flip", action="store_true",
                        help="top-down: flip test-time augmentation, each crop also parsed mirrored (twice the "
                             "parser's time; studio photos gain, real photos' LIP categories lose: see the README)")
    parser.add_argument("--no-peel", action="store_true",
                        help="top-down: one detector pass (default: where it finds two people or more, it runs "
                             "again with them painted out, for the people hidden behind them)")


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
    parse.add_argument("inputs", nargs="+",
                       help="image or video (.mp4 .mov .avi .mkv .webm) files, directories (recursive), glob patterns")
    parse.add_argument("--prompt", action="append", help="a text prompt (repeatable); default: the model's list")
    parse.add_argument("--model", help=MODEL_HELP)
    parse.add_argument("--out", default="outputs", help="output directory (default: outputs)")
    parse.add_argument("--score-threshold", "--threshold", dest="score_threshold", type=_unit, default=0.3,
                       help="parts whose mean score is below this are dropped (default 0.3)")
    parse.add_argument("--background-threshold", type=_unit, default=0.5,
                       help="pixels whose best prompt score is below this are background (default 0.5)")
    parse.add_argument("--image-size", type=_image_side, default=None,
                       help="longest side fed to the model (default: the size it was trained at)")
    parse.add_argument("--no-ebp", action="store_true", help="do not add the expanded body-part prompts")
    _add_person_options(parse)
    parse.add_argument("--format", default="png,overlay,json",
                       help="image outputs, comma-separated: png (label ids), overlay, json (persons -> parts, and a "
                            "COCO block), masks (OUT/STEM/person<id>_<label>.png), tryon (OUT/STEM_tryon/: per person "
                            "the agnostic mask of --garment and the LIP-id label map); default png,overlay,json")
    parse.add_argument("--garment", choices=["upper", "lower", "dress"], default=None,
                       help="with --format tryon: the garment category whose agnostic masks to write")
    parse.add_argument("--overlay", choices=["standard", "side-by-side"], default="standard",
                       help="the overlay image: labels over the photo (default), or photo | overlay side by side")
    parse.add_argument("--preset", help="dataset label scheme and ids: lip, cihp, atr, pascal-person-part or ccp "
                                        "(not with --prompt)")
    parse.add_argument("--label-map", metavar="FILE.json",
                       help="merge / rename / fix the ids of output labels (schema: spectrum_parsing.presets)")
    parse.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per model batch (default 1)")
    parse.add_argument("--every", type=int, default=1, metavar="N", help="videos: parse every N-th frame (default 1)")
    parse.add_argument("--max-frames", type=int, metavar="N", help="videos: parse at most N frames per video")
    parse.add_argument("--overwrite", action="store_true",
                       help="replace existing outputs (default: keep them and skip inputs whose outputs all exist, "
                            "so an interrupted run resumes)")
    parse.add_argument("--max-pixels", type=int, metavar="N",
                       help="refuse images with more pixels than this (default 100000000); images above 4 MP are "
                            "parsed at a reduced size and their masks scaled back")
    parse.add_argument("--onnx", metavar="FILE.onnx",
                       help="run the image path with onnxruntime from this export of the same model "
                            "(spectrum export --format onnx); default: PyTorch")
    parse.add_argument("--device", default="auto")
    parse.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local (this process, default) or ray (a Ray Data pipeline of model actors; images only; "
                            "needs the distributed extra)")
    parse.add_argument("--ray-address", metavar="ADDR",
                       help="--engine ray: address of an existing Ray cluster (default: start a local instance)")
    parse.set_defaults(func=cmd_parse)

    tr = sub.add_parser("train", help="train a model from a YAML experiment config")
    tr.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    tr.add_argument("--resume", help="checkpoint directory, or 'auto' for the newest in output_dir")
    tr.add_argument("--output-dir", help="override train.output_dir")
    tr.set_defaults(func=cmd_train)

    cache = sub.add_parser("cache-features", help="precompute frozen-backbone features of augmented training views")
    cache.add_argument("--config", required=True, help="experiment YAML (its model and data sections are used)")
    cache.add_argument("--out", required=True, help="cache directory")
    cache.add_argument("--entries", type=_count(1, 10_000_000), required=True,
                       help="number of augmented views to cache")
    cache.add_argument("--shard-size", type=_count(1, 100_000), default=64)
    cache.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float16")
    cache.add_argument("--device", default="auto")
    cache.set_defaults(func=cmd_cache_features)

    ev = sub.add_parser("eval", help="evaluate a model on a dataset (prompt-based)")
    ev.add_argument("--model", help=MODEL_HELP)
    ev.add_argument("--mode", choices=["top-down", "whole-image"], default="top-down",
                    help="top-down (default): every image through the pipeline `spectrum parse` runs (people found, "
                         "each parsed in its crop); whole-image: the bare model on the whole image (research "
                         "comparisons; instance protocol: the bottom-up grouping)")
    ev.add_argument("--person-masks", choices=["blazepose", "parser"], default=None,
                    help="top-down: whose masks decide each person's pixels (default blazepose)")
    ev.add_argument("--detector", choices=["movenet", "blazepose"], default="movenet",
                    help="top-down: who finds the people (default movenet)")
    _add_naming_options(ev)
    ev.add_argument("--dataset", required=True, help="FORMAT:PATH, e.g. ccp:../shared/datasets/ccp")
    ev.add_argument("--split", default="val", help="train, val or all (default val)")
    ev.add_argument("--protocol", default="all", choices=["all", "body", "clothing", "unseen", "person", "instance"])
    ev.add_argument("--image-size", type=_image_side, default=None,
                       help="longest side fed to the model (default: the size it was trained at)")
    ev.add_argument("--limit", type=int, help="evaluate only the first N images")
    ev.add_argument("--background-threshold", type=_unit, default=0.5,
                    help="pixels whose best prompt score is below this are background (default 0.5)")
    ev.add_argument("--score-threshold", type=_unit, default=0.3,
                    help="parts whose mean score is below this are dropped (default 0.3)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=cmd_eval)

    export = sub.add_parser("export", help="export a model's image path to ONNX for onnxruntime")
    export.add_argument("--model", help=MODEL_HELP)
    export.add_argument("--format", default="onnx", help="export format (onnx)")
    export.add_argument("--out", required=True, help="output .onnx file")
    export.add_argument("--image-size", type=_image_side, default=None,
                        help="fixed input side of the export, a multiple of 32 (default: the model's input size)")
    export.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    export.set_defaults(func=cmd_export)

    tiny = sub.add_parser("tiny-models", help="write tiny random SD/LoRA/CLIP/IM2CONTEXT models for smoke tests")
    tiny.add_argument("directory")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=cmd_tiny_models)

    serve = sub.add_parser("serve", help="serve the web demo and JSON API (needs the demo extra)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_count(1, 65535), default=7860)
    serve.add_argument("--model", help=MODEL_HELP)
    _add_person_options(serve)
    serve.add_argument("--device", default="auto")
    serve.add_argument("--image-size", type=_image_side, default=None,
                       help="longest side fed to the model (default: the size it was trained at)")
    serve.add_argument("--max-upload-mb", type=_megabytes, default=10.0,
                       help="largest upload accepted (default 10)")
    serve.add_argument("--max-concurrency", type=_count(1, 1024), default=1,
                       help="model calls run at once (default 1)")
    serve.add_argument("--max-queue", type=_count(0, 100_000), default=64,
                       help="requests that may wait; more get 503 (default 64)")
    serve.add_argument("--timeout", type=_positive_seconds, default=120.0, help="seconds per request before 503/504")
    serve.add_argument("--max-pixels", type=_count(1, 1_000_000_000), default=25_000_000,
                       help="largest image accepted, in pixels, checked from the header (default 25000000)")
    serve.add_argument("--header-timeout", type=_positive_seconds, default=10.0,
                       help="seconds a client has to send a complete request line and headers (default 10)")
    serve.add_argument("--idle-timeout", type=_positive_seconds, default=5.0,
                       help="seconds a kept-alive connection may stay idle between requests (default 5)")
    serve.add_argument("--max-connections", type=int, default=256,
                       help="open connections at most; the longest-waiting one without a request is dropped "
                            "to make room (default 256)")
    serve.set_defaults(func=cmd_serve)
    return parser


THREADS_ENV = "SPECTRUM_THREADS"
MODEL_COMMANDS = ("parse", "serve", "eval", "export", "features")


def default_threads(cores: int | None = None, spinning: bool | None = None) -> int:
    """Torch threads for a model command: every core when OpenMP's workers do not spin waiting for work (the
    package turns libgomp's spinning off: :data:`spectrum_parsing.SPIN_ENV`), else one core is left free.

    With spinning workers, a single competing process deschedules one of them and every operation waits for it:
    on 2 cores the default pipeline took 4.0x its idle time beside one busy process with 2 threads, 1.0x with 1
    (but 1.5x slower idle). Without spinning, 2 threads are 1.5x beside a busy process and fastest idle
    (``benchmarks/bench_contention.py``). ``spinning``: None reads the environment."""
    cores = cores or os.cpu_count() or 1
    if spinning is None:
        from . import SPIN_ENV

        spinning = not (os.environ.get(SPIN_ENV, "").strip() == "0"
                        or os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE")
    return max(1, cores - 1) if spinning else cores


def _configure_threads(command: str) -> None:
    """``SPECTRUM_THREADS`` if set; else the user's ``OMP_NUM_THREADS`` is respected; else :func:`default_threads`."""
    if command not in MODEL_COMMANDS:
        return
    wanted = os.environ.get(THREADS_ENV)
    if wanted is None and os.environ.get("OMP_NUM_THREADS"):
        return
    try:
        threads = int(wanted) if wanted is not None else default_threads()
    except ValueError:
        raise ValueError(f"{THREADS_ENV}={wanted!r}: expected a number of threads") from None
    if threads < 1:
        raise ValueError(f"{THREADS_ENV}={wanted!r}: expected at least 1 thread")
    import torch

    torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spectrum`` console script (argparse exits with status 2 on a refused argument)."""
    args = build_parser().parse_args(argv)
    try:
        _configure_threads(args.command)
        return args.func(args)
    except (*EXPECTED_ERRORS, OSError) as err:  # permissions, a file where a folder is needed, output conflicts
        print(f"spectrum {args.command}: error: {shown(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
