"""Feature cache for frozen backbones: run the backbone once, then train the decoder from disk.

A cache holds ``num_entries`` training *views*. View ``i`` is exactly what the training mixture produces for
sample index ``i`` (dataset choice, copy-paste composite, resize, flip, scale/crop, colour jitter — all fixed
by ``(seed, i)``), stored with its targets and the backbone features of its image. Augmentation is therefore
frozen per view; to keep variety, cache several views per image (``num_entries`` > dataset size). The cache
records the backbone config and refuses to serve a model with a different backbone, with one exception: a cache
built with a *fusion* backbone also serves any model whose backbone is one of its members, or a fusion of some
of them (in any order), by slicing the channels of each member out of the stored maps. One cache of
``{lite0, lite2, bodypix}`` thus trains the Lite0, Lite2, BodyPix and Lite2 + BodyPix decoders on exactly the
same views, which is what an ablation needs.

Layout: ``index.json`` + ``shard-00000.safetensors``, ... each holding ``shard_size`` entries as tensors
``{j}.stride4`` ... ``{j}.stride32`` (C, h, w), ``{j}.masks`` (T, H, W uint8), ``{j}.ignore`` (H, W uint8),
with per-entry ``image_id`` and ``categories`` in the shard's metadata.

The reader trusts nothing it did not check: ``index.json`` must be well formed (counts that add up, shard files
named inside the cache folder), each shard's SHA-256 must be the one the index recorded (checked the first time
the shard is read), and each shard names the backbone it was built with, which must be the index's. A rebuild
removes the old index first and writes the new one last, so a killed rebuild leaves no index, never new shards
under an old one. Every problem is one :class:`~spectrum_parsing.hub.ModelLoadError` naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .backbones.base import DTYPES
from .configs import STRIDES, ConfigBase
from .data.targets import TargetConfig, TrainingExample, collate
from .hub import ModelLoadError


def _pad32(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[-2:]
    return torch.nn.functional.pad(image, (0, (-w) % 32, 0, (-h) % 32))


@torch.no_grad()
def build_feature_cache(model: Any, dataset: Dataset, num_entries: int, directory: str | os.PathLike[str],
                        shard_size: int = 64, dtype: str = "float16", progress: bool = True) -> Path:
    """Write ``num_entries`` views of ``dataset`` (index -> (index, TrainingExample)) with their features."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.json").unlink(missing_ok=True)  # a killed rebuild leaves no index, not a stale one
    shards, tensors, entries = [], {}, []
    backbone = json.dumps(model.backbone.config.to_dict(), sort_keys=True)
    bar = tqdm(range(num_entries), desc="feature cache", unit="view", disable=not progress)

    def flush() -> None:
        name = f"shard-{len(shards):05d}.safetensors"
        save_file(tensors, str(directory / name), metadata={"entries": json.dumps(entries), "backbone": backbone})
        shards.append({"file": name, "entries": len(entries), "sha256": _sha256(directory / name)})
        tensors.clear()
        entries.clear()

    for i in bar:
        _, example = dataset[i]
        image = _pad32(example.image)
        feats = model.extract_features(image[None].to(model.device))
        j = len(entries)
        for s in STRIDES:
            tensors[f"{j}.stride{s}"] = feats[s][0].to(DTYPES[dtype]).contiguous().cpu()
        tensors[f"{j}.masks"] = example.masks.to(torch.uint8).contiguous()
        ignore = example.ignore if example.ignore is not None else torch.zeros(example.image.shape[-2:], dtype=bool)
        tensors[f"{j}.ignore"] = ignore.to(torch.uint8).contiguous()
        entries.append({"image_id": example.image_id, "categories": list(example.categories),
                        "size": list(example.image.shape[-2:]), "label_space": example.label_space,
                        "absent": list(example.absent)})
        if len(entries) == shard_size:
            flush()
    if entries:
        flush()
    index = {"backbone": model.backbone.config.to_dict(), "num_entries": num_entries, "shard_size": shard_size,
             "dtype": dtype, "shards": shards, "member_channels": _member_channels(model.backbone)}
    from .writers import atomic_write_text

    atomic_write_text(directory / "index.json", json.dumps(index, indent=2))  # last: the cache is complete
    return directory


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_index(index: Any, directory: Path) -> None:
    """Raise ModelLoadError naming ``index.json`` unless it is a well-formed cache index."""
    where = directory / "index.json"

    def bad(why: str) -> ModelLoadError:
        return ModelLoadError(f"{where}: damaged feature-cache index ({why})")

    if not isinstance(index, dict):
        raise bad("not a JSON object")
    for key, kind in (("backbone", dict), ("num_entries", int), ("shard_size", int), ("shards", list)):
        if not isinstance(index.get(key), kind) or isinstance(index.get(key), bool):
            raise bad(f"{key!r} missing or not {kind.__name__}")
    if index["num_entries"] < 1 or index["shard_size"] < 1:
        raise bad("num_entries and shard_size must be >= 1")
    total = 0
    for k, shard in enumerate(index["shards"]):
        if not (isinstance(shard, dict) and isinstance(shard.get("file"), str)
                and isinstance(shard.get("entries"), int) and isinstance(shard.get("sha256"), str)):
            raise bad(f"shard {k} is not a record of its file, entries and sha256")
        name = shard["file"]
        if Path(name).name != name or name.startswith(".") or not (directory / name).resolve().is_relative_to(
                directory.resolve()):
            raise bad(f"shard file {name!r:.60} is not a file of the cache folder")
        if not (directory / name).is_file():
            raise bad(f"shard file {name} is missing")
        last = k == len(index["shards"]) - 1
        if not 1 <= shard["entries"] <= index["shard_size"] or (not last and shard["entries"] != index["shard_size"]):
            raise bad(f"shard {name} holds {shard['entries']} entries, the index's shards hold {index['shard_size']}")
        total += shard["entries"]
    if total != index["num_entries"]:
        raise bad(f"num_entries {index['num_entries']} but the shards hold {total}")


