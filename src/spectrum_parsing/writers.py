"""Writing parse outputs safely: atomic files, unique names, and resumable batch runs.

Every file is written to a temporary name in its destination folder and renamed into place
(:func:`os.replace`), so an interrupted run never leaves a half-written PNG or JSON under a final name; a
masks folder is assembled under a temporary name and renamed the same way. A batch run decides per input
which of its outputs are missing (:func:`pending_formats`): finished inputs are skipped, so rerunning an
interrupted command resumes it, and existing files are only replaced with ``overwrite=True``.

Output names are the input file stems, made safe (:func:`safe_name`: no path separators, no leading dots, no
control characters, at most 120 bytes) and unique within one run (:func:`output_names`): ``a/x.jpg`` and
``b/x.jpg`` become ``x`` and ``x__2`` (in input order, which is sorted for directories and globs). Every
output path is checked to stay inside the output folder (:func:`inside`), and a folder is only ever replaced
if the tool made it: masks and video-frame folders carry a marker file (:data:`MARKER`); a user's folder of
the same name is never deleted, with or without ``--overwrite`` (:class:`OutputConflictError`). Files and
folders get the permissions the process umask allows (like ``open``/``mkdir``), not the 0600/0700 of
temporary files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from .results import ParsingResult

__all__ = [
    "MANIFEST",
    "MARKER",
    "Manifest",
    "PARSE_FORMATS",
    "SIDE_BY_SIDE",
    "TRYON_FORMATS",
    "OutputConflictError",
    "atomic_write",
    "atomic_write_text",
    "atomic_save_image",
    "output_names",
    "output_paths",
    "inside",
    "make_tool_folder",
    "pending_formats",
    "safe_name",
    "slugify",
    "write_masks",
    "write_tryon",
    "write_outputs",
]

PARSE_FORMATS = ("png", "overlay", "json", "masks", "tryon")
"""Image outputs of ``spectrum parse --format``: label-map PNG, overlay PNG, JSON (with a COCO block), binary masks,
try-on masks (with ``--garment``)."""
SIDE_BY_SIDE = "overlay-side-by-side"
"""The overlay format drawn as photo | overlay (``spectrum parse --overlay side-by-side``); same file name."""
TRYON_FORMATS = ("tryon-upper", "tryon-lower", "tryon-dress")
"""``--format tryon --garment G``: per person the agnostic mask and LIP label map, in ``NAME_tryon/``."""


MARKER = ".spectrum-output"
"""File placed in every folder the tool makes (masks, video frames): only such folders are ever replaced."""

MAX_NAME_BYTES = 120
"""Longest output name (UTF-8 bytes): with suffixes and temporary prefixes it stays under the 255-byte limit."""


class OutputConflictError(OSError):
    """An output would replace something the tool did not make, or land outside the output folder."""


def process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


TMP_TAG = ".spectrum-tmp."
"""Every temporary file or folder the tool writes is named ``.spectrum-tmp.<pid>.<name>.<random>.part``."""
_TMP_PATTERN = re.compile(r"^\.spectrum-tmp\.(\d+)\..*\.part$")


def _tmp_prefix(name: str) -> str:
    return f"{TMP_TAG}{os.getpid()}." + name.encode("utf-8")[:40].decode("utf-8", "ignore") + "."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_parts(folder: Path) -> list[Path]:
    """Remove the temporary files/folders a killed run of this tool left in ``folder`` (named with
    :data:`TMP_TAG` and the pid of a process that no longer runs); returns what was removed. Nothing else is
    touched: files the user made never carry the tag, and a live run's temporaries keep their live pid."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TMP_PATTERN.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path`` (atomic on POSIX).

    The file ends with the permissions a plain ``open`` would give (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~process_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


PNG_COMPRESS_LEVEL = 3
"""zlib level of every PNG written (CLI, videos, server): a 512-px overlay takes 23 ms at 3 and 77 ms at Pillow's
default 6, for a file 7% larger (label maps: 0.5 vs 1.9 ms) — about a tenth of a single-person parse."""


def atomic_save_image(image: Image.Image, path: str | os.PathLike[str], format: str = "PNG") -> Path:
    """Save a PIL image to ``path`` atomically (``format`` is explicit: the temporary name has no image suffix;
    PNGs at :data:`PNG_COMPRESS_LEVEL`)."""
    params = {"compress_level": PNG_COMPRESS_LEVEL} if format.upper() == "PNG" else {}
    return atomic_write(path, lambda tmp: image.save(tmp, format=format, **params))


def slugify(text: str) -> str:
    """A file-name-safe form of a label: lowercase ASCII letters and digits joined by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "label"


def safe_name(stem: str) -> str:
    """A file name that cannot leave its folder or hide: path separators and control characters become ``_``,
    leading dots and spaces are dropped (``...jpg`` and ``..jpg`` give ``image``), at most 120 UTF-8 bytes."""
    text = unicodedata.normalize("NFC", stem)
    text = "".join("_" if ch in "/\\" or unicodedata.category(ch)[0] == "C" else ch for ch in text)
    text = text.lstrip(". ").rstrip(" ")
    text = text.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" ")
    return text if text.strip(". ") else "image"


def inside(out: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``out`` (and is not ``out`` itself), else :class:`OutputConflictError`."""
    root, target = Path(out).resolve(), Path(path).resolve()
    if target == root or root not in target.parents:
        raise OutputConflictError(f"{path}: refusing to write outside the output folder {out}")
    return Path(path)


def _is_tool_folder(directory: Path) -> bool:
    """Whether ``directory`` is a real folder (not a link) that the tool made: it holds :data:`MARKER`."""
    return directory.is_dir() and not directory.is_symlink() and (directory / MARKER).is_file()


def _mark(directory: Path) -> None:
    (directory / MARKER).write_text("made by spectrum parse; this folder may be replaced by its reruns\n")


def _refuse_foreign(directory: Path) -> None:
    """:class:`OutputConflictError` if something the tool did not make stands at ``directory``."""
    if (directory.exists() or directory.is_symlink()) and not _is_tool_folder(directory):
        raise OutputConflictError(f"{directory}: exists and was not made by spectrum (no {MARKER} marker); "
                                  "refusing to write into or replace it (move it, or choose another --out)")


def make_tool_folder(directory: Path, out: Path | None = None) -> Path:
    """Create ``directory`` (marked with :data:`MARKER`) or reuse one the tool made; a folder of the same name
    that the tool did not make is refused with :class:`OutputConflictError` (it is never written into)."""
    if out is not None:
        inside(out, directory)
    _refuse_foreign(directory)
    if not directory.is_dir():
        directory.mkdir(parents=True)
        _mark(directory)
    return directory


def output_names(inputs: Sequence[Path], reserved: Collection[str] = ()) -> dict[Path, str]:
    """A unique, safe output name per input: its stem through :func:`safe_name`, with ``__2``, ``__3``... for
    later inputs of the same name; names in ``reserved`` are never given (compared without case)."""
    names: dict[Path, str] = {}
    used = {name.lower() for name in reserved}
    for path in inputs:
        base = safe_name(path.stem)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            suffix = f"__{n}"  # the base is shortened so the suffix survives the name-length limit
            name = base.encode("utf-8")[:MAX_NAME_BYTES - len(suffix)].decode("utf-8", "ignore").rstrip(" ") + suffix
        used.add(name.lower())
        names[path] = name
    return names


def output_paths(out: Path, name: str, formats: Sequence[str]) -> dict[str, Path]:
    """Where each format of one image goes: ``NAME.png``, ``NAME_overlay.png``, ``NAME.json``, ``NAME/``;
    each checked to stay inside ``out`` (``name`` must already be safe)."""
    if name != safe_name(name):
        raise OutputConflictError(f"unsafe output name {name!r}")
    where = {"png": out / f"{name}.png", "overlay": out / f"{name}_overlay.png", "json": out / f"{name}.json",
             "masks": out / name, SIDE_BY_SIDE: out / f"{name}_overlay.png",
             **{f: out / f"{name}_tryon" for f in TRYON_FORMATS}}
    return {f: inside(out, where[f]) for f in formats}


def pending_formats(out: Path, name: str, formats: Sequence[str], overwrite: bool = False) -> list[str]:
    """The formats of one image still to write: all with ``overwrite``, else those whose output is missing."""
    paths = output_paths(out, name, formats)
    if overwrite:
        return list(formats)
    return [f for f, p in paths.items()
            if not (_is_tool_folder(p) if f == "masks" or f in TRYON_FORMATS else p.exists())]


def _write_tool_folder(directory: Path, images: Sequence[tuple[str, Any]]) -> list[Path]:
    """Mode-"L" PNGs (``name``, uint8 (H, W) array) assembled in a temporary folder renamed to ``directory``. An
    existing ``directory`` is replaced only if the tool made it (it holds :data:`MARKER`); anything else there
    raises :class:`OutputConflictError` and is left untouched. Returns the final paths."""
    from PIL import Image

    _refuse_foreign(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(directory.name), suffix=".part", dir=directory.parent))
    os.chmod(tmp, 0o777 & ~process_umask())
    try:
        _mark(tmp)
        for name, array in images:
            Image.fromarray(array, mode="L").save(tmp / f"{name}.png", compress_level=PNG_COMPRESS_LEVEL)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [directory / f"{name}.png" for name, _ in images]


