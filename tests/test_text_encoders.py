"""Frozen text encoders: MiniLM (real weights, offline) and CLIP (tiny random model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from spectrum_parsing.configs import TextEncoderConfig
from spectrum_parsing.hub import ModelLoadError
from spectrum_parsing.text_encoders import load_text_encoder
from spectrum_parsing.tiny_models import build_tiny_clip_text


def _cos(embeds: torch.Tensor, i: int, j: int) -> float:
    return float(embeds[i] @ embeds[j])


# ---------------------------------------------------------------------------------------------
# MiniLM
# ---------------------------------------------------------------------------------------------


def test_minilm_shape_and_unit_norm(minilm) -> None:
    embeds = minilm.encode(["upper clothes", "face", "left shoe"])
    assert minilm.dim == 384
    assert embeds.shape == (3, 384) and embeds.dtype == torch.float32
    torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(3), atol=1e-5, rtol=0)
    assert not embeds.requires_grad


def test_minilm_cache(minilm) -> None:
    """Repeated prompts are served from the cache: identical tensors, no new cache entries."""
    prompts = ["a striped scarf", "sunglasses", "a striped scarf"]
    first = minilm.encode(prompts)
    size = minilm.cache_size
    second = minilm.encode(list(reversed(prompts)))
    assert minilm.cache_size == size
    assert torch.equal(second, first.flip(0))
    assert torch.equal(first[0], first[2])  # duplicates within one call


def test_minilm_cache_matches_fresh_encoding(minilm) -> None:
    """A cached embedding equals the one computed from scratch, in a batch padded to a longer prompt."""
    cached = minilm.encode(["hat"])
    minilm.clear_cache()
    assert minilm.cache_size == 0
    fresh = minilm.encode(["a very long prompt describing a red woollen winter hat", "hat"])
    torch.testing.assert_close(fresh[1], cached[0], atol=1e-5, rtol=0)


def test_minilm_batches_agree(minilm) -> None:
    """Encoding in small chunks gives the same embeddings as one batch (padding does not leak in)."""
    prompts = ["pants", "a long-sleeved denim jacket with buttons", "hair", "right arm"]
    minilm.clear_cache()
    together = minilm.encode(prompts)
    minilm.clear_cache()
    chunked = minilm.encode(prompts, batch_size=1)
    torch.testing.assert_close(chunked, together, atol=1e-5, rtol=0)


def test_minilm_semantics(minilm) -> None:
    """The real all-MiniLM-L6-v2 weights are loaded: related phrases are closer than unrelated ones."""
    e = minilm.encode(["t-shirt", "shirt", "shoes", "left hand", "hand", "skirt"])
    assert _cos(e, 0, 1) > _cos(e, 0, 2) + 0.2
    assert _cos(e, 3, 4) > _cos(e, 3, 5) + 0.2


@pytest.mark.parametrize("prompt", ["", "   "])
def test_minilm_empty_prompt_rejected(minilm, prompt: str) -> None:
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        minilm.encode(["hat", prompt])


def test_minilm_bad_prompt_types(minilm) -> None:
    with pytest.raises(TypeError, match="single string"):
        minilm.encode("hat")
    with pytest.raises(TypeError, match="prompt 0"):
        minilm.encode([3])


def test_minilm_empty_list(minilm) -> None:
    out = minilm.encode([])
    assert out.shape == (0, 384)


def test_text_encoder_is_frozen(minilm) -> None:
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.training and not minilm.model.training


# ---------------------------------------------------------------------------------------------
# CLIP
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip_text(tmp_path_factory.mktemp("clip_text"))


def test_clip_text_encoder(tiny_clip_dir: Path) -> None:
    encoder = load_text_encoder(TextEncoderConfig(type="clip", model=str(tiny_clip_dir)))
    assert encoder.dim == 32
    prompts = ["a red shirt", "shoes", "a red shirt", "left hand"]
    embeds = encoder.encode(prompts)
    assert embeds.shape == (4, 32)
    torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(4), atol=1e-5, rtol=0)
    assert torch.equal(embeds[0], embeds[2])
    assert encoder.cache_size == 3
    # Different prompts give different embeddings (the random tiny model still reads the tokens).
    assert (embeds[0] - embeds[1]).abs().max() > 1e-4
    assert encoder.encode([]).shape == (0, 32)


def test_clip_text_model_without_projection_is_rejected(tiny_models) -> None:
    """SD's text encoder is a ``CLIPTextModel`` (no projection): strict loading names the missing weight."""
    config = TextEncoderConfig(type="clip", model=str(tiny_models["sd"]), subfolder="text_encoder")
    with pytest.raises(ModelLoadError, match=r"text_projection\.weight"):
        load_text_encoder(config)


def test_clip_missing_dir_is_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        load_text_encoder(TextEncoderConfig(type="clip", model=str(tmp_path / "nothing")))


def test_clip_dir_without_tokenizer_is_rejected(tiny_clip_dir: Path, tmp_path: Path) -> None:
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_clip_dir / name, weights_only)
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_text_encoder(TextEncoderConfig(type="clip", model=str(weights_only)))


def test_prompt_cache_is_bounded_lru_and_exact(minilm):
    minilm.clear_cache()
    limit = minilm.max_cache_entries
    try:
        minilm.max_cache_entries = 3
        first = minilm.encode(["hat", "dress"])
        minilm.encode(["scarf", "belt"])  # "hat" is the least recently used: dropped
        assert minilm.cache_size == 3
        again = minilm.encode(["dress", "hat"])  # "hat" re-encoded: identical to the first time
        assert torch.equal(again[1], first[0]) and torch.equal(again[0], first[1])
        assert minilm.cache_size == 3
    finally:
        minilm.max_cache_entries = limit
        minilm.clear_cache()


