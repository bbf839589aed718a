"""Shared fixtures: tiny random models written once per session in the real on-disk formats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SD-2.1-shaped model, TexDreamer-layout LoRA, CLIP vision, Image2Token + backbone JSON configs."""
    from spectrum_parsing.testing import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def i2tx_backbone(tiny_models):
    from spectrum_parsing.backbones import load_backbone
    from spectrum_parsing.configs import load_backbone_config

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
