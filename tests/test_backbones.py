"""Frozen diffusion backbones: LoRA merging, IM2CONTEXT loading, feature maps and their invariants."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from spectrum_parsing.backbones import DiffusionBackbone, DiffusionBackboneConfig, load_backbone, load_backbone_config
from spectrum_parsing.backbones.base import ActivationCollector
from spectrum_parsing.backbones.diffusion import merge_texture_lora
from spectrum_parsing.backbones.im2context import Im2Context, load_im2context
from spectrum_parsing.configs import STRIDES
from spectrum_parsing.hub import ModelLoadError, resolve_file
from spectrum_parsing.tiny_models import build_tiny_im2context, build_tiny_texture_lora

UNET_LEVELS = (16, 32)  # levels made only of UNet up-block activations (default feature layers)
I2T_NAMES = ("i2t_decoder.pth", "i2uv/i2t_decoder.pth")


def _load_unet(sd_dir: Path) -> nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(sd_dir, subfolder="unet")


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return _images(2, 3, 100, 70)


@pytest.fixture(scope="module")
def i2tx_config(tiny_models):
    return load_backbone_config(tiny_models["i2tx_config"])


@pytest.fixture(scope="module")
def i2tx_features(i2tx_backbone, images) -> dict[int, torch.Tensor]:
    return i2tx_backbone(images)


# ---------------------------------------------------------------------------------------------
# texture LoRA merging
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_unet_state(tiny_models) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in _load_unet(tiny_models["sd"]).state_dict().items()}


@pytest.fixture(scope="module")
def merged_unet_state(tiny_models) -> dict[str, torch.Tensor]:
    unet = merge_texture_lora(_load_unet(tiny_models["sd"]), str(tiny_models["texture_lora"]))
    return {k: v.clone() for k, v in unet.state_dict().items()}


@pytest.fixture(scope="module")
def lora_deltas(tiny_models) -> dict[str, torch.Tensor]:
    """``{module path: (lora_alpha / r) * B @ A}`` read straight from the adapter files."""
    adapter = Path(tiny_models["texture_lora"]) / "unet"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    prefix, suffix_a = "base_model.model.", ".lora_A.weight"
    deltas = {}
    for key_a in (k for k in weights if k.endswith(suffix_a)):
        module = key_a[len(prefix):-len(suffix_a)]
        a, b = weights[key_a], weights[f"{prefix}{module}.lora_B.weight"]
        assert a.shape[0] == cfg["r"]
        deltas[module] = (cfg["lora_alpha"] / cfg["r"]) * b @ a
    return deltas


def test_lora_merge_adds_scaled_low_rank_delta(base_unet_state, merged_unet_state, lora_deltas) -> None:
    """For every LoRA target: merged W == base W + (alpha / r) * B @ A; every other tensor is untouched."""
    checked = {
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_v",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0",
        "up_blocks.3.attentions.1.transformer_blocks.0.attn1.to_out.0",
    }
    assert checked <= set(lora_deltas)
    assert set(merged_unet_state) == set(base_unet_state)  # plain UNet again: no lora_* / base_layer keys
    for module, delta in lora_deltas.items():
        key = f"{module}.weight"
        assert delta.abs().max() > 1e-3, module  # the tiny LoRA is not a no-op
        torch.testing.assert_close(merged_unet_state[key], base_unet_state[key] + delta, atol=1e-5, rtol=0)
    merged_weights = {f"{m}.weight" for m in lora_deltas}
    for key, value in base_unet_state.items():
        if key not in merged_weights:
            assert torch.equal(merged_unet_state[key], value), key


def test_lora_bin_and_safetensors_merge_identically(tiny_models, merged_unet_state, tmp_path: Path) -> None:
    """The same LoRA saved as ``adapter_model.bin`` merges to exactly the same UNet."""
    # conftest builds the LoRA with seed 0 + 1.
    lora_bin = build_tiny_texture_lora(tmp_path / "lora_bin", tiny_models["sd"], seed=1, safe_serialization=False)
    assert (lora_bin / "unet" / "adapter_model.bin").is_file()
    assert not (lora_bin / "unet" / "adapter_model.safetensors").exists()
    saved = torch.load(lora_bin / "unet" / "adapter_model.bin", weights_only=True)
    reference = load_file(str(Path(tiny_models["texture_lora"]) / "unet" / "adapter_model.safetensors"))
    assert saved.keys() == reference.keys() and all(torch.equal(saved[k], reference[k]) for k in saved)

    merged = merge_texture_lora(_load_unet(tiny_models["sd"]), str(lora_bin)).state_dict()
    assert merged.keys() == merged_unet_state.keys()
    for key, value in merged.items():
        assert torch.equal(value, merged_unet_state[key]), key


@pytest.mark.parametrize("scale", [0.5, 0.0])
def test_lora_scale_scales_the_delta(tiny_models, base_unet_state, lora_deltas, scale: float) -> None:
    merged = merge_texture_lora(_load_unet(tiny_models["sd"]), str(tiny_models["texture_lora"]), scale=scale)
    state = merged.state_dict()
    for module, delta in lora_deltas.items():
        key = f"{module}.weight"
        torch.testing.assert_close(state[key], base_unet_state[key] + scale * delta, atol=1e-5, rtol=0)


def _edited_lora(src: Path, dst: Path, edit) -> Path:
    (dst / "unet").mkdir(parents=True)
    shutil.copy(src / "unet" / "adapter_config.json", dst / "unet")
    weights = load_file(str(src / "unet" / "adapter_model.safetensors"))
    edit(weights)
    save_file(weights, str(dst / "unet" / "adapter_model.safetensors"))
    return dst


def test_lora_unexpected_tensor_is_named(tiny_models, tmp_path: Path) -> None:
    extra = "base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_C.weight"
    lora = _edited_lora(Path(tiny_models["texture_lora"]), tmp_path / "extra",
                        lambda w: w.__setitem__(extra, torch.zeros(4, 16)))
    with pytest.raises(ModelLoadError, match="unexpected keys") as err:
        merge_texture_lora(_load_unet(tiny_models["sd"]), str(lora))
    assert extra in str(err.value)


def test_lora_missing_tensor_is_named(tiny_models, tmp_path: Path) -> None:
    module = "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v"
    lora = _edited_lora(Path(tiny_models["texture_lora"]), tmp_path / "missing",
                        lambda w: w.pop(f"base_model.model.{module}.lora_B.weight"))
    with pytest.raises(ModelLoadError, match="missing keys") as err:
        merge_texture_lora(_load_unet(tiny_models["sd"]), str(lora))
    assert f"{module}.lora_B" in str(err.value)


def test_lora_dir_without_adapter_config(tiny_models, tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    shutil.copy(Path(tiny_models["texture_lora"]) / "unet" / "adapter_model.safetensors", tmp_path / "unet")
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        merge_texture_lora(_load_unet(tiny_models["sd"]), str(tmp_path))


# ---------------------------------------------------------------------------------------------
# feature maps
# ---------------------------------------------------------------------------------------------


def test_feature_strides_shapes_and_channels(i2tx_backbone, i2tx_features) -> None:
    assert set(i2tx_features) == set(STRIDES) == {4, 8, 16, 32}
    channels = i2tx_backbone.feature_channels()
    assert set(channels) == set(STRIDES)
    for s, f in i2tx_features.items():
        expected = (2, channels[s], math.ceil(100 / 32) * 32 // s, math.ceil(70 / 32) * 32 // s)
        assert tuple(f.shape) == expected, s
        assert f.dtype == torch.float32
        assert torch.isfinite(f).all(), s
        assert f.std() > 0, s


def test_feature_sizes_for_odd_image_sizes(i2tx_backbone) -> None:
    """Every level covers the image rounded up to 32 (the 64-padding of the VAE input is cropped away)."""
    for h, w in [(64, 64), (65, 33), (32, 96), (1, 1)]:
        feats = i2tx_backbone(_images(1, 3, h, w))
        for s, f in feats.items():
            assert f.shape[-2:] == (math.ceil(h / 32) * 32 // s, math.ceil(w / 32) * 32 // s), (h, w, s)


def test_features_change_with_the_texture_lora(i2tx_config, i2tx_features, images) -> None:
    """Without the LoRA the VAE-only stride-4 level is identical and the UNet levels differ."""
    assert i2tx_config.texture_lora is not None
    plain = load_backbone(dataclasses.replace(i2tx_config, texture_lora=None))(images)
    assert torch.equal(plain[4], i2tx_features[4])
    for s in UNET_LEVELS:
        assert (plain[s] - i2tx_features[s]).abs().max() > 1e-3, s


def test_t2i_baseline(tiny_models, i2tx_backbone, i2tx_features, images) -> None:
    """The T2I baseline shares the code path: same levels and channels, same VAE features, other UNet features."""
    config = load_backbone_config(tiny_models["t2i_config"])
    assert config.type == "t2i"
    backbone = load_backbone(config)
    assert isinstance(backbone, DiffusionBackbone)
    feats = backbone(images)
    assert backbone.feature_channels() == i2tx_backbone.feature_channels()
    for s in STRIDES:
        assert feats[s].shape == i2tx_features[s].shape
        assert torch.isfinite(feats[s]).all()
    assert torch.equal(feats[4], i2tx_features[4])
    for s in UNET_LEVELS:
        assert (feats[s] - i2tx_features[s]).abs().max() > 1e-3, s
    # Its context is one fixed sequence (the empty prompt), the same for every image.
    context = backbone.encode_context(images)
    assert context.shape[0] == 2 and torch.equal(context[0], context[1])


def test_i2tx_context_depends_on_the_image(i2tx_backbone, images) -> None:
    context = i2tx_backbone.encode_context(images)
    assert context.shape == (2, 8, 64)  # tiny Im2Context: 8 queries, 64-d (the UNet's cross_attention_dim)
    assert (context[0] - context[1]).abs().max() > 1e-4


def test_backbone_is_frozen(i2tx_backbone, images) -> None:
    params = list(i2tx_backbone.parameters())
    assert params and not any(p.requires_grad for p in params)
    i2tx_backbone.train()
    assert not any(m.training for m in i2tx_backbone.modules())
    # A parent module's .train() must not switch it either.
    parent = nn.ModuleDict({"backbone": i2tx_backbone}).train()
    assert parent.training and not i2tx_backbone.training
    x = images[:1].clone().requires_grad_(True)
    out = i2tx_backbone(x)
    assert not any(f.requires_grad for f in out.values())


def test_batch_consistency(i2tx_backbone, images, i2tx_features) -> None:
    """Each image's features do not depend on the other images of the batch."""
    for i in range(images.shape[0]):
        alone = i2tx_backbone(images[i:i + 1])
        for s in STRIDES:
            torch.testing.assert_close(alone[s][0], i2tx_features[s][i], atol=1e-5, rtol=1e-4)


