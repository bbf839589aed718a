"""Colours, palette label maps and overlays with a legend (the COCO RLE codec is in :mod:`.rle`).

Colours: a categorical set chosen for distinctness (greedy farthest-point in CIELAB under CIEDE2000 over an sRGB
grid, mid lightness so they read on photos: :func:`categorical_colours`), every two of its first
:data:`DISTINCT_COLOURS` at least :data:`MIN_DELTA_E` apart. Each canonical category has a preferred colour that
it keeps from image to image (:data:`CATEGORY_ORDER`); labels of one result never share a colour
(:func:`label_colours`). Dataset presets keep their own palettes.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CATEGORY_ORDER", "COLOURS", "DISTINCT_COLOURS", "MIN_DELTA_E", "categorical_colours", "delta_e2000",
           "label_colours", "label_map_image", "overlay", "palette", "side_by_side"]

MIN_DELTA_E = 12.0
"""Every two colours of one result differ by at least this CIEDE2000 distance (up to DISTINCT_COLOURS labels)."""
DISTINCT_COLOURS = 36

CATEGORY_ORDER: tuple[str, ...] = (
    "hair", "face", "left arm", "right arm", "left leg", "right leg", "upper clothes", "pants", "dress", "coat",
    "skirt", "left shoe", "right shoe", "hat", "sunglasses", "scarf", "bag", "belt", "socks", "jacket", "shirt",
    "t-shirt", "sweater", "jeans", "shorts", "skin", "gloves", "left hand", "right hand", "shoes", "torso", "neck",
    "jumpsuit", "tie", "glasses", "boots",
)
"""Categories by how often they are shown: the k-th keeps the k-th categorical colour whenever it is free."""


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB -> (N, 3) CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=-1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour differences of every pair: (N, 3) x (M, 3) CIELAB -> (N, M)."""
    a, b = np.asarray(lab1, np.float64)[:, None, :], np.asarray(lab2, np.float64)[None, :, :]
    l1, a1, b1 = a[..., 0], a[..., 1], a[..., 2]
    l2, a2, b2 = b[..., 0], b[..., 1], b[..., 2]
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    cbar7 = ((c1 + c2) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(cbar7 / (cbar7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbar, cbarp = (l1 + l2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2), hsum / 2)
    hbar = np.where(c1p * c2p == 0, hsum, hbar)
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    cbarp7 = cbarp**7
    rt = (-2 * np.sqrt(cbarp7 / (cbarp7 + 25.0**7))
          * np.sin(np.radians(60 * np.exp(-(((hbar - 275) / 25) ** 2)))))
    return np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh))


COLOURS: tuple[tuple[int, int, int], ...] = (
    (225, 30, 45), (0, 240, 0), (0, 180, 255), (0, 90, 60), (0, 0, 240), (255, 180, 45),
    (255, 180, 255), (135, 90, 0), (120, 120, 135), (0, 225, 210), (225, 0, 165), (135, 150, 105),
    (255, 165, 150), (105, 60, 75), (210, 210, 210), (135, 105, 255), (0, 105, 135), (225, 105, 0),
    (75, 150, 150), (210, 210, 0), (90, 105, 0), (165, 180, 255), (180, 120, 135), (180, 150, 120),
    (135, 45, 0), (75, 75, 75), (120, 75, 150), (0, 165, 0), (165, 135, 0), (150, 210, 150),
    (135, 105, 90), (45, 75, 150), (255, 90, 255), (75, 135, 225), (150, 210, 225), (180, 0, 75),
)
"""The first :data:`DISTINCT_COLOURS` of :func:`categorical_colours` (computed once; a test checks they match)."""


