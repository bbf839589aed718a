"""Image loading and conversion shared by the CLI, the API and the server.

Every input becomes an RGB image the same way, whatever its file or mode:

- EXIF orientation is applied (a phone photo taken upright is parsed upright).
- Alpha (RGBA, LA, palette images with transparency) is composited over white, so transparent areas of a
  cut-out read as a plain background instead of whatever colour hides under alpha 0.
- 16-bit and 32-bit images are scaled to 8 bits instead of being clipped to white: integer modes (``I;16``,
  ``I``) by /257; float files (``F``) by the smallest of [0, 1], [0, 255], [0, 65535] that holds their
  values. CMYK, YCbCr, LAB, HSV and 1-bit images are converted by Pillow.
- Animated GIF/WebP/PNG: the first frame is parsed (use a video file for every frame).
- Sizes are checked from the header before decoding: more than ``max_pixels`` (default
  :data:`DEFAULT_MAX_PIXELS`) or a side under :data:`MIN_IMAGE_SIDE` is refused with :class:`ImageLoadError`.

Errors name the file and the reason in one line; they never surface a Pillow traceback.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MIN_IMAGE_SIDE",
    "ImageLoadError",
    "ImageTooLargeError",
    "decode_image",
    "check_image_size",
    "load_image",
    "open_image_bytes",
    "to_rgb",
    "array_to_rgb",
    "as_rgb_image",
    "to_tensor",
]

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image accepted (width x height), checked from the header before decoding. ``spectrum parse
--max-pixels`` and ``SpectrumPipeline(max_pixels=...)`` change it."""

MIN_IMAGE_SIDE = 8
"""Smallest width or height accepted: below this there is nothing a parser can see."""

_DECODE_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, TypeError,
                  EOFError, MemoryError, IndexError, KeyError, ZeroDivisionError, struct.error)


class ImageLoadError(ValueError):
    """An input could not be used as an image (unreadable, corrupt, too large or too small)."""


class ImageTooLargeError(ImageLoadError):
    """An image above the pixel limit, or refused by Pillow's decompression-bomb guard."""


def check_image_size(width: int, height: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                     name: str = "image") -> None:
    """Refuse images with a side under :data:`MIN_IMAGE_SIDE` or more than ``max_pixels`` pixels (None: no limit)."""
    if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
        raise ImageLoadError(f"{name}: {width}x{height} is too small (each side must be at least "
                             f"{MIN_IMAGE_SIDE} pixels)")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(f"{name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, above the "
                                 f"limit of {max_pixels / 1e6:.1f} (raise it with --max-pixels / max_pixels=)")


def _load_error(err: BaseException, name: str) -> ImageLoadError:
    """The one-line ImageLoadError (naming ``name``) for any failure to open or decode an image."""
    if isinstance(err, ImageLoadError):
        message = str(err)
        return type(err)(message if message.startswith(f"{name}:") else f"{name}: {message}")
    if isinstance(err, UnidentifiedImageError):
        return ImageLoadError(f"{name}: not a readable image (no known image format)")
    if isinstance(err, Image.DecompressionBombError):
        return ImageTooLargeError(f"{name}: refused as a decompression bomb ({err})")
    reason = str(err).strip() or type(err).__name__
    return ImageLoadError(f"{name}: could not be decoded, truncated or corrupt ({reason})")


def decode_image(img: Image.Image, name: str = "image") -> Image.Image:
    """Decode an opened image's first frame to RGB (:func:`to_rgb`); any decoding failure is one ImageLoadError
    naming ``name`` (:class:`ImageTooLargeError` for a decompression bomb)."""
    try:
        with warnings.catch_warnings():
            _ignore_pillow_notes()
            img.seek(0)
            img.load()
            return to_rgb(img)
    except (ImageLoadError, *_DECODE_ERRORS) as err:
        raise _load_error(err, name) from None


def _ignore_pillow_notes() -> None:
    """Inside ``warnings.catch_warnings()``: silence Pillow's decompression-bomb warning (our size check replaces
    it; its hard error still applies) and its notes on damaged metadata."""
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _open(source: str | Path | io.BytesIO, name: str, max_pixels: int | None) -> Image.Image:
    """Decode the first frame of ``source`` to RGB after checking its header size."""
    try:
        with warnings.catch_warnings():
            _ignore_pillow_notes()
            with Image.open(source) as img:
                check_image_size(*img.size, max_pixels=max_pixels, name=name)
                return decode_image(img, name)
    except (ImageLoadError, *_DECODE_ERRORS) as err:
        raise _load_error(err, name) from None