def write_masks(result: ParsingResult, directory: Path) -> list[Path]:
    """Binary 0/255 mode-"L" PNGs: ``person<id>.png`` (full body) and ``person<id>_<label>.png`` per part
    (``_2``, ``_3``... for repeated labels of one person), written as a tool folder (:func:`_write_tool_folder`)."""
    import numpy as np

    images = []
    for person in result.persons:
        items = [(f"person{person.id}", person.mask)]
        seen: dict[str, int] = {}
        for part in person.parts:
            name = f"person{person.id}_{slugify(part.label)}"
            seen[name] = seen.get(name, 0) + 1
            items.append((name if seen[name] == 1 else f"{name}_{seen[name]}", part.mask))
        images += [(name, mask.cpu().numpy().astype(np.uint8) * 255) for name, mask in items]
    return _write_tool_folder(directory, images)


def write_tryon(result: ParsingResult, directory: Path, garment: str) -> list[Path]:
    """Per person, ``person<id>_agnostic_<garment>.png`` (0/255) and ``person<id>_lip.png`` (LIP ids), the inputs
    of virtual try-on pipelines (:mod:`.tryon`), written as a tool folder."""
    import numpy as np

    from .tryon import tryon_masks

    images = []
    for masks in tryon_masks(result, garment):
        images.append((f"person{masks.person}_agnostic_{garment}", masks.agnostic.astype(np.uint8) * 255))
        images.append((f"person{masks.person}_lip", masks.label_map))
    return _write_tool_folder(directory, images)


