"""Clothing Co-Parsing (CCP): street-fashion photos, one person each, 59 labels read from MATLAB files.

Layout::

    ROOT/photos/NNNN.jpg
    ROOT/annotations/pixel-level/NNNN.mat   # variable `groundtruth`, uint8 (H, W) label ids
    ROOT/annotations/image-level/NNNN.mat   # variable `tags`, uint8 label ids (weak labels)
    ROOT/label_list.mat                     # variable `label_list`, 1x59 cell of names; index = id, 'null' = bg

CCP has no official split: the deterministic rule of :mod:`..base` applies, separately to the pixel-level and to
the image-level photos (so the pixel-level split does not change with ``image_level``). A pixel-level map with
no label but ``null`` (a missing annotation: every CCP photo shows a person) is read as all IGNORE_ID.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ...vocab.labels import CCP_LABELS
from ..base import (
    IMAGE_EXTENSIONS,
    ParsingDataset,
    check_same_size,
    clean_label_map,
    files_by_stem,
    find_dirs,
    map_to_canonical,
    read_image,
    warn_once,
)
from ..pose_labels import extended_classes, read_body_part_map
from ..sample import IGNORE_ID, Sample


def _load_mat(path: str | Path, key: str) -> np.ndarray:
    """The variable ``key`` of a MATLAB file; a file that is not one, or lacks the variable, is one ValueError
    naming it (evaluation then skips it with that reason)."""
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises ValueError, MatReadError, TypeError... on garbage
        raise ValueError(f"{path}: not a readable MATLAB file ({type(err).__name__}: {str(err)[:120]})") from None
    if key not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise ValueError(f"{path}: no variable {key!r} (found {found[:5]})")
    return np.asarray(data[key])


def _mat_strings(value: object) -> list[str]:
    """Flatten a MATLAB cell array / char matrix of strings as loaded by scipy into a list of str."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":  # char matrix: one (space-padded) string per element
        return [str(s).strip() for s in arr.ravel()]
    out: list[str] = []
    for item in arr.ravel():
        inner = np.asarray(item)
        if inner.dtype.kind == "U":
            out.append("".join(str(s) for s in inner.ravel()).strip())
        elif inner.dtype == object and inner.size:
            out.append(_mat_strings(inner)[0])
        else:
            out.append("")
    return out


def read_ccp_labels(path: str | Path) -> list[str]:
    """The label names stored in a CCP ``label_list.mat`` (index = label id)."""
    names = _mat_strings(_load_mat(path, "label_list"))
    if not names:
        raise ValueError(f"{path}: empty label_list")
    return names


def _is_ccp_root(d: Path) -> bool:
    return (d / "photos").is_dir() and (d / "annotations").is_dir()


class CCPDataset(ParsingDataset):
    """Clothing Co-Parsing reader.

    ``image_level``: False (default) = the photos with pixel-level labels only; True = those plus the photos
    with only image-level tags (empty segments, ``semantic`` all IGNORE_ID, ``tags`` = canonical names);
    ``"only"`` = the image-level photos only.

    ``body_parts``: a folder of label maps derived by the label engine (``data.pose_labels``: the ``skin``
    pixels split into face, arms and legs by the person's keypoints; ``NNNN.png``, ids in the CCP classes
    followed by :data:`~spectrum_parsing.data.pose_labels.BODY_PART_CLASSES`). A photo with such a map is
    read from it instead of its ``.mat`` (a photo with only a derived map counts as pixel-level labelled).
    """

    name = "ccp"

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        val_fraction: float = 0.1,
        image_level: bool | str = False,
        body_parts: str | Path | None = None,
    ) -> None:
        super().__init__(root, split, val_fraction)
        if image_level not in (False, True, "only"):
            raise ValueError(f"image_level must be False, True or 'only'; got {image_level!r}")
        found = find_dirs(self.root, _is_ccp_root, max_depth=2)
        if not found:
            raise ValueError(
                f"{self.root}: no CCP layout found (expected photos/ and annotations/pixel-level/*.mat, "
                "annotations/image-level/*.mat, label_list.mat)"
            )
        self.data_root = found[0]
        label_list = self.data_root / "label_list.mat"
        if label_list.is_file():
            self.classes = read_ccp_labels(label_list)
        else:
            warn_once(f"{self.data_root}: no label_list.mat; using the standard 59 CCP labels")
            self.classes = list(CCP_LABELS)
        photos = files_by_stem(self.data_root / "photos", IMAGE_EXTENSIONS)
        pixel = files_by_stem(self.data_root / "annotations" / "pixel-level", (".mat",))
        self._derived: dict[str, str] = {}
        if body_parts is not None:
            derived_dir = Path(body_parts)
            if not derived_dir.is_dir():
                raise FileNotFoundError(f"body_parts folder does not exist: {derived_dir}")
            self.classes = extended_classes(self.classes)
            self._derived = {k: str(v) for k, v in files_by_stem(derived_dir, (".png",)).items() if k in photos}
            if not self._derived:
                raise ValueError(f"{derived_dir}: no derived label map named after a CCP photo")
            pixel = {**{k: Path(v) for k, v in self._derived.items()}, **pixel}
        self.canonical = map_to_canonical(self.classes, source="ccp")

        tagged = files_by_stem(self.data_root / "annotations" / "image-level", (".mat",))
        self._photos = {k: str(v) for k, v in photos.items()}
        self._pixel = {k: str(v) for k, v in pixel.items() if k in photos}
        self._tags = {k: str(v) for k, v in tagged.items() if k in photos and k not in self._pixel}
        ids: list[str] = []
        if image_level != "only":
            ids += self.select(self._pixel)
        if image_level:
            ids += self.select(self._tags)
        self.image_ids = sorted(ids)
        if not self._pixel and not self._tags:
            raise ValueError(f"{self.data_root}: CCP layout without any annotated photo")

    def _load(self, image_id: str) -> Sample:
        image = read_image(self._photos[image_id])
        if image_id in self._pixel:
            path = self._derived.get(image_id) or self._pixel[image_id]
            label = (read_body_part_map(path) if image_id in self._derived
                     else _load_mat(path, "groundtruth"))
            check_same_size(image, label, path)
            semantic = clean_label_map(label, len(self.classes), path)
            if not (semantic[semantic != IGNORE_ID] > 0).any():
                # Every CCP photo shows a person: an all-'null' map is a missing annotation, not a person-free
                # image (0536 in the public release), so nothing in it may count as background.
                warn_once(f"{path}: label map has no label but 'null'; the whole image is marked ignore")
                semantic[:] = IGNORE_ID
            return self._sample(image_id, image, semantic)
        path = self._tags[image_id]
        ids = _load_mat(path, "tags").astype(np.int64).ravel()
        tags: list[str] = []
        for i in ids.tolist():
            if not 0 <= i < len(self.classes):
                warn_once(f"{path}: tag id {i} is not in the {len(self.classes)} CCP labels; skipped")
                continue
            name = self.canonical[i]
            if name is not None and name not in tags:
                tags.append(name)
        h, w = image.shape[:2]
        return Sample(
            image=image,
            segments=[],
            semantic=np.full((h, w), IGNORE_ID, dtype=np.int32),
            classes=list(self.classes),
            image_id=image_id,
            dataset=self.name,
            ignore=np.ones((h, w), dtype=bool),
            tags=tags,
            has_instances=False,
        )
