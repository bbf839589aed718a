"""COCO run-length encoding of masks (the ``segmentation`` of every person and part in the JSON outputs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["decode_rle", "encode_rle", "encode_rle_cropped"]


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a bool (H, W) mask, JSON-ready (``counts`` as a str)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_rle_cropped(crop: np.ndarray, box: Sequence[int], size: Sequence[int]) -> dict:
    """:func:`encode_rle` of the (H, W) = ``size`` mask that is ``crop`` inside ``box`` (x0, y0, x1, y1) and
    empty elsewhere, without building the full mask (only the box's columns are scanned)."""
    from pycocotools import mask as mask_utils

    h, w = (int(v) for v in size)
    x0, y0, x1, y1 = (int(v) for v in box)
    runs: list[int]
    if crop.size == 0 or not crop.any():
        runs = [h * w]
    else:
        columns = np.zeros((x1 - x0, h), dtype=bool)  # column-major order, as COCO counts it
        columns[:, y0:y1] = np.asarray(crop, dtype=bool).T
        flat = columns.ravel()
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        lengths = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
        runs = ([0] if flat[0] else []) + lengths  # counts start with a run of zeros
        runs[0] += x0 * h
        trailing = (w - x1) * h
        if trailing:
            if flat[-1]:
                runs.append(trailing)
            else:
                runs[-1] += trailing
    rle = mask_utils.frPyObjects({"counts": runs, "size": [h, w]}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """Inverse of :func:`encode_rle`."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