def write_outputs(result: ParsingResult, image: Image.Image | np.ndarray, out: Path, path: Path,
                  formats: Sequence[str], name: str | None = None) -> list[Path]:
    """Write one parsed image's outputs into ``out`` atomically, named ``name`` (default: the stem of ``path``):
    ``NAME.png`` (label ids), ``NAME_overlay.png``, ``NAME.json`` and ``NAME/`` masks, as chosen by ``formats``.
    Shared by every engine. Returns the paths written."""
    name = name or safe_name(path.stem)
    targets = output_paths(out, name, formats)
    written = []
    if "png" in targets:
        written.append(atomic_save_image(result.label_map_image(), targets["png"]))
    for style in ("overlay", SIDE_BY_SIDE):
        if style in targets:
            written.append(atomic_save_image(result.overlay(image, side_by_side=style == SIDE_BY_SIDE), targets[style]))
    if "masks" in targets:
        write_masks(result, targets["masks"])
        written.append(targets["masks"])
    for fmt in TRYON_FORMATS:
        if fmt in targets:
            write_tryon(result, targets[fmt], fmt.split("-", 1)[1])
            written.append(targets[fmt])
    if "json" in targets:  # last: a JSON on disk means the image's other outputs were written before it
        data: dict[str, Any] = result.to_dict(path.name)
        written.append(atomic_write_text(targets["json"], json.dumps(data)))
    return written


MANIFEST = ".spectrum-manifest.json"
"""What produced each output of a ``spectrum parse`` folder: input file (resolved path, size, mtime) and
settings (model, mode, prompts, preset, thresholds...), by output name."""


