"""Shared fixtures: tiny random models written once per session in the real on-disk formats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)  # one thread per test process: no spin-waiting fights on a shared 2-core machine

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SD-2.1-shaped model, TexDreamer-layout LoRA, CLIP vision, Im2Context + backbone JSON configs."""
    from spectrum_parsing.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def i2tx_backbone(tiny_models):
    from spectrum_parsing.backbones import load_backbone, load_backbone_config

    return load_backbone(load_backbone_config(tiny_models["i2tx_config"]))


@pytest.fixture(scope="session")
def minilm():
    from spectrum_parsing.configs import TextEncoderConfig
    from spectrum_parsing.text_encoders import load_text_encoder

    return load_text_encoder(TextEncoderConfig(type="minilm"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}: this test needs the shared data")
    return SHARED


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm) -> Path:
    """A small random Spectrum model (random BodyPix + small decoder) saved to disk, for pipeline/CLI tests."""
    from spectrum_parsing import SpectrumConfig, SpectrumModel
    from spectrum_parsing.backbones import load_backbone
    from spectrum_parsing.backbones.bodypix import BodyPixConfig
    from spectrum_parsing.configs import DecoderConfig

    torch.manual_seed(0)
    config = SpectrumConfig(backbone=BodyPixConfig(weights=None, trainable=True),
                            decoder=DecoderConfig(hidden_dim=32, mask_dim=32, num_queries=8, num_heads=4,
                                                  encoder_layers=1, encoder_ffn_dim=64, decoder_layers=2,
                                                  decoder_ffn_dim=64),
                            default_prompts=["shirt", "hat"], ebp_prompts=["hair", "face"])
    model = SpectrumModel.from_config(config, backbone=load_backbone(config.backbone), text_encoder=minilm)
    # Make every query confident "person"-or-part so grouping has something to group: flip the no-object embedding.
    with torch.no_grad():
        model.decoder.transformer_decoder.grounding.no_object.mul_(-1)
    return model.save_pretrained(tmp_path_factory.mktemp("model") / "m")
