"""The I2Tx (image-to-texture) diffusion backbone and its T2I baseline.

One forward pass, all frozen:

1. the image (values in [0, 1], padded to a multiple of 64) is encoded by the VAE encoder E to a latent
   (the posterior mean, times the VAE scaling factor);
2. the UNet U runs once on that latent at ``config.timestep`` with a context sequence C:
   ``i2tx``: C = IM2CONTEXT(CLIP-vision(image padded to a centred square)), the Spectrum representation;
   ``t2i``:  C = the SD text encoder's embedding of the empty prompt (the ODISE-style baseline);
3. the VAE decoder D runs on the latent.

Forward hooks collect activations of E (f_E), U's up blocks (f_U) and D (f_D) — the layers listed in
``config.feature_layers`` — and they are concatenated by output stride (channel order E, U, D). With the
default layers and SD 2.1 (VAE blocks 128/256/512/512, UNet blocks 320/640/1280/1280):

=======  ====================================================================  ========
stride   layers                                                                channels
=======  ====================================================================  ========
4        E.down_blocks.1 (256) + D.up_blocks.0 (512)                           768
8        E.mid_block (512) + U.up_blocks.2 (640) + U.up_blocks.3 (320)          1984
         + D.mid_block (512)
16       U.up_blocks.1 (1280)                                                  1280
32       U.up_blocks.0 (1280)                                                  1280
=======  ====================================================================  ========

Why these: E and D are the only parts that see the image above the latent's stride 8, so they supply the
fine stride-4 detail (edges of garments, fingers); the stride-8 level joins all three views at the
latent's own resolution; the UNet's coarse up blocks carry the semantic, texture-aware context that the
LoRA changed. The VAE decoder is cut short after its last requested block (its full-resolution blocks
are never run), and so is the UNet.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..configs import ConfigBase, ConfigError, check_range
from ..hub import ModelLoadError, check_tokenizer, load_transformers_strict, resolve_file
from .base import DTYPES, ActivationCollector, FeatureBackbone, check_images, group_by_stride, pad_to_multiple
from .im2context import Im2Context, load_im2context
from .registry import register_backbone

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

DEFAULT_FEATURE_LAYERS: dict[str, list[str]] = {
    # VAE encoder E: output of down block 1 (after its downsampler: stride 4) and of the mid block (stride 8).
    "vae_encoder": ["down_blocks.1", "mid_block"],
    # UNet U (decoder side): outputs of the four up blocks; with SD's four-level UNet on a stride-8 latent
    # they land at strides 32, 16, 8 and 8 (the first three end in an upsampler).
    "unet": ["up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3"],
    # VAE decoder D run on the latent: mid block (stride 8) and up block 0 (after its upsampler: stride 4).
    "vae_decoder": ["mid_block", "up_blocks.0"],
}


@dataclass
class DiffusionBackboneConfig(ConfigBase):
    """Config of the frozen diffusion feature extractors.

    ``type="i2tx"``: Stable Diffusion (+ texture LoRA merged into the UNet) conditioned on
    IM2CONTEXT(CLIP-vision(image)), the Spectrum representation.
    ``type="t2i"``: plain Stable Diffusion conditioned on the text encoder's empty prompt (ODISE-style).
    Paths are local directories/files or Hugging Face hub ids; relative paths are resolved against the
    directory of the JSON file they were read from.
    """

    type: str = "i2tx"
    base_model: str = "stabilityai/stable-diffusion-2-1"
    texture_lora: str | None = None
    vision_encoder: str | None = None
    im2context: str | None = None
    im2context_heads: int | None = None
    timestep: int = 0
    noise_seed: int = 0
    lora_scale: float = 1.0
    dtype: str = "float32"
    revision: str | None = None
    # None: derived from the loaded networks' block structure (backbones.diffusion.derive_feature_layers), which
    # is DEFAULT_FEATURE_LAYERS for SD 1.x/2.x-shaped models and also fits 2- or 3-level UNets (tiny, SDXL).
    feature_layers: dict[str, list[str]] | None = None

    TYPES: ClassVar[tuple[str, ...]] = ("i2tx", "t2i")

    def __post_init__(self) -> None:
        if self.type not in self.TYPES:
            raise ConfigError(f"backbone type {self.type!r} is not one of {self.TYPES}")
        if self.type == "i2tx" and (self.vision_encoder is None or self.im2context is None):
            raise ConfigError("an 'i2tx' backbone needs 'vision_encoder' and 'im2context'")
        if self.type == "t2i" and (self.vision_encoder is not None or self.im2context is not None):
            raise ConfigError("a 't2i' backbone takes its context from the text encoder: "
                              "drop 'vision_encoder' and 'im2context'")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype {self.dtype!r} is not one of {sorted(DTYPES)}")
        if not 0 <= self.timestep < 1000:
            raise ConfigError(f"timestep must be in [0, 1000), got {self.timestep}")
        if self.im2context_heads is not None:
            check_range("backbone", "im2context_heads", self.im2context_heads, 1, 64)
        unknown = sorted(set(self.feature_layers or {}) - set(DEFAULT_FEATURE_LAYERS))
        if unknown:
            raise ConfigError(f"feature_layers: unknown part(s) {unknown}; "
                              f"allowed: {sorted(DEFAULT_FEATURE_LAYERS)}")

    def resolve_paths(self, base_dir: str | os.PathLike[str]) -> DiffusionBackboneConfig:
        """Return a copy whose relative local paths are made absolute against ``base_dir``."""
        updates = {}
        for name in ("base_model", "texture_lora", "vision_encoder", "im2context"):
            value = getattr(self, name)
            if value and not os.path.isabs(value):
                candidate = Path(base_dir) / value
                if candidate.exists():
                    updates[name] = str(candidate.resolve())
        return dataclasses.replace(self, **updates)


class VisionContext(nn.Module):
    """C = IM2CONTEXT(CLIP-vision(image padded to a centred square)) for the ``i2tx`` backbone."""

    def __init__(self, vision_model: nn.Module, im2context: Im2Context, image_size: int,
                 mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.im2context = im2context
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Pad to a centred square with black (as TexDreamer does), resize, CLIP-normalise."""
        h, w = images.shape[-2:]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        square = F.pad(images, (left, side - w - left, top, side - h - top), value=0.0)
        square = F.interpolate(square.float(), size=(self.image_size, self.image_size), mode="bicubic",
                               align_corners=False, antialias=True).clamp(0, 1)
        return ((square - self.mean) / self.std).to(self.mean.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = self.preprocess(images).to(self.im2context.visual_proj.weight.dtype)
        tokens = self.vision_model(pixel_values=pixels).last_hidden_state
        return self.im2context(tokens)


class FixedContext(nn.Module):
    """A constant context sequence (the empty-prompt text embedding of the ``t2i`` baseline)."""

    def __init__(self, embedding: torch.Tensor) -> None:
        super().__init__()
        if embedding.ndim != 3 or embedding.shape[0] != 1:
            raise ValueError(f"context embedding must be (1, L, D), got {tuple(embedding.shape)}")
        self.register_buffer("embedding", embedding.detach().clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(images.shape[0], -1, -1)


class DiffusionBackbone(FeatureBackbone):
    """Frozen Stable-Diffusion feature extractor (``i2tx`` or ``t2i``); build it with :func:`load_diffusion_backbone`.

    The constructor takes already-built modules and does no I/O.
    """

    size_divisibility = 64

    def __init__(self, config: DiffusionBackboneConfig, vae: nn.Module, unet: nn.Module, context: nn.Module,
                 alphas_cumprod: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.vae, self.unet, self.context = vae, unet, context
        if config.timestep > 0 and alphas_cumprod is None:
            raise ValueError("a timestep > 0 needs the scheduler's alphas_cumprod to noise the latent")
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)
        self._derived = config.feature_layers is None
        layers = derive_feature_layers(vae, unet) if self._derived else config.feature_layers
        self.feature_layers = {k: list(v) for k, v in layers.items()}
        self._enc = ActivationCollector(vae.encoder, layers.get("vae_encoder", []))
        self._unet = ActivationCollector(unet, layers.get("unet", []), stop_early=True)
        self._dec = ActivationCollector(vae.decoder, layers.get("vae_decoder", []), stop_early=True)
        self.freeze()

    def encode_context(self, images: torch.Tensor) -> torch.Tensor:
        """The UNet's context sequence C for ``images`` (B, 3, H, W) in [0, 1]."""
        return self.context(images)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """Multi-scale features ``{4, 8, 16, 32: (B, C, Hc/s, Wc/s)}`` of images in [0, 1]."""
        check_images(images)
        dtype = self.dtype
        size = (images.shape[-2], images.shape[-1])
        padded = pad_to_multiple(images, self.size_divisibility)
        x = (padded * 2 - 1).to(dtype)
        context = self.encode_context(images).to(dtype)
        scaling = float(getattr(self.vae.config, "scaling_factor", 0.18215))

        acts: list[torch.Tensor] = []
        if self._enc.names:
            with self._enc.capture() as enc_out:
                latent = self.vae.encode(x).latent_dist.mean * scaling
            acts += [enc_out[n] for n in self._enc.names]
        else:
            latent = self.vae.encode(x).latent_dist.mean * scaling

        if self._unet.names:
            t = torch.full((latent.shape[0],), self.config.timestep, device=latent.device, dtype=torch.long)
            noisy = self._add_noise(latent)
            with self._unet.capture() as unet_out:
                self.unet(noisy, t, encoder_hidden_states=context)
            acts += [unet_out[n] for n in self._unet.names]

        if self._dec.names:
            with self._dec.capture() as dec_out:
                self.vae.decode(latent / scaling)
            acts += [dec_out[n] for n in self._dec.names]
        return group_by_stride(acts, (padded.shape[-2], padded.shape[-1]), size, fill_missing=self._derived)

    def _add_noise(self, latent: torch.Tensor) -> torch.Tensor:
        """Forward-diffuse the latent to ``config.timestep`` with seeded noise (identity at t = 0)."""
        t = self.config.timestep
        if t == 0:
            return latent
        gen = torch.Generator().manual_seed(self.config.noise_seed)
        noise = torch.randn(latent.shape, generator=gen).to(latent.device, latent.dtype)
        a = self.alphas_cumprod[t].to(latent.dtype)
        return a.sqrt() * latent + (1 - a).sqrt() * noise


def derive_feature_layers(vae: nn.Module, unet: nn.Module) -> dict[str, list[str]]:
    """Default taps found by position in the networks' block structure, not by SD 2.1's names.

    * VAE encoder: its second down block (the first after a downsampler: stride 4) and its mid block;
    * UNet: every up block's output; with fewer than four levels (a 2-level test UNet, SDXL's three) also the
      first up block's state before its upsampler, so the coarse strides keep a UNet view (a stride still
      missing is max-pooled from the next finer one);
    * VAE decoder: its mid block and first up block.

    For SD 1.x/2.x-shaped models this is exactly ``DEFAULT_FEATURE_LAYERS``.
    """
    enc_blocks = len(getattr(vae.encoder, "down_blocks", []))
    ups = list(getattr(unet, "up_blocks", []))
    if not ups or not enc_blocks:
        raise ValueError("cannot derive feature layers: the VAE encoder has no down_blocks or the UNet no up_blocks")
    unet_taps = [f"up_blocks.{i}" for i in range(len(ups))]
    first = ups[0]
    if len(ups) < 4 and getattr(first, "upsamplers", None):
        attentions = getattr(first, "attentions", None)
        inner = (f"attentions.{len(attentions) - 1}" if attentions is not None and len(attentions)
                 else f"resnets.{len(first.resnets) - 1}")
        unet_taps.insert(0, f"up_blocks.0.{inner}")
    return {"vae_encoder": [f"down_blocks.{min(1, enc_blocks - 1)}", "mid_block"], "unet": unet_taps,
            "vae_decoder": ["mid_block", "up_blocks.0"]}


def _scheduler_alphas(base: str, revision: str | None) -> torch.Tensor:
    """``alphas_cumprod`` of the base model's scheduler (SD's defaults if it has none)."""
    from diffusers import DDPMScheduler

    try:
        scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler", revision=revision)
    except Exception:
        scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    return scheduler.alphas_cumprod.clone().float()


def merge_texture_lora(unet: nn.Module, lora_source: str, scale: float = 1.0) -> nn.Module:
    """Merge a PEFT LoRA (TexDreamer layout ``<dir>/unet/adapter_config.json`` + weights) into ``unet``.

    Loading is strict: LoRA tensors the UNet has no place for, or LoRA layers the file does not fill,
    raise :class:`ModelLoadError` naming them. Returns the plain UNet with merged weights.
    """
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    local = Path(lora_source).expanduser()
    if local.exists():
        adapter_dir = local / "unet" if (local / "unet" / "adapter_config.json").is_file() else local
        if not (adapter_dir / "adapter_config.json").is_file():
            raise ModelLoadError(f"{lora_source}: no unet/adapter_config.json (PEFT LoRA layout expected)")
        lora_config = LoraConfig.from_pretrained(str(adapter_dir))
        try:
            weights = load_peft_weights(str(adapter_dir), device="cpu")
        except Exception as err:  # a pickled adapter_model.bin is refused (weights_only), a truncated file...
            pickled = (adapter_dir / "adapter_model.bin").is_file() and not (
                adapter_dir / "adapter_model.safetensors").is_file()
            hint = (" (a pickled .bin adapter: only tensors can be read from it safely; convert it to "
                    "adapter_model.safetensors)" if pickled else "")
            raise ModelLoadError(f"{adapter_dir}: could not read the LoRA weights{hint}: {type(err).__name__}: "
                                 f"{str(err)[:200]}") from None
    else:
        try:
            lora_config = LoraConfig.from_pretrained(lora_source, subfolder="unet")
            weights = load_peft_weights(lora_source, device="cpu", subfolder="unet")
        except Exception as err:
            raise ModelLoadError(f"could not load texture LoRA {lora_source!r}: {err}") from None
    lora_config.inference_mode = True
    peft_model = get_peft_model(unet, lora_config)
    result = set_peft_model_state_dict(peft_model, weights)
    unexpected = sorted(k for k in result.unexpected_keys if "lora_" in k)
    missing = sorted(k for k in result.missing_keys if "lora_" in k)
    if unexpected or missing:
        raise ModelLoadError(
            f"texture LoRA {lora_source!r} does not fit the UNet: missing keys {missing[:10]}"
            f"{'...' if len(missing) > 10 else ''}; unexpected keys {unexpected[:10]}"
            f"{'...' if len(unexpected) > 10 else ''}"
        )
    if scale != 1.0:
        from peft.tuners.lora import LoraLayer

        for module in peft_model.modules():
            if isinstance(module, LoraLayer):
                module.scale_layer(scale)
    return peft_model.merge_and_unload()


def _empty_prompt_context(base: str, revision: str | None) -> torch.Tensor:
    from transformers import CLIPTextModel, CLIPTokenizer

    try:
        tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer", revision=revision)
    except Exception as err:
        raise ModelLoadError(f"t2i backbone: cannot load the tokenizer of {base!r}: {err}") from None
    text_encoder = load_transformers_strict(CLIPTextModel, base, "SD text encoder", subfolder="text_encoder",
                                            revision=revision)
    check_tokenizer(tokenizer, text_encoder.config.vocab_size, "SD text encoder", base)
    ids = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(ids).last_hidden_state.float()


def _tiny_examples(workdir: Path, kind: str) -> list[DiffusionBackboneConfig]:
    """The tiny random SD / LoRA / CLIP / IM2CONTEXT models of :mod:`~spectrum_parsing.tiny_models`, built once in
    ``workdir``, in the real formats."""
    from ..tiny_models import build_tiny_models

    if not (workdir / f"{kind}.json").is_file():
        build_tiny_models(workdir)
    config = DiffusionBackboneConfig.from_json_file(workdir / f"{kind}.json")
    return [config.resolve_paths(workdir)]


@register_backbone("t2i", DiffusionBackboneConfig, lambda workdir: _tiny_examples(workdir, "t2i"))
@register_backbone("i2tx", DiffusionBackboneConfig, lambda workdir: _tiny_examples(workdir, "i2tx"))
def load_diffusion_backbone(config: DiffusionBackboneConfig) -> DiffusionBackbone:
    """Load an ``i2tx`` or ``t2i`` backbone from the sources its config names (local dirs or hub ids)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    base, rev = config.base_model, config.revision
    try:
        vae = AutoencoderKL.from_pretrained(base, subfolder="vae", revision=rev)
        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", revision=rev)
    except Exception as err:
        raise ModelLoadError(f"cannot load the Stable Diffusion vae/unet of {base!r}: {err}") from None
    if config.texture_lora:
        unet = merge_texture_lora(unet, config.texture_lora, config.lora_scale)

    if config.type == "i2tx":
        from transformers import CLIPVisionModel

        vision = load_transformers_strict(CLIPVisionModel, config.vision_encoder, "CLIP vision encoder")
        i2t_path = resolve_file(config.im2context, ("i2t_decoder.pth", "i2uv/i2t_decoder.pth"))
        im2context = load_im2context(i2t_path, config.im2context_heads)
        if im2context.visual_proj.in_features != vision.config.hidden_size:
            raise ModelLoadError(
                f"IM2CONTEXT expects {im2context.visual_proj.in_features}-d vision tokens but the vision "
                f"encoder gives {vision.config.hidden_size}-d"
            )
        context: nn.Module = VisionContext(vision, im2context, vision.config.image_size)
        context_dim = im2context.visual_proj.out_features
    else:
        context = FixedContext(_empty_prompt_context(base, rev))
        context_dim = context.embedding.shape[-1]
    if context_dim != unet.config.cross_attention_dim:
        raise ModelLoadError(
            f"context width {context_dim} does not match the UNet's cross_attention_dim "
            f"{unet.config.cross_attention_dim}"
        )
    alphas = _scheduler_alphas(base, rev) if config.timestep > 0 else None
    backbone = DiffusionBackbone(config, vae, unet, context, alphas)
    return backbone.to(DTYPES[config.dtype])


def build_full_size_backbone(kind: str = "i2tx", seed: int = 0) -> DiffusionBackbone:
    """A full-size SD 2.1 (+ ViT-H/14 + Im2Context) backbone with random weights, built in memory (no I/O).

    For timing and memory measurements only: the weights are random.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from ..tiny_models import CLIP_VIT_H14_VISION_CONFIG, SD21_UNET_CONFIG, SD21_VAE_CONFIG

    torch.manual_seed(seed)
    vae = AutoencoderKL(**SD21_VAE_CONFIG)
    unet = UNet2DConditionModel(**SD21_UNET_CONFIG)
    if kind == "i2tx":
        vision = CLIPVisionModel(CLIPVisionConfig(**CLIP_VIT_H14_VISION_CONFIG))
        context = VisionContext(vision, Im2Context(), vision.config.image_size)
        config = DiffusionBackboneConfig(type="i2tx", base_model="random:sd-2-1", vision_encoder="random:vit-h-14",
                                         im2context="random:image2token")
    else:
        context = FixedContext(torch.randn(1, 77, 1024))
        config = DiffusionBackboneConfig(type="t2i", base_model="random:sd-2-1")
    return DiffusionBackbone(config, vae, unet, context)