class Manifest:
    """The record of what produced each output name in an output folder (:data:`MANIFEST`).

    A rerun skips an input only when the name's entry matches exactly (same input file, unchanged, same
    settings) and its outputs exist; a name whose outputs came from another input or other settings is redone
    with ``--overwrite`` and otherwise refused with one line, never silently kept. Inputs keep the names the
    manifest gave them, so adding ``a/x.jpg`` to a folder made from ``b/x.jpg`` gives ``a/x.jpg`` a new name.
    """

    def __init__(self, out: Path, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.out = Path(out)
        self.entries: dict[str, dict[str, Any]] = dict(entries or {})
        self._changed: set[str] = set()

    @classmethod
    def load(cls, out: Path) -> Manifest:
        """The manifest of ``out`` (empty when there is none); a damaged one is an error naming the file."""
        path = Path(out) / MANIFEST
        if not path.is_file():
            return cls(out)
        return cls(out, cls._read(path))

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        """The entries of a manifest file; a damaged one (not JSON, entries that are not records) is one
        ValueError naming the file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["entries"]
            if not isinstance(entries, dict):
                raise TypeError("entries is not an object")
            for name, entry in entries.items():
                if not (isinstance(entry, dict) and isinstance(entry.get("input"), str)
                        and isinstance(entry.get("settings"), dict)):
                    raise TypeError(f"the entry of {name!r:.60} is not a record of an input and its settings")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
            raise ValueError(f"{path}: damaged manifest ({err}); move it away to start the folder afresh") from None
        return entries

    def save(self) -> None:
        """Write the manifest atomically, merged under a lock with what other runs recorded meanwhile (two runs
        writing one folder each keep their entries; for one name, the later write wins)."""
        import fcntl

        self.out.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.out, os.O_RDONLY)  # the folder itself is the lock: no file left behind
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                path = self.out / MANIFEST
                merged = self._read(path) if path.is_file() else {}
                merged.update({name: self.entries[name] for name in self._changed if name in self.entries})
                self.entries = {**merged, **{k: v for k, v in self.entries.items() if k not in merged}}
                atomic_write_text(path, json.dumps({"version": 1, "entries": merged}, indent=1))
                self._changed.clear()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        finally:
            os.close(lock)

    @staticmethod
    def describe(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
        """The entry for ``path`` parsed with ``settings``."""
        stat = Path(path).stat()
        return {"input": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "settings": json.loads(json.dumps(settings, sort_keys=True, default=str))}

    def names(self, inputs: Sequence[Path]) -> dict[Path, str]:
        """Output names: an input recorded in the manifest keeps its name; the others get fresh unique names
        (:func:`output_names` rules) that no recorded input uses."""
        recorded = {entry["input"]: name for name, entry in self.entries.items()}
        known = {path: recorded.get(str(Path(path).resolve())) for path in inputs}
        fresh = output_names([p for p, name in known.items() if name is None], reserved=self.entries)
        return {path: name if name is not None else fresh[path] for path, name in known.items()}

    def matches(self, name: str, path: Path, settings: dict[str, Any]) -> bool | None:
        """True when ``name`` was made from ``path`` as it is now with ``settings``; False when made otherwise;
        None when the manifest does not know ``name``."""
        entry = self.entries.get(name)
        if entry is None:
            return None
        return entry == self.describe(path, settings)

    def record(self, name: str, path: Path, settings: dict[str, Any]) -> None:
        """Record that ``name`` is made from ``path`` with ``settings`` (saved by :meth:`save`). Recorded *before*
        the outputs are written, it marks half-written outputs of a killed run as the tool's own, so a rerun
        completes them instead of refusing them."""
        self.entries[name] = self.describe(path, settings)
        self._changed.add(name)

    def intend(self, items: Iterable[tuple[str, Path]], settings: dict[str, Any]) -> None:
        """Record every ``(name, path)`` about to be written, then save: the intent first, so a run killed while
        writing leaves outputs known as ours (see :meth:`record`)."""
        recorded = False
        for name, path in items:
            self.record(name, path, settings)
            recorded = True
        if recorded:
            self.save()