def test_deterministic(i2tx_backbone, images, i2tx_features) -> None:
    again = i2tx_backbone(images)
    assert all(torch.equal(again[s], i2tx_features[s]) for s in STRIDES)


def test_timestep_noise_is_seeded(i2tx_config, images, i2tx_features) -> None:
    """t > 0 noises the latent with seeded noise: repeatable, VAE-only level unchanged, UNet levels changed."""
    backbone = load_backbone(dataclasses.replace(i2tx_config, timestep=500))
    first, second = backbone(images), backbone(images)
    for s in STRIDES:
        assert torch.equal(first[s], second[s]), s
        assert torch.isfinite(first[s]).all()
    assert torch.equal(first[4], i2tx_features[4])
    for s in UNET_LEVELS:
        assert (first[s] - i2tx_features[s]).abs().max() > 1e-3, s
    other_seed = load_backbone(dataclasses.replace(i2tx_config, timestep=500, noise_seed=1))(images)
    for s in UNET_LEVELS:
        assert (other_seed[s] - first[s]).abs().max() > 1e-3, s


def test_timestep_without_alphas_is_rejected(i2tx_backbone, i2tx_config) -> None:
    with pytest.raises(ValueError, match="alphas_cumprod"):
        DiffusionBackbone(dataclasses.replace(i2tx_config, timestep=10), i2tx_backbone.vae, i2tx_backbone.unet,
                          i2tx_backbone.context, None)