def load_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file as RGB (see the module docstring for modes, EXIF, animation and limits)."""
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file")
    if not path.is_file():
        raise ImageLoadError(f"{path}: not a file")
    try:
        empty = path.stat().st_size == 0
    except OSError as err:
        raise ImageLoadError(f"{path}: cannot be read ({err.strerror or err})") from None
    if empty:
        raise ImageLoadError(f"{path}: empty file (0 bytes)")
    try:
        return _open(path, str(path), max_pixels)
    except PermissionError as err:  # pragma: no cover - depends on the file system
        raise ImageLoadError(f"{path}: cannot be read ({err.strerror})") from None


def open_image_bytes(data: bytes, name: str = "upload", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode image bytes (an upload) as RGB, with the same rules as :func:`load_image`."""
    if not data:
        raise ImageLoadError(f"{name}: empty (0 bytes)")
    return _open(io.BytesIO(data), name, max_pixels)


def _over_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as RGB: EXIF orientation applied, alpha over white, high bit depths scaled to 8 bits."""
    if image.getexif().get(0x0112, 1) != 1:  # exif_transpose copies even an upright image: only when rotated
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return array_to_rgb(np.asarray(image))
    if mode == "F":  # float files: the smallest usual range that holds every value ([0, 1], [0, 255], [0, 65535])
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all() or values.min(initial=0.0) < 0:
            raise ImageLoadError("float image with negative or non-finite values")
        top = values.max(initial=0.0)
        scale = next((s for limit, s in ((1.0, 1.0), (255.0, 1 / 255), (65535.0, 1 / 65535)) if top <= limit), None)
        if scale is None:
            raise ImageLoadError(f"float image values up to {top:.3g}, above the 16-bit range")
        return array_to_rgb((values * scale).astype(np.float32))
    if mode == "P" and "transparency" in image.info:
        return _over_white(image.convert("RGBA"))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _over_white(image.convert("RGBA"))
    return image.convert("RGB")


def array_to_rgb(array: np.ndarray) -> Image.Image:
    """An image array as RGB: (H, W) or (H, W, 1/3/4) of uint8, uint16 (scaled /257), other integer types (by
    value range: 0-255 as 8-bit, up to 65535 scaled /257) or float in [0, 1]; a 4th channel is alpha, composited
    over white. Anything else is refused clearly."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageLoadError(f"image arrays must be (H, W) or (H, W, 1/3/4), got shape {array.shape}")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind in "ui":
        if array.min(initial=0) < 0 or array.max(initial=0) > 65535:
            raise ImageLoadError(f"integer image values must lie in [0, 65535], got [{array.min()}, {array.max()}]")
        if array.dtype != np.uint16 and array.max(initial=0) <= 255:  # int64 0..255 (e.g. from np.array math)
            array = array.astype(np.uint8)
        else:
            array = np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageLoadError("float image arrays must be finite")
        lo, hi = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        if lo < 0.0 or hi > 1.0:
            raise ImageLoadError(f"float image values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]")
        array = np.round(array * 255.0).astype(np.uint8)
    else:
        raise ImageLoadError(f"unsupported image array dtype {array.dtype}")
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L").convert("RGB")
    if array.shape[2] == 4:
        return _over_white(Image.fromarray(np.ascontiguousarray(array), mode="RGBA"))
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """RGB PIL image or HWC uint8 array -> float tensor (3, H, W) in [0, 1]."""
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an HWC RGB uint8 image, got shape {array.shape} dtype {array.dtype}")
    import torch

    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def as_rgb_image(image: str | os.PathLike[str] | Image.Image | np.ndarray,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Any accepted input as an RGB PIL image (rules in :mod:`.images`); ImageLoadError when unusable."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, max_pixels=max_pixels)
    if isinstance(image, Image.Image):
        check_image_size(*image.size, max_pixels=max_pixels)
        try:
            return to_rgb(image)
        except (OSError, ValueError) as err:
            raise ImageLoadError(f"image: could not be converted to RGB ({err})") from None
    if isinstance(image, np.ndarray):
        if image.ndim >= 2:
            check_image_size(image.shape[1], image.shape[0], max_pixels=max_pixels, name="image array")
        return array_to_rgb(image)
    raise TypeError(f"unsupported image type {type(image).__name__}: give a path, a PIL image or an image array")
