"""Dataset label presets and user label maps (merge / rename / fixed ids) for the parsing outputs.

Presets
-------
A :class:`Preset` is a dataset's label scheme: ``classes`` (the dataset's label names, index = id, 0 is the
background), ``prompts`` (the canonical prompt scored for each class id >= 1) and ``palette`` (the dataset's
usual colours by id). Parsing with a preset scores exactly those prompts and writes the dataset's ids, so the
label PNGs drop into pipelines built on that dataset (e.g. virtual try-on on LIP/CIHP ids)::

    pipe(image, preset="lip")            # label_map values are LIP ids 0..19

Built in (:data:`PRESETS`): ``lip``, ``atr``, ``cihp``, ``pascal-person-part``, ``ccp``. All use the PASCAL VOC
colour map by id (the palette of the public LIP/CIHP/ATR/PASCAL-Person-Part releases; CCP ships no palette).

Label maps
----------
A label map is a JSON object that rewrites the output labels; every section is optional, unknown keys are
errors::

    {
      "merge":  {"t-shirt": "upper clothes", "shirt": "upper clothes"},
      "rename": {"pants": "trousers"},
      "labels": {"1": "upper clothes", "2": "trousers"},
      "description": "free text, ignored"
    }

Labels are matched case-insensitively with ``-``/``_`` read as spaces, then by canonical category (so
``"upper clothes"`` matches LIP's ``"upper-clothes"``). Steps, in this order:

1. ``merge`` (label -> target): the label's pixels and parts take the target label. A target that names an
   existing label joins it (keeping that label's name and id); otherwise it is a new label. A target may not be
   merged itself (no chains).
2. ``rename`` (label -> new name): changes the name only (same pixels, same id). Applies after merging (a merge
   target may be renamed); renaming onto a name that is still in use is an error (use ``merge``).
3. ``labels`` (id -> name): the output label set with fixed ids (1..255, unique ids and names). Labels not listed
   are dropped (background in the label map, removed from the persons' parts); a listed name that matches no
   label is an error. Listed names keep the spelling given here. Without a preset and without prompts, the
   prompts scored are the ones that produce the listed names (the merge/rename sources, and each listed name
   that is not a rename target).

Without ``labels``, ids are kept: with a preset, each label keeps its dataset id (a merged label takes the id of
the label it joins, or the smallest id among its sources); without a preset, ids are renumbered 1..N in order.
Every key of ``merge`` and ``rename`` must match a label. Parts keep their own masks and scores: a person may
end up with several parts of one merged label.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .vocab.categories import canonical_name
from .vocab.labels import (
    ATR_LABELS,
    CCP_LABELS,
    CIHP_LABELS,
    LIP_LABELS,
    PASCAL_PERSON_PART_LABELS,
    map_to_canonical,
    voc_colormap,
)
from .vocab.labels import CIHP_CANONICAL_OVERRIDES as _CIHP_OVERRIDES

__all__ = [
    "PRESETS",
    "LabelScheme",
    "Preset",
    "apply_label_map",
    "get_preset",
    "label_map_prompts",
    "load_label_map",
    "validate_label_map",
]

LABEL_MAP_KEYS = ("labels", "merge", "rename", "description")
"""The top-level keys a label-map JSON object may have."""

MAX_LABEL_ID = 255
"""Largest id a label PNG (8-bit palette) can hold."""


def _norm(text: str) -> str:
    """Matching key of a label: lowercase, ``-``/``_`` as spaces, single spaces."""
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


@dataclass
class Preset:
    """A dataset's label scheme: names by id, the prompt scored for each id >= 1, and colours by id."""

    name: str
    classes: list[str]
    prompts: list[str]
    palette: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        self.classes, self.prompts = list(self.classes), list(self.prompts)
        if len(self.classes) < 2:
            raise ValueError(f"preset {self.name!r}: needs the background and at least one class")
        if len(self.classes) > MAX_LABEL_ID + 1:
            raise ValueError(f"preset {self.name!r}: at most {MAX_LABEL_ID} classes fit in a label PNG")
        if len(self.prompts) != len(self.classes) - 1:
            raise ValueError(f"preset {self.name!r}: {len(self.prompts)} prompts for {len(self.classes) - 1} "
                             "classes (one prompt per class id >= 1)")
        if len({_norm(p) for p in self.prompts}) != len(self.prompts):
            raise ValueError(f"preset {self.name!r}: prompts must be distinct")
        self.palette = np.asarray(self.palette, dtype=np.uint8)
        if self.palette.shape != (len(self.classes), 3):
            raise ValueError(f"preset {self.name!r}: palette must be ({len(self.classes)}, 3), "
                             f"got {self.palette.shape}")

    @property
    def label_ids(self) -> list[int]:
        """The class ids written to label maps (1..n-1; 0 is the background)."""
        return list(range(1, len(self.classes)))


def _dataset_preset(name: str, classes: Sequence[str], overrides: dict[str, str] | None = None) -> Preset:
    prompts = map_to_canonical(classes, overrides, source=name)[1:]
    return Preset(name, list(classes), [p for p in prompts if p is not None], voc_colormap(len(classes)))


