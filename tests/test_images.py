"""Image inputs: every odd file and mode gives a correct RGB image or one clear ImageLoadError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spectrum_parsing.images import (
    MIN_IMAGE_SIDE,
    ImageLoadError,
    array_to_rgb,
    load_image,
    open_image_bytes,
    to_rgb,
)


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with no pixel data (a decompression-bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_missing_empty_directory_and_non_image_files(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="not a file"):
        load_image(tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.jpg: empty file"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "notes.png").write_text("these are not pixels\n" * 20)
    with pytest.raises(ImageLoadError, match=r"notes\.png: not a readable image"):
        load_image(tmp_path / "notes.png")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_refused_not_half_decoded(tmp_path, fmt):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    data = io.BytesIO()
    image.save(data, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt") as err:
        load_image(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_modes_convert_to_the_right_colours(tmp_path):
    # CMYK pure cyan+yellow = green-ish: C=255, Y=255 -> (0, 255, 0).
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 255, 0))
    assert load_image(_save(cmyk, tmp_path / "cmyk.jpg", quality=100)).getpixel((8, 8))[1] > 230
    # 16-bit grayscale: 128 * 257 becomes 128, not a clipped 255.
    sixteen = Image.fromarray(np.full((16, 16), 128 * 257, dtype=np.uint16))
    assert sixteen.mode.startswith("I")
    assert load_image(_save(sixteen, tmp_path / "g16.png")).getpixel((3, 3)) == (128, 128, 128)
    # RGBA: transparent pixels become white whatever colour hides under them; opaque ones keep their colour.
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[:, :8] = (255, 0, 0, 255)
    loaded = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"))
    assert loaded.getpixel((2, 2)) == (255, 0, 0) and loaded.getpixel((12, 2)) == (255, 255, 255)
    # LA and grayscale.
    la = Image.fromarray(np.stack([np.full((16, 16), 40, np.uint8), np.full((16, 16), 255, np.uint8)], -1), "LA")
    assert load_image(_save(la, tmp_path / "la.png")).getpixel((0, 0)) == (40, 40, 40)
    assert load_image(_save(Image.new("L", (16, 16), 90), tmp_path / "l.png")).getpixel((0, 0)) == (90, 90, 90)
    # Palette with a transparent index: white there.
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(0, (0, 0, 8, 16))
    path = _save(pal, tmp_path / "pal.png", transparency=0)
    loaded = load_image(path)
    assert loaded.getpixel((2, 2)) == (255, 255, 255) and loaded.getpixel((12, 2)) == (0, 0, 255)
    # 1-bit.
    assert load_image(_save(Image.new("1", (16, 16), 1), tmp_path / "bw.png")).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = (255, 0, 0)  # left half red
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    loaded = load_image(_save(image, tmp_path / "rot.jpg", exif=exif, quality=100))
    assert loaded.size == (20, 40)  # displayed upright: portrait
    assert loaded.getpixel((10, 5))[0] > 200 and loaded.getpixel((10, 35))[0] < 60  # red on top after rotation


def test_animated_images_use_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (24, 24), c) for c in ((255, 0, 0), (0, 0, 255))]
    for fmt in ("gif", "webp"):
        path = tmp_path / f"anim.{fmt}"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
        with Image.open(path) as check:
            assert check.n_frames == 2
        r, g, b = load_image(path).getpixel((5, 5))
        assert r > 200 and b < 60


def test_size_limits(tmp_path):
    small = _save(Image.new("RGB", (MIN_IMAGE_SIDE - 1, 50)), tmp_path / "thin.png")
    with pytest.raises(ImageLoadError, match="too small"):
        load_image(small)
    ok = _save(Image.new("RGB", (100, 100)), tmp_path / "ok.png")
    assert load_image(ok).size == (100, 100)
    with pytest.raises(ImageLoadError, match="above the limit"):
        load_image(ok, max_pixels=5000)
    assert load_image(ok, max_pixels=None).size == (100, 100)
    # A header claiming 100k x 100k pixels is refused from the header alone (nothing is allocated).
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageLoadError, match=r"bomb\.png: refused as a decompression bomb"):
        load_image(bomb)  # Pillow's own guard fires first at this size
    bomb.write_bytes(_png_header_only(12_000, 10_000))
    with pytest.raises(ImageLoadError, match=r"12000x10000 is 120\.0 megapixels, above the limit of 100\.0"):
        load_image(bomb)
    with pytest.raises(ImageLoadError, match="empty"):
        open_image_bytes(b"")


def test_arrays_and_pil_modes_in_memory():
    assert array_to_rgb(np.full((10, 12), 7, np.uint8)).getpixel((0, 0)) == (7, 7, 7)
    assert array_to_rgb(np.full((10, 12, 1), 7, np.uint8)).size == (12, 10)
    assert array_to_rgb(np.full((10, 12, 3), 65535, np.uint16)).getpixel((0, 0)) == (255, 255, 255)
    assert array_to_rgb(np.full((10, 12, 3), 0.5, np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert array_to_rgb(np.ones((10, 12), bool)).getpixel((0, 0)) == (255, 255, 255)
    for bad, reason in [(np.full((10, 12, 3), 2.0), r"\[0, 1\]"), (np.full((10, 12, 3), np.nan), "finite"),
                        (np.zeros((10, 12, 2), np.uint8), "shape"), (np.zeros((4, 10, 12, 3), np.uint8), "shape"),
                        (np.full((10, 12), -1, np.int32), "65535"), (np.zeros((10, 12), np.complex64), "dtype")]:
        with pytest.raises(ImageLoadError, match=reason):
            array_to_rgb(bad)
    assert to_rgb(Image.new("I;16", (9, 9))).mode == "RGB"
    assert to_rgb(Image.new("F", (9, 9), 1.0)).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("HSV", (9, 9))).mode == "RGB"


def test_integer_arrays_are_read_by_value_range():
    """An int64 array of 0..255 (what numpy arithmetic gives) used to be divided by 257 and parsed nearly black."""
    from spectrum_parsing.images import array_to_rgb

    ramp = np.tile(np.arange(0, 256, 16, dtype=np.int64), (8, 1))
    assert np.array_equal(np.asarray(array_to_rgb(ramp))[..., 0], ramp.astype(np.uint8))
    assert np.asarray(array_to_rgb(ramp.astype(np.int32) * 257))[0, -1, 0] == 240  # 16-bit range: scaled
    assert np.asarray(array_to_rgb(np.full((8, 8), 255, np.uint16)))[0, 0, 0] == 1  # uint16 is 16-bit by type
