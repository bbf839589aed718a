"""MoveNet-MultiPose's feature pyramid as a backbone: the taps are the detector's own FPN and heads, and a saved
Spectrum model carries the graph's constants (backbones/movenet.py)."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from spectrum_parsing.backbones import MoveNetFeaturesConfig, backbone_config_from_dict, load_backbone
from spectrum_parsing.backbones.movenet import TAPS
from spectrum_parsing.configs import STRIDES


def test_features_are_the_detector_graphs_own_nodes():
    backbone = load_backbone(MoveNetFeaturesConfig())
    images = torch.rand(1, 3, 96, 128)
    feats = backbone(images)
    nodes = backbone.graph((images * 255).permute(0, 2, 3, 1).contiguous(),
                           outputs=[n for s in STRIDES for n in TAPS[s]])
    assert backbone.feature_channels() == {4: 24 + 17 + 1, 8: 24, 16: 32, 32: 64}
    for s in STRIDES:
        want = torch.cat([nodes[n] for n in TAPS[s]], dim=-1).permute(0, 3, 1, 2)
        assert torch.equal(feats[s], want)
    assert backbone_config_from_dict({"type": "movenet"}) == MoveNetFeaturesConfig()


def test_a_saved_model_carries_the_graph_constants(tmp_path, minilm):
    from spectrum_parsing import SpectrumConfig, SpectrumModel
    from spectrum_parsing.configs import DecoderConfig

    torch.manual_seed(0)
    config = SpectrumConfig(backbone=MoveNetFeaturesConfig(),
                            decoder=DecoderConfig(hidden_dim=32, mask_dim=32, num_queries=4, num_heads=4,
                                                  encoder_layers=1, encoder_ffn_dim=32, decoder_layers=1,
                                                  decoder_ffn_dim=32))
    model = SpectrumModel.from_config(config, text_encoder=minilm)
    name, buffer = next((k, v) for k, v in model.backbone.graph.named_buffers() if v.is_floating_point()
                        and v.numel() > 100)
    buffer.mul_(1.5)  # differs from the packaged weights: the reload must take it from the checkpoint
    directory = model.save_pretrained(tmp_path / "m")
    assert f"backbone.graph.{name}" in load_file(str(directory / "model.safetensors"))
    loaded = SpectrumModel.from_pretrained(directory, text_encoder=minilm)
    assert torch.equal(dict(loaded.backbone.graph.named_buffers())[name], buffer)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x, ["shirt"]), loaded(x, ["shirt"])
    assert torch.equal(a["pred_masks"], b["pred_masks"])
