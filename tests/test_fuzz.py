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
        result = fuzz_pipe(array, prompts=prompts, score_threshold=threshold)
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
        result = fuzz_top_down(array, prompts=prompts, score_threshold=threshold)
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
    fields = {k: (None, v) for k, v in {"prompts": prompts, "score_threshold": threshold, "ebp": ebp,
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


# ------------------------------------------------------------------------------------ output names and paths
NAMES = st.text(alphabet=st.sampled_from(list("ab.. /\\\t\u202e\u200b-_é漢~\x01")), max_size=40) | st.sampled_from(
    ["...", "..", ".", ".hidden", "data", "a" * 300, "x" * 130 + "é" * 70])


@settings(max_examples=int(300 * SCALE), **COMMON)
@given(stems=st.lists(NAMES, min_size=1, max_size=6), formats=st.sampled_from(
    [["png"], ["json", "masks"], ["png", "overlay", "json", "masks"]]))
def test_fuzz_output_names_stay_inside_out_and_spare_user_files(tmp_path_factory, stems: list[str],
                                                                 formats: list[str]) -> None:
    """Any input file name gives outputs inside ``--out`` only, never hidden, never over a user's folder."""
    from pathlib import Path

    import torch

    from spectrum_parsing.postprocess import PartInstance, PersonInstance
    from spectrum_parsing.writers import make_tool_folder, output_names, output_paths

    root = tmp_path_factory.mktemp("names")
    out = root / "project" / "out"
    out.mkdir(parents=True)
    (out / "data").mkdir()  # a user's folder inside --out and a file beside it: both must survive
    (out / "data" / "keep.txt").write_text("mine")
    (root / "project" / "keep.txt").write_text("mine")
    inputs = [Path("in") / f"{stem}.jpg" for stem in stems]
    names = output_names(inputs, reserved=["data"])
    assert len(set(n.lower() for n in names.values())) == len(names)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:5, 2:5] = True
    result = ParsingResult([PersonInstance(id=0, score=1.0, mask=mask, parts=[
        PartInstance(label="hat", prompt_index=0, score=0.9, mask=mask)])],
        np.where(mask.numpy(), 1, 0).astype(np.int32), ["hat"], ["hat", "person"], 8, 8)
    from spectrum_parsing.writers import write_outputs

    for path, name in names.items():
        assert name and not name.startswith(".") and "/" not in name and "\\" not in name
        assert len(name.encode("utf-8")) <= 255
        targets = output_paths(out, name, formats)  # every name output_names gives is valid
        for target in targets.values():
            assert out.resolve() in target.resolve().parents
        if "masks" in targets:
            make_tool_folder(targets["masks"], out)
        write_outputs(result, np.zeros((8, 8, 3), np.uint8), out, path, formats, name=name)
        _count("names", "written")
    assert (out / "data" / "keep.txt").read_text() == "mine"
    assert (root / "project" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in root.iterdir()) == ["project"]
    assert sorted(p.name for p in (root / "project").iterdir()) == ["keep.txt", "out"]


# --------------------------------------------------------------------------------------------- model configs
JSON_LEAF = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
             | st.text(max_size=8) | st.sampled_from([0, -1, 1, 10**9, 3 * 10**7, "hair", "64", []]))
FIELDS = st.sampled_from(["input_size", "person_prompt", "ebp_prompts", "default_prompts", "withheld", "backbone",
                          "decoder", "text_encoder", "hidden_dim", "num_queries", "decoder_layers", "type",
                          "mask_dim", "num_heads", "loss", "unknown_key"])
JSON_VALUES = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(FIELDS, inner, max_size=4), max_leaves=12)


@settings(max_examples=int(300 * SCALE), **COMMON)
@given(patch=st.dictionaries(FIELDS, JSON_VALUES, max_size=4),
       section=st.sampled_from([None, "decoder", "backbone", "text_encoder"]))
