"""Trainable part of Spectrum: pixel decoder P, transformer decoder and grounding head."""

from __future__ import annotations

import torch
from torch import nn

from ..configs import STRIDES, DecoderConfig
from .pixel_decoder import MultiScaleDeformableAttention, PixelDecoder
from .transformer_decoder import GroundingHead, TransformerDecoder

__all__ = ["GroundingHead", "MultiScaleDeformableAttention", "PixelDecoder", "SpectrumDecoder",
           "TransformerDecoder"]


class SpectrumDecoder(nn.Module):
    """Backbone features + prompt embeddings -> class-agnostic masks grounded to the prompts.

    ``forward(features, text_embeds)`` returns a dict with ``pred_masks`` (B, Q, H/4, W/4) mask logits,
    ``pred_logits`` (B, Q, P + 1) grounding logits (last column: no object), ``pred_embeds`` (B, Q, E)
    normalised query embeddings, and — in training, or with ``aux=True`` — ``aux_outputs`` (the same for every
    earlier decoder layer: deep supervision; inference skips them and the full-size masks they need).
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        if not config.in_channels:
            raise ValueError("DecoderConfig.in_channels is empty: set it from the backbone's feature_channels()")
        self.config = config
        in_channels = {s: config.channels(s) for s in STRIDES}
        self.pixel_decoder = PixelDecoder(
            in_channels, config.hidden_dim, config.mask_dim, config.num_heads, config.encoder_layers,
            config.encoder_ffn_dim, config.encoder_points, config.dropout,
        )
        self.transformer_decoder = TransformerDecoder(
            config.hidden_dim, config.mask_dim, config.text_dim, config.num_queries, config.num_heads,
            config.decoder_layers, config.decoder_ffn_dim, len(PixelDecoder.coarse_strides), config.dropout,
            config.grounding_temperature,
        )

    def forward(self, features: dict[int, torch.Tensor], text_embeds: torch.Tensor,
                aux: bool | None = None) -> dict[str, object]:
        dtype = self.pixel_decoder.level_embed.dtype
        missing = [s for s in STRIDES if s not in features]
        if missing:
            raise ValueError(f"features lack stride(s) {missing}")
        for s in STRIDES:
            if features[s].shape[1] != self.config.channels(s):
                raise ValueError(f"stride-{s} features have {features[s].shape[1]} channels, "
                                 f"the decoder expects {self.config.channels(s)}")
        if text_embeds.ndim != 2 or text_embeds.shape[1] != self.config.text_dim:
            raise ValueError(f"text_embeds must be (P, {self.config.text_dim}), got {tuple(text_embeds.shape)}")
        feats = {s: features[s].to(dtype) for s in STRIDES}
        maps, mask_features = self.pixel_decoder(feats)
        return self.transformer_decoder(maps, mask_features, text_embeds, aux=aux)
