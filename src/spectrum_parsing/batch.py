"""The batch job behind ``spectrum parse``, shared by the local engine (:mod:`.cli`) and the Ray engine
(:mod:`.distributed`): which files are inputs, which are already done (by the output folder's manifest), how a
group of images is decoded, parsed and written with every failure kept per image, and the summary line.

An engine only decides *where* groups run: the local engine calls :func:`parse_rows` in a loop, each Ray actor
calls it on its batches; the files written and the failures reported are the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .configs import ConfigError
from .hub import ModelLoadError
from .images import ImageLoadError
from .terminal import shown
from .writers import Manifest, pending_formats, write_outputs

__all__ = ["EXPECTED_ERRORS", "IMAGE_SUFFIXES", "Row", "decode_row", "expand_inputs", "parse_rows", "plan_images",
           "summary_line"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}

EXPECTED_ERRORS = (ConfigError, ModelLoadError, ImageLoadError, FileNotFoundError, ValueError)
"""Errors that fail one input with one line (anything else is a bug and is raised)."""


def _under(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents


def expand_inputs(inputs: Sequence[str], out: Path | None = None) -> list[Path]:
    """Files as given; directories searched recursively for images and videos; glob patterns expanded; order
    kept, duplicates dropped. Files under ``out`` are never inputs (a run must not parse its own outputs).
    Unreadable subfolders are skipped with one line each on stderr."""
    import glob

    from .video import VIDEO_SUFFIXES

    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    found: list[Path] = []

    def unreadable(err: OSError) -> None:
        print(f"skipped unreadable folder {shown(err.filename)}: {shown(err.strerror or err)}", file=sys.stderr)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = []
            for root, dirs, names in os.walk(path, onerror=unreadable):
                dirs.sort()
                files += [Path(root) / n for n in names if Path(n).suffix.lower() in suffixes]
            found += sorted(p for p in files if p.is_file())
        elif any(ch in item for ch in "*?["):
            found += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            found.append(path)
    found = list(dict.fromkeys(found))
    return [p for p in found if not _under(p, out)] if out is not None else found


def plan_images(inputs: Sequence[Path], out: Path, formats: Sequence[str], overwrite: bool,
                names: dict[Path, str], manifest: Manifest | None = None, settings: dict | None = None,
                ) -> tuple[list[tuple[Path, list[str]]], list[Path], list[str]]:
    """Split images into (path, formats still to write), the finished ones (every output exists and the manifest
    says they were made from this input, unchanged, with these settings) and refusals (one line each: outputs
    of another input or other settings, kept unless ``overwrite``)."""
    todo, finished, refused = [], [], []
    for path in inputs:
        name = names[path]
        same = manifest.matches(name, path, settings or {}) if manifest is not None else True
        missing = pending_formats(out, name, formats)
        if not overwrite and same is not True and len(missing) < len(formats):  # some of its outputs exist
            why = ("were made from another input or with other settings (model, mode, prompts, thresholds...)"
                   if same is False else "exist but this tool has no record of what made them")
            refused.append(f"{path}: its outputs {out / name}.* {why}; --overwrite to replace them")
            continue
        pending = list(formats) if overwrite or same is False else missing
        if pending:
            todo.append((path, pending))
        else:
            finished.append(path)
    return todo, finished, refused


@dataclass
class Row:
    """One input of a batch: where it comes from, its output name and formats, its decoded image (or the one-line
    reason it failed: ``error``)."""

    path: Path
    name: str
    formats: list[str]
    image: Any = None
    error: str = ""


def _line(path: Path, err: BaseException) -> str:
    return str(err) if str(path) in str(err) else f"{path}: {err}"


def decode_row(path: Path, name: str, formats: Sequence[str], max_pixels: int | None) -> Row:
    """The row of ``path`` with its image decoded (:func:`~spectrum_parsing.images.load_image`), or its error."""
    from .images import load_image

    try:
        return Row(Path(path), name, list(formats), load_image(path, max_pixels=max_pixels))
    except EXPECTED_ERRORS as err:
        return Row(Path(path), name, list(formats), error=_line(Path(path), err))


def parse_rows(pipe: Callable[..., Any], rows: Sequence[Row], call: dict[str, Any], out: Path,
               catch: tuple[type[BaseException], ...] = EXPECTED_ERRORS) -> list[Row]:
    """Parse the decoded rows in one pipeline call and write each one's outputs (:func:`write_outputs`).

    A failing model call fails every row of the group; a failing write fails its row only. Returns the rows with
    ``error`` set where they failed; the others' outputs are on disk. ``catch``: the errors turned into a
    failure line (the Ray engine catches everything, so one broken image cannot stop a cluster job)."""
    good = [r for r in rows if not r.error]
    try:
        results = pipe([r.image for r in good], **call) if good else []
    except catch as err:
        for r in good:
            r.error = f"{r.path}: {err}"
        return list(rows)
    for row, result in zip(good, results):
        try:
            write_outputs(result, row.image, out, row.path, row.formats, name=row.name)
        except (*catch, OSError) as err:
            row.error = f"{row.path}: {err}"
    return list(rows)


def summary_line(out: Path, total: int, failed: int, finished: int = 0, refused: int = 0) -> str:
    """The line a batch ends with, the same for every engine."""
    if total == 0 and not refused:
        return (f"nothing to do: the outputs of all {finished} image(s) exist in {out}, made from the same inputs "
                "with the same settings (--overwrite to redo them)")
    return (f"parsed {total - failed} of {total} image(s) into {out}"
            + (f"; {failed} failed" if failed else "")
            + (f"; {finished} already done" if finished else "")
            + (f"; {refused} refused (outputs of other inputs or settings)" if refused else ""))
