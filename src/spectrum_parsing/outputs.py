"""Writing parse outputs safely: atomic files, unique names, and resumable batch runs.

Every file is written to a temporary name in its destination folder and renamed into place
(:func:`os.replace`), so an interrupted run never leaves a half-written PNG or JSON under a final name; a
masks folder is assembled under a temporary name and renamed the same way. A batch run decides per input
which of its outputs are missing (:func:`pending_formats`): finished inputs are skipped, so rerunning an
interrupted command resumes it, and existing files are only replaced with ``overwrite=True``.

Output names are the input file stems, made unique within one run (:func:`output_names`): ``a/x.jpg`` and
``b/x.jpg`` become ``x`` and ``x__2`` (in input order, which is sorted for directories and globs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from .pipeline import ParsingResult

__all__ = [
    "PARSE_FORMATS",
    "atomic_write",
    "atomic_write_text",
    "atomic_save_image",
    "output_names",
    "output_paths",
    "pending_formats",
    "slugify",
    "write_masks",
    "write_outputs",
]

PARSE_FORMATS = ("png", "overlay", "json", "masks")
"""Image outputs of ``spectrum parse --format``: label-map PNG, overlay PNG, JSON (with a COCO block), binary masks."""


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path`` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_save_image(image: Image.Image, path: str | os.PathLike[str], format: str = "PNG") -> Path:
    """Save a PIL image to ``path`` atomically (``format`` is explicit: the temporary name has no image suffix)."""
    return atomic_write(path, lambda tmp: image.save(tmp, format=format))


def slugify(text: str) -> str:
    """A file-name-safe form of a label: lowercase ASCII letters and digits joined by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "label"


def output_names(inputs: Sequence[Path]) -> dict[Path, str]:
    """A unique output name per input: its stem, with ``__2``, ``__3``... for later inputs of the same stem."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in inputs:
        base = path.stem or "image"
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}__{n}"
        used.add(name.lower())
        names[path] = name
    return names


def output_paths(out: Path, name: str, formats: Sequence[str]) -> dict[str, Path]:
    """Where each format of one image goes: ``NAME.png``, ``NAME_overlay.png``, ``NAME.json``, ``NAME/``."""
    where = {"png": out / f"{name}.png", "overlay": out / f"{name}_overlay.png", "json": out / f"{name}.json",
             "masks": out / name}
    return {f: where[f] for f in formats}


def pending_formats(out: Path, name: str, formats: Sequence[str], overwrite: bool = False) -> list[str]:
    """The formats of one image still to write: all with ``overwrite``, else those whose output is missing."""
    if overwrite:
        return list(formats)
    return [f for f, p in output_paths(out, name, formats).items() if not p.exists()]


def write_masks(result: ParsingResult, directory: Path) -> list[Path]:
    """Binary 0/255 mode-"L" PNGs: ``person<id>.png`` (full body) and ``person<id>_<label>.png`` per part
    (``_2``, ``_3``... for repeated labels of one person), assembled in a temporary folder renamed to
    ``directory`` (an existing ``directory`` is replaced). Returns the final paths."""
    import numpy as np
    from PIL import Image

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".part", dir=directory.parent))
    names: list[str] = []
    try:
        for person in result.persons:
            items = [(f"person{person.id}", person.mask)]
            seen: dict[str, int] = {}
            for part in person.parts:
                name = f"person{person.id}_{slugify(part.label)}"
                seen[name] = seen.get(name, 0) + 1
                items.append((name if seen[name] == 1 else f"{name}_{seen[name]}", part.mask))
            for name, mask in items:
                Image.fromarray(mask.cpu().numpy().astype(np.uint8) * 255, mode="L").save(tmp / f"{name}.png")
                names.append(f"{name}.png")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [directory / n for n in names]


def write_outputs(result: ParsingResult, image: Image.Image | np.ndarray, out: Path, path: Path,
                  formats: Sequence[str], name: str | None = None) -> list[Path]:
    """Write one parsed image's outputs into ``out`` atomically, named ``name`` (default: the stem of ``path``):
    ``NAME.png`` (label ids), ``NAME_overlay.png``, ``NAME.json`` and ``NAME/`` masks, as chosen by ``formats``.
    Shared by every engine. Returns the paths written."""
    name = name or path.stem
    targets = output_paths(out, name, formats)
    written = []
    if "png" in targets:
        written.append(atomic_save_image(result.label_map_image(), targets["png"]))
    if "overlay" in targets:
        written.append(atomic_save_image(result.overlay(image), targets["overlay"]))
    if "masks" in targets:
        write_masks(result, targets["masks"])
        written.append(targets["masks"])
    if "json" in targets:  # last: a JSON on disk means the image's other outputs were written before it
        data: dict[str, Any] = result.to_dict(path.name)
        written.append(atomic_write_text(targets["json"], json.dumps(data)))
    return written