def test_fuzz_model_configs_load_or_fail_in_one_line(patch: dict, section: str | None) -> None:
    """Random field values and types in a model's config.json: a valid config or one ConfigError line."""
    from spectrum_parsing.backbones.bodypix import BodyPixConfig
    from spectrum_parsing.configs import ConfigError, DecoderConfig
    from spectrum_parsing.modeling import SpectrumConfig

    data = SpectrumConfig(backbone=BodyPixConfig(weights=None), decoder=DecoderConfig(hidden_dim=32, mask_dim=32),
                          default_prompts=["shirt"]).to_dict()
    if section is None:
        data.update(patch)
    elif isinstance(data.get(section), dict):
        data[section] = {**data[section], **patch}
    try:
        config = SpectrumConfig.from_dict(data)
    except ConfigError as err:
        assert str(err) and "\n" not in str(err), str(err)
        _count("configs", "refused")
        return
    assert config.decoder.hidden_dim <= 4096 and config.decoder.num_queries <= 1000
    assert SpectrumConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()  # round-trips
    _count("configs", "loaded")


TRAIN_FIELDS = {
    "model": st.sampled_from(["init_from", "unfreeze_backbone", "backbone", "decoder", "loss", "ebp_prompts"]),
    "data": st.sampled_from(["image_size", "num_workers", "augment", "targets", "train"]),
    "train": st.sampled_from(["lr", "backbone_lr", "max_steps", "batch_size", "log_every", "checkpoint_every",
                              "warmup_steps", "device", "mixed_precision", "schedule", "seed", "clip_grad"]),
}
YAML_LEAF = st.sampled_from(["1e-4", "2.0e-4", ".inf", "-.inf", ".nan", "soon", "0", "-3", "10000000000", "true",
                             "null", "[]", "{}", "tpu", "cuda:0", "'1e-4'", "*a", "&a 5", "[0.5, 1.2]", "1.5"])


@settings(max_examples=int(300 * SCALE), **COMMON)
@given(section=st.sampled_from(sorted(TRAIN_FIELDS)), data=st.data())
def test_fuzz_training_yaml_loads_or_fails_in_one_line(tmp_path_factory, section: str, data) -> None:
    """Random YAML values (YAML 1.1 number spellings, infinities, strings, aliases, huge counts) in a training
    config: a valid ExperimentConfig or one ConfigError line, never a traceback."""
    from spectrum_parsing.configs import ConfigError
    from spectrum_parsing.training import ExperimentConfig

    field = data.draw(TRAIN_FIELDS[section])
    value = data.draw(YAML_LEAF)
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_text(f"{section}:\n  {field}: {value}\n")
    try:
        ExperimentConfig.from_yaml(path)
    except ConfigError as err:
        assert str(err) and "\n" not in str(err), str(err)
        _count("training yaml", "refused")
        return
    _count("training yaml", "loaded")


@settings(max_examples=int(200 * SCALE), **COMMON)
@given(patch=st.dictionaries(st.sampled_from(["backbone", "num_entries", "shard_size", "shards", "dtype"]),
                             JSON_VALUES, max_size=3))
def test_fuzz_feature_cache_indexes_are_refused_in_one_line(tmp_path_factory, patch: dict) -> None:
    """Random index.json contents for a feature cache: one ModelLoadError line naming the file."""
    import json

    from spectrum_parsing.feature_cache import FeatureCacheDataset
    from spectrum_parsing.hub import ModelLoadError

    folder = tmp_path_factory.mktemp("cache")
    (folder / "shard-00000.safetensors").write_bytes(b"x")
    index = {"backbone": {"type": "bodypix"}, "num_entries": 1, "shard_size": 1, "dtype": "float16",
             "shards": [{"file": "shard-00000.safetensors", "entries": 1, "sha256": "0" * 64}], **patch}
    (folder / "index.json").write_text(json.dumps(index))
    try:
        FeatureCacheDataset(folder)[0]
    except ModelLoadError as err:
        assert str(err) and "\n" not in str(err) and str(folder) in str(err), str(err)
        _count("cache index", "refused")
        return
    raise AssertionError(f"a cache with a 1-byte shard was served: {index}")


def test_fuzz_report() -> None:
    """Prints how many cases each fuzz test tried and how they ended (for the README's reliability figures)."""
    print("fuzz outcomes:", dict(sorted(COUNTS.items())))
