"""Colours, palette label maps and overlays with a legend (the COCO RLE codec is in :mod:`.rle`)."""

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
