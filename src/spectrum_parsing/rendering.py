"""Colours, palette label maps, overlays with a legend, and COCO RLE encoding of masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 colours by label id, 0 black (the background): hues stepped by the golden angle (so
    neighbouring ids are ~137 degrees apart) with alternating saturation and brightness, so labels next to each
    other in a prompt list never share a shade (the VOC map gave face, upper clothes, dress and pants near-identical
    greens). Dataset presets keep their own palettes."""
    import colorsys

    out = np.zeros((n, 3), dtype=np.uint8)
    for i in range(1, n):
        hue = ((i - 1) * 0.381966) % 1.0
        sat = (0.95, 0.6, 0.8)[(i - 1) % 3]
        val = (0.95, 0.8, 0.6)[((i - 1) // 3) % 3]
        out[i] = np.round(np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255)
    return out


def label_map_image(label_map: np.ndarray, num_labels: int) -> Image.Image:
    """A palette ("P") PNG-ready image whose pixel values are the label ids."""
    if label_map.max(initial=0) > 255:
        raise ValueError("label maps with more than 255 labels cannot be stored as palette PNG")
    image = Image.fromarray(label_map.astype(np.uint8), mode="P")
    colours = palette(max(256, num_labels + 1))[:256]
    image.putpalette(colours.flatten().tolist())
    return image


def overlay(image: Image.Image, label_map: np.ndarray, labels: Sequence[str], alpha: float = 0.55,
            boxes: Sequence[tuple[int, tuple[int, int, int, int]]] = ()) -> Image.Image:
    """The image with coloured labels blended in, person boxes with ids, and a legend of the labels present."""
    base = image.convert("RGB")
    colours = palette(len(labels) + 1)
    # 8-bit throughout (a few bytes per pixel): the colour layer, blended by Pillow, kept where a label is.
    coloured = Image.fromarray(colours[label_map].astype(np.uint8, copy=False))
    out = Image.composite(Image.blend(base, coloured, alpha), base, Image.fromarray((label_map > 0).view(np.uint8)
                                                                                    * np.uint8(255)))
    del coloured
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    for person_id, (x0, y0, x1, y1) in boxes:
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=(255, 255, 255), width=2)
        draw.text((x0 + 3, y0 + 2), f"person {person_id}", fill=(255, 255, 255), font=font)
    counts = np.bincount(label_map.ravel(), minlength=len(labels) + 1)
    present = [i for i in range(1, len(labels) + 1) if counts[i]]
    row = 16
    legend = Image.new("RGB", (out.width, row * max(1, (len(present) + 2) // 3) + 6), (255, 255, 255))
    ldraw = ImageDraw.Draw(legend)
    col_w = max(1, out.width // 3)
    for k, i in enumerate(present):
        x, y = (k % 3) * col_w + 4, (k // 3) * row + 3
        ldraw.rectangle((x, y + 2, x + 10, y + 12), fill=tuple(int(c) for c in colours[i]), outline=(0, 0, 0))
        ldraw.text((x + 14, y + 1), labels[i - 1], fill=(0, 0, 0), font=font)
    if not present:
        ldraw.text((4, 3), "no parts found", fill=(0, 0, 0), font=font)
    canvas = Image.new("RGB", (out.width, out.height + legend.height), (255, 255, 255))
    canvas.paste(out, (0, 0))
    canvas.paste(legend, (0, out.height))
    return canvas


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
