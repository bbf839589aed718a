"""The model a run trains: fresh from the config, from a saved model (``init_from``), or with its decoder
warm-started from another model's (``init_decoder_from``)."""

from __future__ import annotations

import dataclasses
import logging
import os

import torch

from ..configs import ConfigError
from ..modeling import SpectrumModel
from .config import ExperimentConfig

logger = logging.getLogger(__name__)


def build_model(config: ExperimentConfig) -> SpectrumModel:
    """The model to train: ``init_from`` a saved model, else fresh from the config (loads frozen parts)."""
    if config.model.init_from_experiment and not config.model.init_from:
        raise ConfigError("model.init_from_experiment is resolved by train(); call continue_after(config) first")
    if config.model.init_from:
        if config.model.init_decoder_from:
            raise ConfigError("model.init_decoder_from is for fresh models; init_from already loads a decoder")
        model = SpectrumModel.from_pretrained(config.model.init_from)
    else:
        model = SpectrumModel.from_config(config.spectrum_config())
    if config.model.init_decoder_from:
        copied, fresh = warm_start_decoder(model, config.model.init_decoder_from)
        logger.warning("decoder warm start from %s: %d tensors copied, %d fresh (%s)", config.model.init_decoder_from,
                       len(copied), len(fresh), ", ".join(fresh[:6]) + (" ..." if len(fresh) > 6 else ""))
    if config.model.unfreeze_backbone:
        unfreeze_backbone(model)
    if model.config.input_size != config.data.image_size:  # the size it is trained at is the size it runs at
        model.config = dataclasses.replace(model.config, input_size=config.data.image_size)
    return model


def unfreeze_backbone(model: SpectrumModel) -> None:
    """Make the backbone (each member of a fusion) trainable, in place: its config says so (and is saved so),
    its parameters get gradients; BatchNorm layers stay in eval mode (the training loop trains the decoder's
    mode only), so their statistics are kept. Backbones whose config has no ``trainable`` field are refused."""
    from ..backbones import FusionBackbone

    backbone = model.backbone
    members = list(backbone.members) if isinstance(backbone, FusionBackbone) else [backbone]
    for member in members:
        if not hasattr(member.config, "trainable"):
            raise ConfigError(f"model.unfreeze_backbone: a {type(member).__name__} cannot be fine-tuned")
        member.config = dataclasses.replace(member.config, trainable=True)
        member.requires_grad_(True)
    if isinstance(backbone, FusionBackbone):
        backbone.config = dataclasses.replace(backbone.config, members=[m.config for m in members])
    model.config = dataclasses.replace(model.config, backbone=backbone.config)


def warm_start_decoder(model: SpectrumModel, source: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Copy the decoder tensors of the saved model ``source`` whose name and shape match ``model``'s decoder.

    When ``model``'s backbone is a fusion with a member whose channels per stride equal the source model's
    backbone, the source's input projections are copied into that member's input channels and the other
    members' weights start at zero: the warm-started model begins as the source model (up to the member's own
    weights) and learns what the added members bring.

    Returns (copied names, names left freshly initialised). A source sharing no tensor is an error.
    """
    from safetensors.torch import load_file

    from ..backbones import FusionBackbone
    from ..hub import resolve_dir
    from ..modeling import SpectrumConfig

    directory = resolve_dir(str(source), allow_patterns=["config.json", "model.safetensors"])
    state = load_file(str(directory / "model.safetensors"))
    src_channels = SpectrumConfig.from_json_file(directory / "config.json").decoder.in_channels
    offsets: dict[tuple[int, int], int] = {}  # (source channels, own channels) -> offset of the matching member
    if isinstance(model.backbone, FusionBackbone):
        per_member = [m.feature_channels() for m in model.backbone.members]
        for j, channels in enumerate(per_member):
            if all(channels[s] == int(src_channels.get(str(s), -1)) for s in channels):
                for s in channels:
                    before = sum(p[s] for p in per_member[:j])
                    offsets[(channels[s], sum(p[s] for p in per_member))] = before
                break
    own = model.decoder.state_dict()
    take: dict[str, torch.Tensor] = {}
    for k, v in own.items():
        src = state.get(f"decoder.{k}")
        if src is None:
            continue
        if src.shape == v.shape:
            take[k] = src
        elif (src.ndim == 4 and src.shape[0] == v.shape[0] and src.shape[2:] == v.shape[2:]
              and (src.shape[1], v.shape[1]) in offsets):
            off = offsets[(src.shape[1], v.shape[1])]
            embedded = torch.zeros_like(v)
            embedded[:, off:off + src.shape[1]] = src
            take[k] = embedded
    if not take:
        raise ConfigError(f"model.init_decoder_from {source}: no decoder tensor matches this model's decoder")
    model.decoder.load_state_dict({**own, **take}, strict=True)
    return sorted(take), sorted(set(own) - set(take))