PRESETS: dict[str, Preset] = {
    "lip": _dataset_preset("lip", LIP_LABELS),
    "atr": _dataset_preset("atr", ATR_LABELS),
    "cihp": _dataset_preset("cihp", CIHP_LABELS, _CIHP_OVERRIDES),
    "pascal-person-part": _dataset_preset("pascal-person-part", PASCAL_PERSON_PART_LABELS),
    "ccp": _dataset_preset("ccp", CCP_LABELS),
}
"""Built-in presets by name."""

_ALIASES = {"pascal": "pascal-person-part", "ppp": "pascal-person-part", "pascal-part": "pascal-person-part"}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (case-insensitive; ``_`` as ``-``); a :class:`Preset` is returned as is."""
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise TypeError(f"preset must be a name or a Preset, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[key]


# ------------------------------------------------------------------------------------------------ label maps
def _string_table(data: Mapping[str, Any], key: str, source: str) -> dict[str, str]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ValueError(f"{source}: {key!r} must be an object of label -> label, got {type(table).__name__}")
    out: dict[str, str] = {}
    for k, v in table.items():
        if not isinstance(v, str) or not v.strip() or not k.strip():
            raise ValueError(f"{source}: {key!r} maps {k!r} to {v!r}: both must be non-empty strings")
        if _norm(k) in {_norm(o) for o in out}:
            raise ValueError(f"{source}: {key!r} lists {k!r} twice")
        for text in (k, v):
            _check_name(text, source, key)
        out[k.strip()] = v.strip()
    return out


def _check_name(text: str, source: str, key: str) -> None:
    from .prompts import unsafe_character

    bad = unsafe_character(text)
    if bad:
        raise ValueError(f"{source}: {key!r} name {text[:40]!r} contains a control, bidirectional-control, "
                         f"invisible or unassigned character ({bad})")


def validate_label_map(data: Any, source: str = "label map") -> dict[str, Any]:
    """Check a label-map object (see the module docstring); returns a cleaned copy with int ``labels`` keys.

    Raises ValueError naming ``source`` and the offending entry.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a label map must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(LABEL_MAP_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; allowed: {', '.join(LABEL_MAP_KEYS)}")
    merge = _string_table(data, "merge", source)
    rename = _string_table(data, "rename", source)
    merge_keys = {_norm(k) for k in merge}
    for k, v in merge.items():
        if _norm(v) in merge_keys:
            raise ValueError(f"{source}: merge target {v!r} (of {k!r}) is itself merged; merge into the final "
                             "label directly")
    both = sorted(k for k in rename if _norm(k) in merge_keys)
    if both:
        raise ValueError(f"{source}: {both} both merged and renamed; rename the merge target instead")
    targets = [_norm(v) for v in rename.values()]
    if len(set(targets)) != len(targets):
        raise ValueError(f"{source}: two labels renamed to the same name; use 'merge' to combine labels")
    labels_raw = data.get("labels", None)
    labels: dict[int, str] | None = None
    if labels_raw is not None:
        if not isinstance(labels_raw, dict) or not labels_raw:
            raise ValueError(f"{source}: 'labels' must be a non-empty object of id -> name, e.g. "
                             '{"1": "upper clothes"}')
        labels = {}
        for k, v in labels_raw.items():
            try:
                label_id = int(k)
            except (TypeError, ValueError):
                raise ValueError(f"{source}: 'labels' key {k!r} is not an integer id") from None
            if not 1 <= label_id <= MAX_LABEL_ID:
                raise ValueError(f"{source}: 'labels' id {label_id} out of range 1..{MAX_LABEL_ID} "
                                 "(0 is the background)")
            if label_id in labels:
                raise ValueError(f"{source}: 'labels' id {label_id} given twice")
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{source}: 'labels' id {label_id} must name a label (non-empty string)")
            if _norm(v) in {_norm(o) for o in labels.values()}:
                raise ValueError(f"{source}: 'labels' lists the name {v!r} twice")
            _check_name(v, source, "labels")
            labels[label_id] = v.strip()
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{source}: 'description' must be a string")
    out: dict[str, Any] = {"merge": merge, "rename": rename}
    if labels is not None:
        out["labels"] = dict(sorted(labels.items()))
    if description:
        out["description"] = description
    return out


def load_label_map(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a label-map JSON file (schema in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label map {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a label map") from None
    return validate_label_map(data, source=str(path))


def _as_label_map(label_map: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A validated label map from a dict (validated again: validation is idempotent) or a JSON file path."""
    if isinstance(label_map, (str, os.PathLike)):
        return load_label_map(label_map)
    return validate_label_map(dict(label_map) if isinstance(label_map, Mapping) else label_map)


def _final_text(text: str, merge: dict[str, str], rename: dict[str, str]) -> str:
    """The output name of a label text after merge then rename (text matching only)."""
    merged = next((v for k, v in merge.items() if _norm(k) == _norm(text)), text)
    return next((v for k, v in rename.items() if _norm(k) == _norm(merged)), merged)


def label_map_prompts(label_map: Mapping[str, Any] | str | os.PathLike[str]) -> list[str] | None:
    """The prompts a label map implies (None without ``labels``): for each listed name (by id), the merge and
    rename sources producing it, then the name itself unless it is a rename target."""
    lm = _as_label_map(label_map)
    if "labels" not in lm:
        return None
    merge, rename = lm["merge"], lm["rename"]
    rename_targets = {_norm(v) for v in rename.values()}
    candidates = [*merge, *merge.values(), *rename, *lm["labels"].values()]
    prompts: dict[str, str] = {}
    for name in lm["labels"].values():
        for text in candidates:
            if _norm(_final_text(text, merge, rename)) == _norm(name) and _norm(text) not in rename_targets:
                prompts.setdefault(_norm(text), text)
    return list(prompts.values())


@dataclass
class LabelScheme:
    """Output labels after a label map: ``names[i]`` is written with id ``ids[i]``; ``source_ids[j]`` /
    ``source_names[j]`` are the output id / name of source label ``j`` (0 / None: dropped)."""

    names: list[str]
    ids: list[int]
    source_ids: list[int]
    source_names: list[str | None]


def _matches(key: str, labels: Sequence[str]) -> list[int]:
    """Indices of ``labels`` matching ``key``: by normalised text, else by canonical category."""
    exact = [i for i, label in enumerate(labels) if _norm(label) == _norm(key)]
    if exact:
        return exact
    canon = canonical_name(key)
    return [i for i, label in enumerate(labels) if canon is not None and canonical_name(label) == canon]


def apply_label_map(labels: Sequence[str], ids: Sequence[int] | None = None,
                    label_map: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                    keep_ids: bool = False) -> LabelScheme:
    """Apply ``label_map`` to source ``labels`` (with ids ``ids``, default 1..n); see the module docstring.

    ``keep_ids``: without a ``labels`` section, keep the source ids (a preset's) instead of renumbering 1..N.
    """
    labels = list(labels)
    ids = list(range(1, len(labels) + 1)) if ids is None else [int(i) for i in ids]
    if len(ids) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(ids)} ids")
    if label_map is None:
        return LabelScheme(labels, ids, ids, list(labels))
    lm = _as_label_map(label_map)
    merge, rename = lm["merge"], lm["rename"]
    shown = ", ".join(labels)

    def matched(section: str, key: str) -> list[int]:
        found = _matches(key, labels)
        if not found:
            raise ValueError(f"label map: {section} key {key!r} matches none of the labels ({shown})")
        return found

    # 1. merge: every source label j belongs to group group_of[j] (>= 0: a source label's index; < 0: a new name).
    group_of = list(range(len(labels)))
    group_name: dict[int, str] = {j: label for j, label in enumerate(labels)}
    new_groups: dict[str, int] = {}
    for key, target in merge.items():
        existing = _matches(target, labels)
        for j in matched("merge", key):
            if existing:
                if j not in existing:
                    group_of[j] = group_of[existing[0]]
            else:
                group_of[j] = new_groups.setdefault(_norm(target), -1 - len(new_groups))
                group_name[group_of[j]] = target
    used = list(dict.fromkeys(group_of))
    # 2. rename: output names of groups.
    before = dict(group_name)
    for key, new in rename.items():
        hits = {g for g in used if _norm(before[g]) == _norm(key)}
        for g in hits or {group_of[j] for j in matched("rename", key)}:
            group_name[g] = new
    seen: dict[str, int] = {}
    for g in used:
        if seen.setdefault(_norm(group_name[g]), g) != g:
            raise ValueError(f"label map: two different labels end up named {group_name[g]!r}; use 'merge' to "
                             "combine labels")
    # 3. ids.
    if "labels" in lm:
        names_out = [group_name[g] for g in used]
        group_id: dict[int, int] = {}
        final_name: dict[int, str] = {}
        for label_id, name in lm["labels"].items():
            hit = _matches(name, names_out)
            if not hit:
                raise ValueError(f"label map: 'labels' id {label_id} {name!r} matches none of the output labels "
                                 f"({', '.join(names_out)})")
            for i in hit:
                if used[i] in group_id:
                    raise ValueError(f"label map: output label {names_out[i]!r} is listed twice in 'labels'")
                group_id[used[i]], final_name[used[i]] = label_id, name
        return LabelScheme(list(lm["labels"].values()), list(lm["labels"]), [group_id.get(g, 0) for g in group_of],
                           [final_name.get(g) for g in group_of])

    def own_id(g: int) -> int:
        members = [ids[j] for j in range(len(labels)) if group_of[j] == g]
        return ids[g] if g >= 0 else min(members)

    by_id = sorted(used, key=own_id)
    group_id = {g: own_id(g) if keep_ids else k + 1 for k, g in enumerate(by_id)}
    return LabelScheme([group_name[g] for g in by_id], [group_id[g] for g in by_id],
                       [group_id[g] for g in group_of], [group_name[g] for g in group_of])