def test_lazy_encoder_answers_from_its_table_and_loads_only_for_a_new_phrase(minilm, tmp_path) -> None:
    """The prompt table gives the encoder's own embeddings bit for bit without loading it; a phrase outside the
    table loads it once (seeded with the table); a table written by another encoder is refused by name."""
    from spectrum_parsing.configs import TextEncoderConfig
    from spectrum_parsing.hub import ModelLoadError
    from spectrum_parsing.text_encoders import LazyTextEncoder, read_prompt_table, save_prompt_table

    phrases = ["a photo of a hat", "hair", "left shoe"]
    path = save_prompt_table(minilm, phrases, tmp_path / "table.safetensors")
    table = read_prompt_table(path, minilm.config)
    loads = []
    lazy = LazyTextEncoder(minilm.config, table, lambda: loads.append(1) or minilm)
    assert lazy.dim == 384 and not lazy.loaded
    minilm.clear_cache()
    assert torch.equal(lazy.encode(["hair", "left shoe", "hair"]), minilm.encode(["hair", "left shoe", "hair"]))
    assert not lazy.loaded and not loads
    mixed = lazy.encode(["hair", "a red scarf"])
    assert lazy.loaded and loads == [1]
    assert torch.equal(mixed, minilm.encode(["hair", "a red scarf"]))
    lazy.encode(["another new phrase"])
    assert loads == [1]
    with pytest.raises(ValueError, match="empty"):
        lazy.encode([" "])
    with pytest.raises(ModelLoadError, match="written by text encoder"):
        read_prompt_table(path, TextEncoderConfig(type="clip", model="x/y"))
    (tmp_path / "bad.safetensors").write_bytes(b"not a table")
    with pytest.raises(ModelLoadError, match="not a prompt table"):
        read_prompt_table(tmp_path / "bad.safetensors", minilm.config)


@pytest.mark.parametrize("name", ["spectrum-lite2", "spectrum-bodypix"])
def test_embedded_models_answer_their_default_prompts_and_presets_without_the_encoder(name) -> None:
    """The shipped prompt table covers every phrase of the default prompts, the EBP prompts, the built-in
    presets and the person prompt, so `spectrum parse` with them never loads the text encoder."""
    from spectrum_parsing.embedded import embedded_model_dir
    from spectrum_parsing.modeling import SpectrumConfig
    from spectrum_parsing.presets import PRESETS
    from spectrum_parsing.text_encoders import PROMPT_TABLE, read_prompt_table

    directory = embedded_model_dir(name)
    config = SpectrumConfig.from_json_file(directory / "config.json")
    table = read_prompt_table(directory / PROMPT_TABLE, config.text_encoder)
    wanted = {"person", *(config.default_prompts or []), *(config.ebp_prompts or [])}
    wanted |= {p for preset in PRESETS.values() for p in preset.prompts}
    assert not sorted(wanted - set(table))


@pytest.mark.slow
def test_default_parse_never_imports_transformers(tmp_path) -> None:
    """Command 1 of the README with the default prompts answers from the prompt table: no transformers import."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from spectrum_parsing.cli import main; "
            f"rc = main(['parse', {str(root / 'examples' / 'selfie.jpg')!r}, '--out', {str(tmp_path)!r}]); "
            "print(rc, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["0", "False"]


def test_a_prompt_table_edited_or_taken_from_another_model_is_refused(tmp_path) -> None:
    """The model records its table's digest: swapped rows, NaN/inf or zero rows, or another model's table are
    one ModelLoadError naming the file; removing the table falls back to the text encoder."""
    import shutil

    from safetensors.torch import load_file, save_file

    from spectrum_parsing.embedded import embedded_model_dir
    from spectrum_parsing.hub import ModelLoadError
    from spectrum_parsing.modeling import SpectrumConfig, SpectrumModel
    from spectrum_parsing.text_encoders import PROMPT_TABLE, prompt_table_digest

    source = embedded_model_dir("spectrum-lite2")
    config = SpectrumConfig.from_json_file(source / "config.json")
    table = load_file(str(source / PROMPT_TABLE))
    assert config.prompt_table_sha256 == prompt_table_digest(table)
    model = tmp_path / "m"
    shutil.copytree(source, model)
    metadata = {"text_encoder": __import__("json").dumps(config.text_encoder.to_dict(), sort_keys=True)}

    def write(rows: dict) -> None:
        save_file({k: v.contiguous() for k, v in rows.items()}, str(model / PROMPT_TABLE), metadata=metadata)

    swapped = dict(table)
    swapped["hair"], swapped["face"] = table["face"], table["hair"]
    write(swapped)
    with pytest.raises(ModelLoadError, match="not the one the model was saved with"):
        SpectrumModel.from_pretrained(model)
    for bad in (float("nan"), float("inf"), 0.0):
        broken = dict(table)
        broken["hair"] = torch.full_like(table["hair"], bad)
        write(broken)
        with pytest.raises(ModelLoadError, match="not finite or are zero"):
            SpectrumModel.from_pretrained(model)
    write(table)
    reloaded = SpectrumModel.from_pretrained(model)
    saved = reloaded.save_pretrained(tmp_path / "again")  # saving keeps the table and records its digest
    assert SpectrumConfig.from_json_file(saved / "config.json").prompt_table_sha256 == config.prompt_table_sha256