@functools.lru_cache(maxsize=4)
def categorical_colours(n: int = DISTINCT_COLOURS) -> np.ndarray:
    """(n, 3) uint8 colours, each the sRGB grid colour farthest (CIEDE2000) from those before it, among colours of
    lightness 30-85 (legible blended on photos, distinct from black and white); starts from a strong red."""
    levels = np.arange(0, 256, 15, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = _srgb_to_lab(grid)
    keep = (lab[:, 0] >= 30) & (lab[:, 0] <= 85)
    grid, lab = grid[keep], lab[keep]
    chosen = [int(np.argmin(np.abs(grid.astype(int) - np.array([230, 25, 45])).sum(1)))]
    nearest = delta_e2000(lab, lab[chosen]).min(1)
    while len(chosen) < n:
        k = int(np.argmax(nearest))
        chosen.append(k)
        nearest = np.minimum(nearest, delta_e2000(lab, lab[[k]])[:, 0])
    return grid[chosen].astype(np.uint8)


def _preferred(label: str) -> int:
    """The categorical colour a label asks for: its category's rank in CATEGORY_ORDER, else a stable hash."""
    from .vocab.categories import canonical_name

    name = canonical_name(label) or label.strip().lower()
    if name in CATEGORY_ORDER:
        return CATEGORY_ORDER.index(name)
    return zlib.crc32(name.encode("utf-8")) % DISTINCT_COLOURS


def label_colours(labels: Sequence[str]) -> np.ndarray:
    """(len(labels), 3) uint8: each label its category's colour, or the next free one if an earlier label took it.
    Up to :data:`DISTINCT_COLOURS` labels are pairwise at least :data:`MIN_DELTA_E` apart; beyond that colours
    repeat."""
    pool = np.array(COLOURS, dtype=np.uint8)
    used: set[int] = set()
    out = np.zeros((len(labels), 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        k = _preferred(label)
        if len(used) < len(pool):
            while k in used:
                k = (k + 1) % len(pool)
        used.add(k)
        out[i] = pool[k % len(pool)]
    return out


def palette(n: int, labels: Sequence[str] | None = None) -> np.ndarray:
    """(n, 3) uint8 colours by label id, 0 black (the background); id ``i`` is ``labels[i - 1]``'s colour
    (:func:`label_colours`), or without labels the categorical colours in order."""
    out = np.zeros((max(n, 1), 3), dtype=np.uint8)
    colours = label_colours(labels) if labels is not None else np.array(COLOURS, dtype=np.uint8)
    count = min(n - 1, len(colours)) if labels is not None else n - 1
    for i in range(1, count + 1):
        out[i] = colours[(i - 1) % len(colours)]
    return out[:n]


def label_map_image(label_map: np.ndarray, colours: np.ndarray) -> Image.Image:
    """A palette ("P") PNG-ready image whose pixel values are the label ids, coloured by ``colours`` (by id)."""
    if label_map.max(initial=0) > 255:
        raise ValueError("label maps with more than 255 labels cannot be stored as palette PNG")
    image = Image.fromarray(label_map.astype(np.uint8), mode="P")
    full = np.zeros((256, 3), dtype=np.uint8)
    own = np.asarray(colours, dtype=np.uint8)[:256]
    full[: len(own)] = own
    image.putpalette(full.flatten().tolist())
    return image


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


PERSON_COLOURS = ((255, 255, 255), (255, 210, 0), (0, 220, 255), (255, 90, 200), (120, 255, 80), (255, 140, 40))


def overlay(image: Image.Image, label_map: np.ndarray, labels: Sequence[str], colours: np.ndarray | None = None,
            alpha: float = 0.55, boxes: Sequence[tuple[int, tuple[int, int, int, int]]] = ()) -> Image.Image:
    """The image with coloured labels blended in, person boxes with ids (a colour per person), and a legend of
    the labels present. ``labels[v - 1]`` names label-map value ``v``; ``colours`` by value (default
    :func:`palette`). Text and lines scale with the image; the legend wraps into rows and is never cut (on a
    very narrow image the canvas is widened for it)."""
    base = image.convert("RGB")
    colours = palette(len(labels) + 1, labels) if colours is None else np.asarray(colours, dtype=np.uint8)
    if len(colours) < len(labels) + 1:
        colours = np.concatenate([colours, np.zeros((len(labels) + 1 - len(colours), 3), np.uint8)])
    # 8-bit throughout (a few bytes per pixel): the colour layer, blended by Pillow, kept where a label is.
    coloured = Image.fromarray(colours[np.clip(label_map, 0, len(colours) - 1)].astype(np.uint8, copy=False))
    out = Image.composite(Image.blend(base, coloured, alpha), base, Image.fromarray((label_map > 0).view(np.uint8)
                                                                                    * np.uint8(255)))
    del coloured
    size = int(np.clip(round(max(out.width, out.height) / 60), 9, 48))
    font = _font(size)
    draw = ImageDraw.Draw(out)
    line = max(1, size // 6)
    for person_id, (x0, y0, x1, y1) in boxes:
        colour = PERSON_COLOURS[person_id % len(PERSON_COLOURS)]
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=line)
        text = f"person {person_id}"
        tx0, ty0, tx1, ty1 = draw.textbbox((x0 + line, y0 + line), text, font=font)
        draw.rectangle((tx0 - 2, ty0 - 2, tx1 + 2, ty1 + 2), fill=(0, 0, 0))
        draw.text((x0 + line, y0 + line), text, fill=colour, font=font)
    counts = np.bincount(np.clip(label_map, 0, len(labels)).ravel(), minlength=len(labels) + 1)
    present = [i for i in range(1, len(labels) + 1) if counts[i]]
    entries = [labels[i - 1] for i in present] if present else ["no parts found"]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad, swatch, gap = max(3, size // 3), size, max(4, size // 2)
    widths = [swatch + gap + int(measure.textlength(text, font=font)) for text in entries]
    width = max(out.width, max(widths) + 2 * pad)
    row_h = size + pad
    rows: list[list[int]] = [[]]
    x = pad
    for k, w in enumerate(widths):  # flow left to right, wrapping into rows that fit the canvas
        if rows[-1] and x + w > width - pad:
            rows.append([])
            x = pad
        rows[-1].append(k)
        x += w + 2 * gap
    legend = Image.new("RGB", (width, row_h * len(rows) + pad), (255, 255, 255))
    ldraw = ImageDraw.Draw(legend)
    for r, row in enumerate(rows):
        x, y = pad, pad + r * row_h
        for k in row:
            if present:
                fill = tuple(int(c) for c in colours[present[k]])
                ldraw.rectangle((x, y, x + swatch - 1, y + swatch - 1), fill=fill, outline=(0, 0, 0))
                ldraw.text((x + swatch + gap, y + swatch / 2), entries[k], fill=(0, 0, 0), font=font, anchor="lm")
            else:
                ldraw.text((x, y + swatch / 2), entries[k], fill=(0, 0, 0), font=font, anchor="lm")
            x += widths[k] + 2 * gap
    canvas = Image.new("RGB", (width, out.height + legend.height), (255, 255, 255))
    canvas.paste(out, (0, 0))
    canvas.paste(legend, (0, out.height))
    return canvas


def side_by_side(image: Image.Image, overlaid: Image.Image) -> Image.Image:
    """The photo and its overlay next to each other (photo | overlay, legend under the overlay)."""
    base = image.convert("RGB")
    canvas = Image.new("RGB", (base.width + overlaid.width, max(base.height, overlaid.height)), (255, 255, 255))
    canvas.paste(base, (0, 0))
    canvas.paste(overlaid, (base.width, 0))
    return canvas
