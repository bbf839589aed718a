"""One contract, every backbone type (in the manner of SMP's model tester and diffusers' ModelTesterMixin).

Each backbone the registry can build is checked for: the four strides, declared channels equal to what
``forward`` returns, exact ``ceil(side / 32) * 32 / stride`` sizes for odd inputs, float32 output, determinism,
batch independence (an image's features do not depend on its batch mates), and frozen means no gradient.
"""

from __future__ import annotations

import math

import pytest
import torch

from spectrum_parsing.backbones import (
    BodyPixConfig,
    EfficientNetLiteConfig,
    FeatureBackbone,
    FusionConfig,
    MoveNetFeaturesConfig,
    load_backbone,
    load_backbone_config,
)
from spectrum_parsing.configs import STRIDES


def _build(kind: str, tiny_models) -> FeatureBackbone:
    torch.manual_seed(0)
    if kind == "bodypix-16":
        return load_backbone(BodyPixConfig(weights=None, trainable=False))
    if kind == "bodypix-8":
        return load_backbone(BodyPixConfig(weights=None, output_stride=8, trainable=False, include_heads=False))
    if kind == "efficientnet-lite0":
        return load_backbone(EfficientNetLiteConfig(variant="lite0", weights=None))
    if kind == "fusion":
        return load_backbone(FusionConfig(members=[EfficientNetLiteConfig(variant="lite0", weights=None),
                                                   BodyPixConfig(weights=None, trainable=False)]))
    if kind == "movenet":
        return load_backbone(MoveNetFeaturesConfig())
    if kind in ("i2tx", "t2i"):
        return load_backbone(load_backbone_config(tiny_models[f"{kind}_config"]))
    raise ValueError(kind)


KINDS = ["bodypix-16", "bodypix-8", "efficientnet-lite0", "fusion", "i2tx", "movenet", "t2i"]


@pytest.fixture(scope="module", params=KINDS)
def backbone(request, tiny_models) -> FeatureBackbone:
    return _build(request.param, tiny_models)


@pytest.mark.parametrize("size", [(64, 64), (65, 97), (100, 33)])
def test_strides_channels_and_sizes(backbone, size):
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, *size))
    assert sorted(feats) == list(STRIDES)
    channels = backbone.feature_channels()
    for s, f in feats.items():
        assert f.shape == (1, channels[s], math.ceil(size[0] / 32) * 32 // s, math.ceil(size[1] / 32) * 32 // s)
        assert f.dtype == torch.float32 and torch.isfinite(f).all()


def test_deterministic_and_batch_independent(backbone):
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        both, again, alone = backbone(x), backbone(x), backbone(x[1:])
    for s in STRIDES:
        assert torch.equal(both[s], again[s])
        assert torch.allclose(both[s][1:], alone[s], atol=1e-4, rtol=1e-4)


def test_frozen_means_no_gradient(backbone):
    assert not backbone.trainable
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not backbone.training  # a frozen backbone stays in eval mode whatever its parent asks
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    feats = backbone(x)
    assert all(p.grad is None for p in backbone.parameters())
    assert all(not f.requires_grad for f in feats.values())