def test_bfloat16_close_to_float32(i2tx_config, images, i2tx_features) -> None:
    backbone = load_backbone(dataclasses.replace(i2tx_config, dtype="bfloat16"))
    assert backbone.dtype == torch.bfloat16
    feats = backbone(images)
    for s in STRIDES:
        assert feats[s].dtype == torch.bfloat16
        assert feats[s].shape == i2tx_features[s].shape
        ref = i2tx_features[s]
        rel = (feats[s].float() - ref).norm() / ref.norm()
        assert rel < 0.06, (s, rel.item())


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (lambda: _images(1, 3, 64, 64).numpy(), TypeError, "torch.Tensor"),
        (lambda: [[0.0]], TypeError, "torch.Tensor"),
        (lambda: _images(1, 1, 64, 64), ValueError, r"\(B, 3, H, W\)"),
        (lambda: _images(1, 4, 64, 64), ValueError, r"\(1, 4, 64, 64\)"),
        (lambda: _images(3, 64, 64), ValueError, r"\(B, 3, H, W\)"),
        (lambda: (_images(1, 3, 64, 64) * 255).to(torch.uint8), TypeError, "float"),
        (lambda: torch.zeros(1, 3, 0, 64), ValueError, "non-empty"),
    ],
)
def test_bad_input_is_rejected(i2tx_backbone, bad, error, match) -> None:
    with pytest.raises(error, match=match):
        i2tx_backbone(bad())


