"""Fuzzing (hypothesis) of everything a user or an upload controls: image bytes, array shapes/dtypes/modes,
prompt strings and form fields, through the public API and the HTTP endpoint.

The contract: a correct result, or one of the documented errors (ImageLoadError / ValueError / TypeError with
a one-line message; a 4xx JSON error over HTTP); never another exception, never a 5xx. Runs are derandomized
(the same cases every time) so CI is stable; ``FUZZ_EXAMPLES`` scales the number of cases.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from spectrum_parsing.images import ImageLoadError, open_image_bytes
from spectrum_parsing.pipeline import ParsingResult, SpectrumPipeline

pytestmark = pytest.mark.fuzz

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
COMMON = {"deadline": None, "derandomize": True, "database": None,
          "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                    HealthCheck.function_scoped_fixture]}
EXPECTED = (ImageLoadError, ValueError, TypeError)
COUNTS: dict[str, int] = {}


def _count(name: str, outcome: str) -> None:
    COUNTS[f"{name}:{outcome}"] = COUNTS.get(f"{name}:{outcome}", 0) + 1


MODES = ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "F", "1"]
FORMATS = {"PNG": {"RGB", "RGBA", "L", "LA", "P", "I;16", "1"}, "JPEG": {"RGB", "L", "CMYK"},
           "GIF": {"P", "L", "RGB"}, "BMP": {"RGB", "L", "P", "1"}, "TIFF": set(MODES), "WEBP": {"RGB", "RGBA"}}


@st.composite
def encoded_images(draw: st.DrawFn) -> bytes:
    """A valid encoded image of random size, mode and format, then maybe truncated or with bytes flipped."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(sorted(FORMATS[fmt])))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48) if draw(st.booleans()) else st.integers(8, 48))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert("RGB")
    image = image.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(
        rng.integers(0, 65536, (h, w), dtype=np.uint16)).convert(mode if mode != "I;16" else "I;16")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = bytearray(buffer.getvalue())
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "garbage"]))
    if damage == "truncate" and len(data) > 1:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip" and data:
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif damage == "garbage":
        data = bytearray(draw(st.binary(max_size=256)))
    return bytes(data)


VALID_PROMPT = st.sampled_from(["hat", "left hand", "Hat", "साड़ी", "裙子", "dress\n", " t-shirt "]) | st.text(
    alphabet=st.characters(categories=["L", "N", "Zs", "P"]), min_size=1, max_size=30).filter(str.strip)
PROMPT = VALID_PROMPT | st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["  ", "", "x" * 300, "a\x00b", "\u202e", "\ud800" if False else "\x7f"])
PROMPTS = st.none() | st.lists(VALID_PROMPT, min_size=1, max_size=4) | st.lists(PROMPT, max_size=4)


@settings(max_examples=int(1500 * SCALE), **COMMON)
@given(data=encoded_images())
def test_fuzz_image_bytes_decode_or_fail_clearly(data: bytes) -> None:
    try:
        image = open_image_bytes(data, name="fuzz")
    except ImageLoadError as err:
        assert str(err).startswith("fuzz: ") and "\n" not in str(err)
        _count("bytes", "refused")
        return
    assert image.mode == "RGB" and min(image.size) >= 8
    _count("bytes", "decoded")


@pytest.fixture(scope="module")
def fuzz_pipe(tiny_model_dir) -> SpectrumPipeline:
    return SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=32, work_pixels=64 * 64, mode="bottom-up")


@pytest.fixture(scope="module")
def fuzz_top_down(tiny_model_dir) -> SpectrumPipeline:
    return SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=32, work_pixels=64 * 64)


ARRAYS = st.builds(
    lambda h, w, c, dtype, fill, seed: _array(h, w, c, dtype, fill, seed),
    st.integers(0, 80), st.integers(8, 80), st.sampled_from([None, 1, 2, 3, 3, 3, 4, 5]),
    st.sampled_from(["uint8", "uint8", "uint16", "float32", "float64", "int64", "bool", "int8"]),
    st.sampled_from(["random", "random", "random", "zeros", "big", "nan", "negative"]), st.integers(0, 2**16))