def _member_channels(backbone: Any) -> list[dict[str, int]]:
    """Channels per stride of each fusion member (one entry for a plain backbone), as stored in ``index.json``."""
    members = list(backbone.members) if hasattr(backbone, "members") else [backbone]
    return [{str(s): int(c) for s, c in m.feature_channels().items()} for m in members]


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "dtype"}


def _differing(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(want) | set(have) if k != "dtype" and want.get(k) != have.get(k))


def member_slices(want: dict[str, Any], index: dict[str, Any]) -> dict[int, list[tuple[int, int]]] | None:
    """Channel ranges per stride that make the cache's fused features into ``want``'s features.

    ``want`` must be one of the cached fusion's members, or a fusion of some of them. Returns
    ``{stride: [(start, stop), ...]}`` in ``want``'s member order, or None when the cache cannot serve ``want``.
    """
    have = index["backbone"]
    channels = index.get("member_channels")
    if have.get("type") != "fusion" or not channels:
        return None
    cached = [_comparable(m) for m in have["members"]]
    wanted = [_comparable(m) for m in (want["members"] if want.get("type") == "fusion" else [want])]
    order = []
    for m in wanted:
        if m not in cached:
            return None
        order.append(cached.index(m))
    slices: dict[int, list[tuple[int, int]]] = {}
    for s in STRIDES:
        starts = [0]
        for c in channels:
            starts.append(starts[-1] + int(c[str(s)]))
        slices[s] = [(starts[j], starts[j + 1]) for j in order]
    return slices