def test_vision_width_mismatch_is_rejected(i2tx_config, tmp_path: Path) -> None:
    """An IM2CONTEXT expecting 48-d tokens cannot sit on the 32-d tiny CLIP vision encoder."""
    i2t = build_tiny_im2context(tmp_path / "i2t_decoder.pth", visual_dim=48)
    with pytest.raises(ModelLoadError, match="48-d"):
        load_backbone(dataclasses.replace(i2tx_config, im2context=str(i2t)))


def test_activation_collector_names_bad_layer() -> None:
    root = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match="up_blocks.7"):
        ActivationCollector(root, ["0", "up_blocks.7"])


def test_bad_feature_layer_in_config_is_named(i2tx_config) -> None:
    config = dataclasses.replace(i2tx_config, feature_layers={"unet": ["up_blocks.9"]})
    with pytest.raises(ValueError, match="up_blocks.9"):
        load_backbone(config)


def test_activation_collector_stops_early() -> None:
    """With ``stop_early`` the layers after the last requested one never run."""
    ran = []
    root = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    for i, m in enumerate(root):
        m.register_forward_hook(lambda *_a, i=i: ran.append(i))
    collector = ActivationCollector(root, ["1"], stop_early=True)
    with collector.capture() as out:
        root(torch.ones(1, 2))
    assert ran == [0, 1]
    assert torch.equal(out["1"], root[1](root[0](torch.ones(1, 2))))


# ---------------------------------------------------------------------------------------------
# IM2CONTEXT (Im2Context)
# ---------------------------------------------------------------------------------------------


def _small_i2t() -> Im2Context:
    torch.manual_seed(0)
    module = Im2Context(48, 64, 5, 2, ffn_dim=32)
    with torch.no_grad():
        module.query.normal_()
    return module.eval()


