"""``spectrum parse --engine ray``: the image part of ``spectrum parse`` as a Ray Data pipeline.

paths -> decode (``images.load_image``; failures kept per row) -> model actors (one
:class:`~spectrum_parsing.pipeline.SpectrumPipeline` per actor, loaded once; each actor writes its rows' outputs with
:func:`spectrum_parsing.writers.write_outputs`, the writer of the local engine, so the files are the same).

Needs the ``distributed`` extra (``pip install 'spectrum-parsing[distributed]'``). On a remote cluster every node
must have ``spectrum_parsing`` installed and see ``out_dir`` (a shared file system).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .images import DEFAULT_MAX_PIXELS
from .terminal import shown
from .writers import output_names

RAY_MISSING = ("the ray engine needs Ray Data; install the distributed extra: "
               "pip install 'spectrum-parsing[distributed]'")
_PLACEHOLDER = np.zeros((1, 1, 3), dtype=np.uint8)  # the image of a row whose decoding failed


def require_ray() -> Any:
    """Import and return ``ray`` (with Ray Data), or raise ImportError naming the ``distributed`` extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(RAY_MISSING) from err
    return ray


def decode(row: dict[str, Any]) -> dict[str, Any]:
    """Ray Data map: decode one row's image (:func:`spectrum_parsing.batch.decode_row`); a failure is kept in
    ``error``, never raised."""
    from .batch import decode_row

    try:
        decoded = decode_row(Path(row["path"]), row["name"], row["formats"].split(","), row.get("max_pixels"))
        image, error = (_PLACEHOLDER, decoded.error) if decoded.error else (np.asarray(decoded.image), "")
    except Exception as err:  # a broken file must not stop the job
        image, error = _PLACEHOLDER, f"{row['path']}: {err}"
    return {"index": row["index"], "path": row["path"], "name": row["name"], "formats": row["formats"],
            "image": image, "error": error}


class ParseActor:
    """A Ray Data actor: loads the model once and runs :func:`spectrum_parsing.batch.parse_rows` (the local
    engine's parse-and-write step) on each batch of decoded rows."""

    def __init__(self, model: str | None, device: str, load_kwargs: dict[str, Any], call_kwargs: dict[str, Any],
                 formats: Sequence[str], out_dir: str) -> None:
        import torch

        from .pipeline import SpectrumPipeline

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pipe = SpectrumPipeline.from_pretrained(model, device=device, **load_kwargs)
        self.call_kwargs = dict(call_kwargs)
        self.formats = list(formats)
        self.out = Path(out_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .batch import Row, parse_rows

        rows = [Row(Path(str(path)), str(name), str(formats).split(","),
                    None if error else np.asarray(image, dtype=np.uint8), str(error))
                for path, name, formats, image, error in zip(batch["path"], batch["name"], batch["formats"],
                                                             batch["image"], batch["error"])]
        rows = parse_rows(self.pipe, rows, self.call_kwargs, self.out, catch=(Exception,))
        return {"index": np.asarray(batch["index"]), "path": np.asarray([str(r.path) for r in rows]),
                "error": np.asarray([r.error for r in rows], dtype=object)}


def _wants_gpu(ray: Any, device: str) -> bool:
    if device == "auto":
        return ray.cluster_resources().get("GPU", 0) > 0
    return device.startswith("cuda")


def parse_with_ray(inputs: Sequence[Path], out_dir: str | Path, model: str | None, call_kwargs: dict[str, Any],
                   formats: Sequence[str], num_actors: int | None = None, batch_size: int = 1, device: str = "auto",
                   ray_address: str | None = None, image_size: int | None = None,
                   names: Mapping[Path, str] | None = None, pending: Mapping[Path, Sequence[str]] | None = None,
                   max_pixels: int | None = DEFAULT_MAX_PIXELS,
                   load_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parse image files on Ray and write ``formats`` into ``out_dir`` exactly as the local engine does.

    ``call_kwargs``: keyword arguments of :meth:`SpectrumPipeline.__call__` (prompts, score_threshold, preset...).
    ``num_actors``: model actors (default: the cluster's GPUs when on CUDA, else its CPUs); each takes one GPU on
    CUDA. ``ray_address``: connect to that cluster; otherwise the running Ray instance, or a new local one (shut
    down at the end only if started here). ``names``: output name per input (default: unique stems, see
    :func:`~spectrum_parsing.writers.output_names`); ``pending``: the formats still to write per input (default
    ``formats``). ``max_pixels``: larger images fail (see :mod:`~spectrum_parsing.images`). ``load_options``:
    more keyword arguments of :meth:`SpectrumPipeline.from_pretrained` (``mode``, ``person_masks``, ``detector``,
    ``body_parts``, ``competitors``, ``flip``, ``parser_person``; None values are left out: its defaults).
    Returns ``{"total", "done", "failed", "failures"}`` in input order.
    """
    from .video import is_video

    paths = [Path(p) for p in inputs]
    videos = [str(p) for p in paths if is_video(p)]
    if videos:
        raise ValueError(f"the ray engine parses images only, not videos ({', '.join(videos)}): use --engine local")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    ray = require_ray()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = not ray.is_initialized()
    if started:
        if ray_address:
            ray.init(address=ray_address)
        else:
            ray.init(include_dashboard=False)
    try:
        if not paths:
            return {"total": 0, "done": 0, "failed": 0, "failures": []}
        gpu = _wants_gpu(ray, device)
        if num_actors is None:
            resources = ray.cluster_resources()
            num_actors = int(resources.get("GPU", 1) if gpu else resources.get("CPU", 1))
        num_actors = max(1, min(num_actors, len(paths)))
        names = dict(names) if names is not None else output_names(paths)
        items = [{"index": i, "path": str(p.resolve()), "name": names[p], "max_pixels": max_pixels,
                  "formats": ",".join(pending[p] if pending is not None else formats)} for i, p in enumerate(paths)]
        load_kwargs = {"image_size": image_size,
                       **{k: v for k, v in (load_options or {}).items() if v is not None}}
        actor_args = (model, "cuda" if gpu and device == "auto" else device, load_kwargs, dict(call_kwargs),
                      list(formats), str(out.resolve()))
        dataset = (ray.data.from_items(items, override_num_blocks=min(len(items), 4 * num_actors))
                   .map(decode)
                   .map_batches(ParseActor, fn_constructor_args=actor_args, batch_size=batch_size,
                                batch_format="numpy", concurrency=num_actors, num_gpus=1 if gpu else 0))
        rows = sorted(dataset.take_all(), key=lambda r: int(r["index"]))
    finally:
        if started:
            ray.shutdown()
    # Report paths as the caller gave them, as the local engine does.
    by_resolved = {str(p.resolve()): str(p) for p in paths}
    failures = [str(r["error"]).replace(r["path"], by_resolved.get(r["path"], r["path"]))
                for r in rows if r["error"]]
    for line in failures:
        print(f"failed: {shown(line)}", file=sys.stderr)
    return {"total": len(paths), "done": len(paths) - len(failures), "failed": len(failures), "failures": failures}