class FeatureCacheDataset(Dataset):
    """Serves cached views: index -> (index, (features, TrainingExample without pixels))."""

    def __init__(self, directory: str | os.PathLike[str], backbone_config: ConfigBase | None = None,
                 targets: TargetConfig | None = None) -> None:
        self.directory = Path(directory)
        index_file = self.directory / "index.json"
        if not index_file.is_file():
            raise ModelLoadError(f"{directory}: not a feature cache (no index.json; an unfinished build leaves none)")
        try:
            self.index = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as err:
            raise ModelLoadError(f"{index_file}: not a feature-cache index ({err})") from None
        _check_index(self.index, self.directory)
        self._verified: set[int] = set()
        self.slices: dict[int, list[tuple[int, int]]] | None = None
        if backbone_config is not None:
            want, have = backbone_config.to_dict(), self.index["backbone"]
            diff = _differing(want, have)
            if diff:
                self.slices = member_slices(want, self.index)
                if self.slices is None:
                    raise ModelLoadError(f"feature cache {directory} was built with another backbone (differs in "
                                         f"{diff}), and that backbone is not one of its fusion members or a fusion "
                                         "of them")
        self.num_entries = int(self.index["num_entries"])
        self.shard_size = int(self.index["shard_size"])
        self.targets = targets or TargetConfig()

    def __len__(self) -> int:
        return self.num_entries

    def __getitem__(self, i: int) -> tuple[int, tuple[dict[int, torch.Tensor], TrainingExample]]:
        from safetensors import SafetensorError, safe_open

        shard, j = divmod(i % self.num_entries, self.shard_size)
        record = self.index["shards"][shard]
        path = self.directory / record["file"]
        if shard not in self._verified:  # once per shard and process: the bytes the index recorded
            if _sha256(path) != record["sha256"]:
                raise ModelLoadError(f"{path}: not the shard this cache's index recorded (changed, truncated, or from "
                                     "another cache); rebuild the cache")
            self._verified.add(shard)
        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
                if json.loads(metadata.get("backbone", "null")) != self.index["backbone"]:
                    raise ModelLoadError(f"{path}: built with another backbone than {self.directory / 'index.json'} "
                                         "says; rebuild the cache")
                meta = json.loads(metadata["entries"])[j]
                if self.slices is None:
                    feats = {s: f.get_tensor(f"{j}.stride{s}").float() for s in STRIDES}
                else:
                    feats = {}
                    for s in STRIDES:
                        stored = f.get_slice(f"{j}.stride{s}")
                        feats[s] = torch.cat([stored[a:b] for a, b in self.slices[s]]).float()
                masks = f.get_tensor(f"{j}.masks").bool()
                ignore = f.get_tensor(f"{j}.ignore").bool()
        except (SafetensorError, OSError, KeyError, IndexError, TypeError, ValueError) as err:
            if isinstance(err, ModelLoadError):
                raise
            raise ModelLoadError(f"{path}: damaged feature-cache shard ({type(err).__name__}: {str(err)[:120]})"
                                 ) from None
        h, w = meta["size"]
        example = TrainingExample(image=torch.zeros(3, h, w), masks=masks, categories=meta["categories"],
                                  ignore=ignore, image_id=meta["image_id"], label_space=meta.get("label_space"),
                                  absent=list(meta.get("absent", [])))
        return i, (feats, example)

    def cycled(self, length: int) -> _Cycled:
        """A view of this cache of ``length`` items that wraps around."""
        return _Cycled(self, length)

    def collate(self, items: list[tuple[int, tuple[dict[int, torch.Tensor], TrainingExample]]]) -> dict[str, Any]:
        """Like :func:`targets.collate`, with stacked cached ``features`` in place of images."""
        import numpy as np

        rng = np.random.default_rng([0, 1_000_003, items[0][0]])
        batch = collate([ex for _, (_, ex) in items], self.targets, rng)
        feats = [f for _, (f, _) in items]
        shapes = {tuple(f[4].shape) for f in feats}
        if len(shapes) != 1:
            raise ValueError("cached views of different sizes cannot share a batch: build the cache with a fixed crop")
        batch["features"] = {s: torch.stack([f[s] for f in feats]) for s in STRIDES}
        del batch["images"]
        return batch


class _Cycled(Dataset):
    def __init__(self, cache: FeatureCacheDataset, length: int) -> None:
        self.cache, self.length = cache, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        _, item = self.cache[i % len(self.cache)]
        return i, item