def test_image2token_from_state_dict_infers_sizes() -> None:
    src = _small_i2t()
    loaded = Im2Context.from_state_dict(src.state_dict()).eval()
    assert loaded.visual_proj.in_features == 48
    assert loaded.visual_proj.out_features == 64
    assert loaded.query.shape == (1, 5, 64)
    assert loaded.num_layers == 2 and len(loaded.i2t.layers) == 2
    assert loaded.i2t.layers[0].linear1.out_features == 32
    tokens = torch.randn(3, 7, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = src(tokens), loaded(tokens)
    assert got.shape == (3, 5, 64)
    assert torch.equal(got, expected)


def test_image2token_missing_and_unexpected_keys_are_named() -> None:
    state = _small_i2t().state_dict()
    missing = dict(state)
    del missing["i2t.layers.1.norm2.bias"]
    with pytest.raises(ModelLoadError, match=r"i2t\.layers\.1\.norm2\.bias"):
        Im2Context.from_state_dict(missing)
    extra = {**state, "i2t.extra_head.weight": torch.zeros(2)}
    with pytest.raises(ModelLoadError, match=r"i2t\.extra_head\.weight"):
        Im2Context.from_state_dict(extra)
    with pytest.raises(ModelLoadError, match="visual_proj.weight"):
        Im2Context.from_state_dict({k: v for k, v in state.items() if k != "visual_proj.weight"})


def test_image2token_texdreamer_size_inference() -> None:
    """TexDreamer's defaults: 1280-d CLIP-H tokens -> 77 x 1024 context, 3 layers, 2048 FFN, 16 heads."""
    with torch.device("meta"):
        state = Im2Context().state_dict()
        module = Im2Context.from_state_dict(state)
    assert module.visual_proj.in_features == 1280
    assert module.visual_proj.out_features == 1024
    assert module.query.shape == (1, 77, 1024)
    assert module.num_layers == 3
    assert module.i2t.layers[0].linear1.out_features == 2048
    assert module.i2t.layers[0].self_attn.num_heads == 16
    assert module.i2t.layers[0].multihead_attn.num_heads == 16


def test_load_im2context_pth_and_safetensors(tmp_path: Path) -> None:
    src = _small_i2t()
    tokens = torch.randn(2, 4, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = src(tokens)
    torch.save(src.state_dict(), tmp_path / "i2t.pth")
    save_file(src.state_dict(), str(tmp_path / "i2t.safetensors"))
    torch.save({"state_dict": src.state_dict()}, tmp_path / "wrapped.pth")
    for name in ("i2t.pth", "i2t.safetensors", "wrapped.pth"):
        loaded = load_im2context(tmp_path / name).eval()
        with torch.no_grad():
            assert torch.equal(loaded(tokens), expected), name


_PAYLOAD_RAN: list[str] = []


def _payload() -> dict:
    _PAYLOAD_RAN.append("ran")
    return {}


class _Malicious:
    """Unpickling this calls ``_payload`` (a stand-in for arbitrary code)."""

    def __reduce__(self):
        return (_payload, ())


def test_load_im2context_refuses_pickled_objects_without_running_them(tmp_path: Path) -> None:
    path = tmp_path / "i2t_decoder.pth"
    torch.save({"visual_proj.weight": torch.zeros(2, 2), "x": _Malicious()}, path)
    _PAYLOAD_RAN.clear()
    with pytest.raises(ModelLoadError, match="tensors-only"):
        load_im2context(path)
    assert _PAYLOAD_RAN == []
    # Sanity check that the payload is live: an unsafe load does run it.
    torch.load(path, weights_only=False)
    assert _PAYLOAD_RAN == ["ran"]
    _PAYLOAD_RAN.clear()


def test_load_im2context_rejects_non_tensor_values(tmp_path: Path) -> None:
    path = tmp_path / "i2t.pth"
    torch.save({"visual_proj.weight": torch.zeros(2, 2), "epoch": 3}, path)
    with pytest.raises(ModelLoadError, match="state dict of tensors"):
        load_im2context(path)


# ---------------------------------------------------------------------------------------------
# hub.resolve_file
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def fail(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)


def test_resolve_file_in_local_dirs(tiny_models, tmp_path: Path, no_network) -> None:
    lora_dir = Path(tiny_models["texture_lora"])
    assert resolve_file(str(lora_dir), I2T_NAMES) == lora_dir / "i2uv" / "i2t_decoder.pth"
    (tmp_path / "i2uv").mkdir()
    (tmp_path / "i2uv" / "i2t_decoder.pth").write_bytes(b"")
    (tmp_path / "i2t_decoder.pth").write_bytes(b"")
    assert resolve_file(str(tmp_path), I2T_NAMES) == tmp_path / "i2t_decoder.pth"  # first name wins
    assert resolve_file(str(tmp_path / "i2uv" / "i2t_decoder.pth"), I2T_NAMES) == tmp_path / "i2uv/i2t_decoder.pth"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="i2t_decoder.pth"):
        resolve_file(str(empty), I2T_NAMES)


@pytest.mark.parametrize("source", ["/no/such/dir/i2t_decoder.pth", "./no/such/i2t.pth", "~/no-such-spectrum-dir/x"])
def test_resolve_file_missing_local_path_does_not_touch_network(source: str, no_network) -> None:
    with pytest.raises(ModelLoadError, match="no such local file"):
        resolve_file(source, I2T_NAMES)


def test_t2i_without_tokenizer_is_a_clear_load_error(tiny_models, tmp_path):
    """A base model folder without ``tokenizer/`` is refused with ModelLoadError, not a crash deep inside."""
    base = tmp_path / "sd"
    shutil.copytree(tiny_models["sd"], base)
    shutil.rmtree(base / "tokenizer")
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_backbone(DiffusionBackboneConfig(type="t2i", base_model=str(base)))


def test_tiny_lora_can_be_rebuilt_in_place(tiny_models, tmp_path):
    for _ in range(2):
        build_tiny_texture_lora(tmp_path / "lora", tiny_models["sd"])
    assert (tmp_path / "lora" / "unet" / "adapter_config.json").is_file()


@pytest.mark.parametrize("levels", [2, 3, 4])
def test_default_taps_follow_the_unet_block_structure(tiny_models, tmp_path: Path, levels: int) -> None:
    """A UNet with 2 levels (diffusers' own test size) or 3 (SDXL's shape) works without hand-written
    feature_layers: the taps are found by position, every stride gets features, and the 4-level SD shape keeps
    exactly the documented SD 2.1 taps."""
    from diffusers import UNet2DConditionModel

    from spectrum_parsing.backbones.diffusion import DEFAULT_FEATURE_LAYERS
    from spectrum_parsing.tiny_models import TINY_CONTEXT_DIM

    sd = tmp_path / "sd"
    shutil.copytree(tiny_models["sd"], sd)
    shutil.rmtree(sd / "unet")
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        block_out_channels=(16, 32, 32, 32)[:levels], attention_head_dim=4,
        cross_attention_dim=TINY_CONTEXT_DIM, use_linear_projection=True,
    ).save_pretrained(sd / "unet")
    backbone = load_backbone(DiffusionBackboneConfig(type="t2i", base_model=str(sd)))
    feats = backbone(_images(1, 3, 70, 100))
    assert sorted(feats) == list(STRIDES)
    for s, f in feats.items():
        assert f.shape[-2:] == (math.ceil(70 / 32) * 32 // s, math.ceil(100 / 32) * 32 // s)
        assert torch.isfinite(f).all()
    if levels == 4:
        assert backbone.feature_layers == DEFAULT_FEATURE_LAYERS
    else:
        assert backbone.feature_layers["unet"][0].startswith("up_blocks.0.")  # the pre-upsampler state


def test_pickled_lora_bin_with_a_payload_is_refused_with_the_file_named(tiny_models, tmp_path: Path) -> None:
    lora_bin = build_tiny_texture_lora(tmp_path / "lora_bin", tiny_models["sd"], seed=1, safe_serialization=False)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"payload": Payload()}, lora_bin / "unet" / "adapter_model.bin")
    with pytest.raises(ModelLoadError, match=r"unet: could not read the LoRA weights \(a pickled \.bin adapter"):
        merge_texture_lora(_load_unet(tiny_models["sd"]), str(lora_bin))
    assert not marker.exists()
