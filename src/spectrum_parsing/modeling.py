"""SpectrumModel: frozen backbone + frozen text encoder + trainable decoder/grounding, HF-style save/load."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .backbones import FeatureBackbone, backbone_config_from_dict, load_backbone, without_initial_weights
from .configs import (
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    ConfigBase,
    ConfigError,
    DecoderConfig,
    TextEncoderConfig,
    check_range,
)
from .decoder import SpectrumDecoder
from .hub import ModelLoadError, resolve_dir
from .outputs import SpectrumOutput
from .processor import MIN_MODEL_SIDE
from .text_encoders import (
    PROMPT_TABLE,
    LazyTextEncoder,
    TextEncoder,
    load_text_encoder,
    prompt_table_digest,
    read_prompt_table,
    save_prompt_table,
)

LEGACY_KEYS = frozenset({"loss"})
"""Keys that configs saved by earlier versions hold and that no longer describe the model (the loss config
moved to training); they are read and ignored."""

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class SpectrumConfig(ConfigBase):
    """Everything needed to rebuild a Spectrum model; frozen parts are named by source, not copied. It describes
    the model only: how it was trained (loss, schedule, data) is the training config's (``experiment.json``)."""

    backbone: ConfigBase
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    person_prompt: str = "person"
    withheld: list[str] = field(default_factory=list)  # categories kept out of training (zero-shot evaluation)
    ebp_prompts: list[str] | None = None  # expanded body-part prompts this model knows (None: the full EBP set)
    default_prompts: list[str] | None = None  # prompts used when the caller gives none (None: a built-in list)
    input_size: int = 512  # longest image side fed to the model by default (the resolution it was trained at)
    prompt_table_sha256: str | None = None  # the digest of the prompt table saved with the model (if any)
    format_version: int = 1

    def __post_init__(self) -> None:
        """Validate every field (also when built in Python): the backbone from its dict by its registered type,
        prompt lists as lists of non-empty strings, the input size bounded."""
        if isinstance(self.backbone, dict):
            self.backbone = backbone_config_from_dict(self.backbone)
        if not isinstance(self.backbone, ConfigBase):
            raise ConfigError("SpectrumConfig.backbone: expected a backbone config, got "
                              f"{type(self.backbone).__name__}")
        for key, optional in (("withheld", False), ("ebp_prompts", True), ("default_prompts", True)):
            value = getattr(self, key)
            if value is None and optional:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"SpectrumConfig.{key}: expected a list of non-empty strings"
                                  + (" or null" if optional else "") + f", got {value!r:.80}")
        check_range("SpectrumConfig", "input_size", self.input_size, MIN_IMAGE_SIDE, MAX_IMAGE_SIDE)
        if not isinstance(self.person_prompt, str) or not self.person_prompt.strip():
            raise ConfigError(f"SpectrumConfig.person_prompt: expected a non-empty string, got "
                              f"{self.person_prompt!r:.40}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpectrumConfig:
        """:meth:`ConfigBase.from_dict` (strict keys, nested configs), after dropping :data:`LEGACY_KEYS`."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in LEGACY_KEYS}
            if "backbone" not in data:
                raise ConfigError("SpectrumConfig: 'backbone' is required")
        return super().from_dict(data)


def _text_encoder_for(config: SpectrumConfig, directory: Path) -> TextEncoder | LazyTextEncoder:
    """The model's text encoder: lazily loaded behind the model's prompt table when it ships one (checked against
    the digest the model recorded)."""
    table_file = directory / PROMPT_TABLE
    encoder = config.text_encoder
    if table_file.is_file():
        table = read_prompt_table(table_file, encoder, digest=config.prompt_table_sha256)
        return LazyTextEncoder(encoder, table, lambda: load_text_encoder(encoder))
    return load_text_encoder(encoder)


def attach_prompt_table(directory: str | os.PathLike[str], encoder: TextEncoder, phrases: Sequence[str]) -> Path:
    """Write the prompt table of ``phrases`` (by ``encoder``) beside a saved model and record its digest in the
    model's ``config.json``; returns the table's path."""
    directory = Path(directory)
    path = save_prompt_table(encoder, phrases, directory / PROMPT_TABLE)
    config = json.loads((directory / CONFIG_NAME).read_text())
    config["prompt_table_sha256"] = prompt_table_digest(read_prompt_table(path, encoder.config))
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


class SpectrumModel(nn.Module):
    """The Spectrum parser. Build with :meth:`from_config` (new decoder) or :meth:`from_pretrained`.

    The constructor takes already-loaded frozen parts and does no I/O.
    """

    def __init__(self, config: SpectrumConfig, backbone: FeatureBackbone,
                 text_encoder: TextEncoder | LazyTextEncoder) -> None:
        super().__init__()
        if config.decoder.text_dim != text_encoder.dim:
            raise ConfigError(f"decoder.text_dim {config.decoder.text_dim} != text encoder dim {text_encoder.dim}")
        self.config = config
        self.backbone = backbone.freeze()
        self.text_encoder = text_encoder
        self.decoder = SpectrumDecoder(config.decoder)

    # ----------------------------------------------------------------------------------------- loading
    @classmethod
    def from_config(cls, config: SpectrumConfig, backbone: FeatureBackbone | None = None,
                    text_encoder: TextEncoder | None = None) -> SpectrumModel:
        """Load the frozen parts the config names and create a freshly initialised decoder.

        Empty ``decoder.in_channels`` / mismatching ``decoder.text_dim`` are filled in from the loaded parts.
        """
        backbone = backbone if backbone is not None else load_backbone(config.backbone)
        text_encoder = text_encoder if text_encoder is not None else load_text_encoder(config.text_encoder)
        decoder = config.decoder
        if not decoder.in_channels:
            decoder = dataclasses.replace(decoder, in_channels=backbone.feature_channels())
        decoder = dataclasses.replace(decoder, text_dim=text_encoder.dim)
        return cls(dataclasses.replace(config, decoder=decoder), backbone, text_encoder)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str], backbone: FeatureBackbone | None = None,
                        text_encoder: TextEncoder | None = None,
                        map_location: str | torch.device = "cpu") -> SpectrumModel:
        """Load a saved model from a local directory or hub id (``config.json`` + ``model.safetensors``).

        Relative paths in the backbone config are resolved against the model directory. Weight loading is
        strict: missing, unexpected or mis-shaped tensors raise :class:`ModelLoadError` naming them.
        """
        directory = resolve_dir(str(source), allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "*.md", "*.json"])
        if not (directory / CONFIG_NAME).is_file():
            raise ModelLoadError(f"{source}: no {CONFIG_NAME}")
        if not (directory / WEIGHTS_NAME).is_file():
            raise ModelLoadError(f"{source}: no {WEIGHTS_NAME}")
        config = SpectrumConfig.from_json_file(directory / CONFIG_NAME)
        resolve = getattr(config.backbone, "resolve_paths", None)
        if resolve is not None:
            config = dataclasses.replace(config, backbone=resolve(directory))
        state = _read_safetensors(directory / WEIGHTS_NAME, map_location)
        if backbone is None:
            backbone_config = config.backbone
            if any(k.startswith("backbone.") for k in state):
                # The checkpoint carries the backbone (fine-tuned, or small and bundled): read no initial weights.
                backbone_config = without_initial_weights(backbone_config)
            backbone = load_backbone(backbone_config)
        if text_encoder is None:
            text_encoder = _text_encoder_for(config, directory)
        model = cls(config, backbone, text_encoder)
        model.load_trainable_state_dict(state)
        return model

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (trainable parts only) to ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        table = self.text_encoder.table if isinstance(self.text_encoder, LazyTextEncoder) else None
        self.config = dataclasses.replace(self.config,
                                          prompt_table_sha256=prompt_table_digest(table) if table else None)
        self.config.to_json_file(directory / CONFIG_NAME)
        state = {k: v.detach().contiguous().cpu() for k, v in self.trainable_state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "library": "spectrum_parsing"})
        if isinstance(self.text_encoder, LazyTextEncoder):  # keep the prompt table it was loaded with
            save_prompt_table(self.text_encoder, list(self.text_encoder.table), directory / PROMPT_TABLE)
        return directory

    @property
    def backbone_trainable(self) -> bool:
        """True when the backbone is fine-tuned with the decoder (its weights are then saved too)."""
        return bool(self.backbone.trainable)

    @property
    def backbone_saved(self) -> bool:
        """True when ``model.safetensors`` carries the backbone: fine-tuned, or small enough to bundle."""
        return self.backbone_trainable or bool(self.backbone.saved_with_model)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What ``model.safetensors`` holds: ``decoder.*``, plus ``backbone.*`` when :attr:`backbone_saved`."""
        state = {f"decoder.{k}": v for k, v in self.decoder.state_dict().items()}
        if self.backbone_saved:
            state.update({f"backbone.{k}": v for k, v in self.backbone.state_dict().items()})
        return state

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Strictly load :meth:`trainable_state_dict` output; errors name missing/unexpected/mis-shaped keys."""
        own = self.trainable_state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                        for k in set(own) & set(state) if state[k].shape != own[k].shape)
        dtypes = sorted(f"{k}: {state[k].dtype}" for k in set(own) & set(state)
                        if state[k].is_floating_point() != own[k].is_floating_point())
        if missing or unexpected or shapes or dtypes:
            raise ModelLoadError(f"weights do not match the model: missing keys {missing}; unexpected keys "
                                 f"{unexpected}; shape mismatches {shapes}; dtype mismatches {dtypes}")
        self.decoder.load_state_dict(
            {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}, strict=True)
        if self.backbone_saved:
            self.backbone.load_state_dict(
                {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}, strict=True)

    # ----------------------------------------------------------------------------------------- forward
    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    def extract_features(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Backbone features of images (B, 3, H, W) in [0, 1]; with gradient only for a fine-tuned backbone."""
        images = images.to(self.backbone.device)
        if self.backbone_trainable and torch.is_grad_enabled():
            return self.backbone(images)
        with torch.no_grad():
            return {s: f.detach() for s, f in self.backbone(images).items()}

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Cached, normalised prompt embeddings (P, E) on the decoder's device."""
        return self.text_encoder.encode(list(prompts)).to(self.device)

    def forward(self, images: torch.Tensor | None = None, prompts: Sequence[str] | None = None, *,
                features: dict[int, torch.Tensor] | None = None,
                text_embeds: torch.Tensor | None = None) -> SpectrumOutput:
        """Decoder outputs for ``images`` (or precomputed backbone ``features``) and ``prompts`` (or embeds):
        the backend interface of :mod:`.processor` (``model(pixel_values, text_embeds=...)``)."""
        if features is None:
            if images is None:
                raise ValueError("pass images or precomputed features")
            h, w = images.shape[-2:]
            if min(h, w) < MIN_MODEL_SIDE:
                # Too thin for the coarsest level (stride 32): pad right/bottom with black. Mask outputs keep
                # their top-left alignment, so callers cropping to (h, w) get exactly the image's area.
                images = F.pad(images, (0, max(0, MIN_MODEL_SIDE - w), 0, max(0, MIN_MODEL_SIDE - h)))
            features = self.extract_features(images)
        if text_embeds is None:
            if prompts is None:
                raise ValueError("pass prompts or text_embeds")
            text_embeds = self.encode_prompts(prompts)
        features = {s: f.to(self.device) for s, f in features.items()}
        return SpectrumOutput.from_dict(self.decoder(features, text_embeds.to(self.device)))


def _read_safetensors(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({err})") from None
