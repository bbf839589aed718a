"""One contract, every backbone type (in the manner of SMP's model tester and diffusers' ModelTesterMixin).

Each backbone the registry can build is checked for: the four strides, declared channels equal to what
``forward`` returns, exact ``ceil(side / 32) * 32 / stride`` sizes for odd inputs, float32 output, determinism,
batch independence (an image's features do not depend on its batch mates), and frozen means no gradient.
"""

from __future__ import annotations

import math

import pytest
import torch

from spectrum_parsing.backbones import FeatureBackbone, load_backbone, registered_backbones
from spectrum_parsing.configs import STRIDES

NAMES = sorted(registered_backbones())
"""Every registered backbone type: each is checked on every example config it registers."""


def test_every_registered_type_has_examples_of_its_own_type(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("registry")
    names = set(registered_backbones())
    assert {"bodypix", "efficientnet-lite", "fusion", "i2tx", "movenet", "t2i"} <= names
    for name, spec in registered_backbones().items():
        examples = spec.examples(workdir)
        assert examples and all(isinstance(c, spec.config_class) and c.type == name for c in examples)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("backbone-examples")


@pytest.fixture(scope="module", params=NAMES)
def backbones(request, workdir) -> list[FeatureBackbone]:
    torch.manual_seed(0)
    return [load_backbone(config) for config in registered_backbones()[request.param].examples(workdir)]


@pytest.mark.parametrize("size", [(64, 64), (65, 97), (100, 33)])
def test_strides_channels_and_sizes(backbones, size):
    for backbone in backbones:
        with torch.no_grad():
            feats = backbone(torch.rand(1, 3, *size))
        assert sorted(feats) == list(STRIDES)
        channels = backbone.feature_channels()
        for s, f in feats.items():
            assert f.shape == (1, channels[s], math.ceil(size[0] / 32) * 32 // s, math.ceil(size[1] / 32) * 32 // s)
            assert f.dtype == torch.float32 and torch.isfinite(f).all()


def test_deterministic_and_batch_independent(backbones):
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    for backbone in backbones:
        with torch.no_grad():
            both, again, alone = backbone(x), backbone(x), backbone(x[1:])
        for s in STRIDES:
            assert torch.equal(both[s], again[s])
            assert torch.allclose(both[s][1:], alone[s], atol=1e-4, rtol=1e-4)


def test_frozen_means_no_gradient(backbones):
    for backbone in backbones:
        assert not backbone.trainable
        assert not any(p.requires_grad for p in backbone.parameters())
        backbone.train()
        assert not backbone.training  # a frozen backbone stays in eval mode whatever its parent asks
        x = torch.rand(1, 3, 64, 64, requires_grad=True)
        feats = backbone(x)
        assert all(p.grad is None for p in backbone.parameters())
        assert all(not f.requires_grad for f in feats.values())
