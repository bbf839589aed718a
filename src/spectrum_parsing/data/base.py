"""Base class and shared helpers for dataset readers.

Every reader lists its files when constructed and decodes one sample per ``__getitem__``, producing a validated
:class:`~spectrum_parsing.data.sample.Sample`. Readers hold only paths, strings and small dicts, so they pickle
cheaply into DataLoader workers.

Splits: ``split`` is ``"train"``, ``"val"`` or ``"all"``. A reader uses the dataset's official split when its
files carry one (split directories, id lists). Otherwise :func:`split_ids` applies one deterministic rule: sort
the ids, and the id at sorted position ``k`` is in ``val`` when ``k % round(1 / val_fraction) == 0``
(``val_fraction=0.1`` puts ids 0, 10, 20, ... of the sorted list in val); ``train`` is the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ..vocab.labels import lookup_canonical, map_to_canonical, warn_once  # noqa: F401 (re-exported)
from .sample import IGNORE_ID, Sample, Segment

SPLITS: tuple[str, ...] = ("train", "val", "all")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    return split


def val_period(val_fraction: float) -> int:
    """Every how many sorted ids one goes to val: ``round(1 / val_fraction)`` (at least 1)."""
    if not 0.0 < val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in (0, 1]; got {val_fraction}")
    return max(1, round(1.0 / val_fraction))


def split_ids(ids: Iterable[str], split: str, val_fraction: float = 0.1) -> list[str]:
    """The sorted ``ids`` in ``split`` under the deterministic rule (see the module docstring)."""
    check_split(split)
    ordered = sorted(set(ids))
    if split == "all":
        return ordered
    period = val_period(val_fraction)
    want_val = split == "val"
    return [i for k, i in enumerate(ordered) if (k % period == 0) == want_val]


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB, applying its EXIF orientation."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_label_png(path: str | Path) -> np.ndarray:
    """Read an id PNG as a 2-D array of its stored values (palette indices for mode ``P``).

    A 3-channel file whose channels are all equal (grey ids saved as RGB) is accepted; a real colour label map
    raises ValueError naming the file.
    """
    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim == 3:
        if arr.shape[2] >= 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]
        else:
            raise ValueError(f"{path}: expected a label PNG of ids (mode P/L), got a colour image")
    return arr


def check_same_size(image: np.ndarray, label: np.ndarray, label_path: str | Path) -> None:
    """Raise ValueError naming ``label_path`` when the label map's size differs from the image's."""
    got, want = tuple(label.shape[:2]), tuple(image.shape[:2])
    if got != want:
        raise ValueError(f"{label_path}: label size {got} (H, W) does not match its image {want}")


def clean_label_map(label: np.ndarray, num_classes: int, source: str | Path) -> np.ndarray:
    """Cast ``label`` to int32; ids outside ``[0, num_classes)`` (other than IGNORE_ID) become IGNORE_ID."""
    sem = label.astype(np.int32, copy=True)
    bad = (sem < 0) | ((sem >= num_classes) & (sem != IGNORE_ID))
    if bad.any():
        ids = sorted(int(v) for v in np.unique(sem[bad]))
        warn_once(f"{source}: label ids {ids} are not in the dataset's {num_classes} classes; treated as ignore")
        sem[bad] = IGNORE_ID
    return sem


def label_map_segments(
    semantic: np.ndarray, canonical: Sequence[str | None], persons: np.ndarray | None = None
) -> list[Segment]:
    """Build segments from a dataset-id label map.

    Without ``persons`` (single-person data): one ``person`` segment (person 0) = every pixel whose class has a
    canonical name (i.e. not background, not ignored), then one segment per present class. With ``persons`` (an
    (H, W) map of raw person ids, 0 = no person): the same per person, where persons are renumbered 0..N-1 in the
    order of their raw ids. Classes sharing a canonical name are merged into one segment per person; a class
    whose canonical name is ``person`` only contributes to the ``person`` segment.
    """
    num = len(canonical)
    valid = (semantic >= 0) & (semantic < num)
    lut = np.array([c is not None for c in canonical], dtype=bool)
    foreground = np.zeros(semantic.shape, dtype=bool)
    foreground[valid] = lut[semantic[valid]]
    if persons is None:
        groups: list[tuple[int, np.ndarray]] = [(0, foreground)]
    else:
        if persons.shape != semantic.shape:
            raise ValueError(f"person map {persons.shape} != label map {semantic.shape}")
        raw_ids = [int(v) for v in np.unique(persons) if v != 0]
        groups = [(k, foreground & (persons == raw)) for k, raw in enumerate(raw_ids)]
    segments: list[Segment] = []
    for person, region in groups:
        if not region.any():
            continue
        segments.append(Segment("person", region.copy(), person))
        present = np.unique(semantic[region])
        merged: dict[str, np.ndarray] = {}
        for cid in present.tolist():
            name = canonical[cid]
            if name is None or name == "person":
                continue
            mask = region & (semantic == cid)
            merged[name] = merged[name] | mask if name in merged else mask
        segments.extend(Segment(name, mask, person) for name, mask in merged.items())
    return segments


def ignore_mask(semantic: np.ndarray) -> np.ndarray | None:
    """Bool mask of IGNORE_ID pixels, or None when there are none."""
    ign = semantic == IGNORE_ID
    return ign if ign.any() else None


class ParsingDataset(Dataset):
    """A human-parsing dataset: ``ds[i]`` is a validated :class:`Sample`.

    Attributes: ``name`` (format name), ``root`` (its path), ``split``, ``classes`` (the dataset's own label
    names, index = id, 0 = background), ``canonical`` (per class id the canonical category name, None for
    background), ``image_ids`` (the ids in this split, sorted). Subclasses fill these in ``__init__`` and
    implement :meth:`_load`.
    """

    name: str = ""
    labels: tuple[str, ...] = ()
    """The format's fixed label names (index = id), set as ``classes`` by the base constructor."""
    label_overrides: dict[str, str] | None = None
    """Raw label -> canonical name where the vocabulary's own lookup would be wrong or fail."""

    def __init__(self, root: str | Path, split: str = "all", val_fraction: float = 0.1) -> None:
        self.root = Path(root)
        self.split = check_split(split)
        self.val_fraction = float(val_fraction)
        val_period(self.val_fraction)  # validates the fraction early
        self.classes: list[str] = []
        self.canonical: list[str | None] = []
        self.image_ids: list[str] = []
        if self.labels:
            self.set_labels(self.labels)

    def set_labels(self, classes: Sequence[str], overrides: dict[str, str] | None = None,
                   source: str | None = None) -> None:
        """Set ``classes`` and their canonical names (``overrides`` default to :attr:`label_overrides`)."""
        self.classes = list(classes)
        self.canonical = map_to_canonical(self.classes, overrides if overrides is not None else self.label_overrides,
                                          source=source or self.name)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> Sample:
        return self.load(self.image_ids[index])

    def load(self, image_id: str) -> Sample:
        """Decode the sample with this image id (validated)."""
        return self._load(image_id).validate()

    def _load(self, image_id: str) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, ids: Iterable[str], official: dict[str, str] | None = None) -> list[str]:
        """The sorted ids of ``ids`` in ``self.split``.

        ``official`` maps ids to ``"train"``/``"val"`` where the dataset says so; ids it does not cover fall back
        to the deterministic rule (applied among those ids only).
        """
        ids = sorted(set(ids))
        if self.split == "all":
            return ids
        official = official or {}
        chosen = [i for i in ids if official.get(i) == self.split]
        rest = [i for i in ids if i not in official]
        chosen += split_ids(rest, self.split, self.val_fraction)
        return sorted(chosen)

    def _sample(
        self,
        image_id: str,
        image: np.ndarray,
        semantic: np.ndarray,
        persons: np.ndarray | None = None,
    ) -> Sample:
        """A Sample from an image and its cleaned label map (and optional person-id map)."""
        return Sample(
            image=image,
            segments=label_map_segments(semantic, self.canonical, persons),
            semantic=semantic,
            classes=list(self.classes),
            image_id=image_id,
            dataset=self.name,
            ignore=ignore_mask(semantic),
            has_instances=persons is not None,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


def find_dirs(root: Path, predicate: Callable[[Path], bool], max_depth: int = 3) -> list[Path]:
    """Directories under ``root`` (itself included, at most ``max_depth`` levels down) satisfying ``predicate``."""
    found: list[Path] = []
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for d in frontier:
            if predicate(d):
                found.append(d)
            try:
                with os.scandir(d) as it:
                    subdirs = [Path(e.path) for e in it if not e.name.startswith(".") and e.is_dir()]
            except OSError:
                continue
            nxt.extend(sorted(subdirs))
        frontier = nxt
    return found


def files_by_stem(directory: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """Map file stem -> path for the files in ``directory`` with one of ``extensions`` (case-insensitive)."""
    if not directory.is_dir():
        return {}
    exts = {e.lower() for e in extensions}
    with os.scandir(directory) as it:
        names = sorted(e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in exts)
    out: dict[str, Path] = {}
    for n in names:
        out.setdefault(os.path.splitext(n)[0], directory / n)
    return out


def read_id_list(path: Path) -> list[str]:
    """Ids listed one per line (first whitespace-separated token; the file stem when a path is given)."""
    ids: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.append(Path(line.split()[0]).stem)
    return ids