def _array(h: int, w: int, c: int | None, dtype: str, fill: str, seed: int) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    rng = np.random.default_rng(seed)
    values = {"random": rng.random(shape), "zeros": np.zeros(shape), "big": np.full(shape, 1e6),
              "nan": np.full(shape, np.nan), "negative": -rng.random(shape)}[fill]
    if np.dtype(dtype).kind in "ui":
        values = np.nan_to_num(values * 255, nan=0, posinf=0, neginf=0).clip(np.iinfo(dtype).min, np.iinfo(dtype).max)
    return values.astype(dtype)


@settings(max_examples=int(500 * SCALE), **COMMON)
@given(array=ARRAYS, prompts=PROMPTS,
       threshold=st.sampled_from([0.0, 0.3, 1.0]) | st.floats(0, 1) | st.floats(allow_nan=True, allow_infinity=True))
def test_fuzz_pipeline_inputs(fuzz_pipe: SpectrumPipeline, array: np.ndarray, prompts: list[str] | None,
                              threshold: float) -> None:
    try:
        result = fuzz_pipe(array, prompts=prompts, threshold=threshold)
    except EXPECTED as err:
        assert str(err) and "\n" not in str(err)
        _count("api", f"refused ({type(err).__name__})")
        return
    assert isinstance(result, ParsingResult)
    assert result.label_map.shape == array.shape[:2] and result.label_map.min() >= 0
    for person in result.persons:
        assert person.mask.shape == array.shape[:2]
    _count("api", "parsed")


@settings(max_examples=int(100 * SCALE), **COMMON)
@given(array=ARRAYS, prompts=PROMPTS, threshold=st.sampled_from([0.0, 0.3, 1.0]) | st.floats(0, 1))
def test_fuzz_top_down_inputs(fuzz_top_down: SpectrumPipeline, array: np.ndarray, prompts: list[str] | None,
                              threshold: float) -> None:
    """The same inputs through the top-down path (person detector, BlazePose, crops): a result or one line."""
    try:
        result = fuzz_top_down(array, prompts=prompts, threshold=threshold)
    except EXPECTED as err:
        assert str(err) and "\n" not in str(err)
        _count("api top-down", f"refused ({type(err).__name__})")
        return
    assert result.label_map.shape == array.shape[:2]
    assert all(p.mask.shape == array.shape[:2] for p in result.persons)
    _count("api top-down", "parsed")


@pytest.fixture(scope="module")
def fuzz_client(fuzz_pipe):
    pytest.importorskip("fastapi", reason="the HTTP fuzz test needs the demo extra")
    from fastapi.testclient import TestClient

    from spectrum_parsing.server import ServerSettings, create_app

    with TestClient(create_app(fuzz_pipe, ServerSettings(max_upload_bytes=64 * 1024)),
                    raise_server_exceptions=False) as client:
        yield client


FIELD = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)


@settings(max_examples=int(500 * SCALE), **COMMON)
@given(data=encoded_images(), name=FIELD, prompts=st.sampled_from([None, None, "hat, hat ,, left hand"]) | FIELD,
       threshold=st.sampled_from([None, None, "0", "0.5", "1", "nan", "-1", "1e309"]) | FIELD,
       ebp=st.none() | st.sampled_from(["true", "false", "maybe", ""]),
       preset=st.none() | st.none() | st.sampled_from(["lip", "LIP", "nope", "../lip", ""]),
       content_type=st.sampled_from(["image/jpeg", "image/png", "text/plain", "application/octet-stream"]))
def test_fuzz_http_endpoint(fuzz_client, data: bytes, name: str, prompts: str | None, threshold: str | None,
                            ebp: str | None, preset: str | None, content_type: str) -> None:
    fields = {k: (None, v) for k, v in {"prompts": prompts, "threshold": threshold, "ebp": ebp,
                                        "preset": preset}.items() if v is not None}
    response = fuzz_client.post("/api/parse", files={"image": (name or "x", data, content_type), **fields})
    assert response.status_code < 500, response.text[:300]
    body = response.json()
    if response.status_code == 200:
        assert body["width"] >= 8 and body["height"] >= 8
        _count("http", "200")
    else:
        assert 400 <= response.status_code < 500 and set(body) == {"error"} and body["error"]
        _count("http", str(response.status_code))


def test_fuzz_report() -> None:
    """Prints how many cases each fuzz test tried and how they ended (for the README's reliability figures)."""
    print("fuzz outcomes:", dict(sorted(COUNTS.items())))
