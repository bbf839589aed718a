"""Tiny random models in the real on-disk formats, for tests, smoke runs and docs.

No Stable Diffusion, CLIP or TexDreamer weights ship with Spectrum. These builders write models with the
same *layouts* and *module structure* as the real ones (SD 2.1 diffusers folders, a TexDreamer-style PEFT
LoRA, a ``CLIPVisionModel`` folder, an ``Im2Context`` ``i2t_decoder.pth``) but tiny and randomly
initialised, so the public loading code can be exercised end to end offline. Their features are random:
they say nothing about parsing quality.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

TINY_CONTEXT_DIM = 64


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable-character table of byte-level BPE (GPT-2/CLIP)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, (chr(c) for c in chars)))


def build_tiny_tokenizer(path: Path) -> int:
    """Save a byte-level CLIP tokenizer with no merges; returns its vocabulary size."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in _bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    tokenizer.save_pretrained(str(path))
    return len(vocab)


def build_tiny_sd(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny SD-2.1-shaped diffusers model (vae, unet, text_encoder, tokenizer, scheduler)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 32, 32), sample_size=64,
    )
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(16, 32, 32, 32), attention_head_dim=(2, 4, 4, 4),
        cross_attention_dim=TINY_CONTEXT_DIM, use_linear_projection=True,
    )
    vocab_size = build_tiny_tokenizer(path / "tokenizer")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TINY_CONTEXT_DIM, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=TINY_CONTEXT_DIM,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    vae.save_pretrained(path / "vae")
    unet.save_pretrained(path / "unet")
    text_encoder.save_pretrained(path / "text_encoder")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(
        path / "scheduler")
    (path / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0",
        "vae": ["diffusers", "AutoencoderKL"], "unet": ["diffusers", "UNet2DConditionModel"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDPMScheduler"],
    }, indent=2))
    return path


def build_tiny_texture_lora(path: str | Path, base_model: str | Path, seed: int = 0,
                            safe_serialization: bool = True, rank: int = 4) -> Path:
    """Write a TexDreamer-layout PEFT LoRA (``unet/`` + ``text_encoder/`` adapters) for a tiny SD model.

    The LoRA B matrices are random (not PEFT's zero init), so the merged UNet really differs from the base.
    """
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig, get_peft_model
    from transformers import CLIPTextModel

    path = Path(path)
    torch.manual_seed(seed)
    base_model = str(base_model)  # PEFT writes it into a YAML model card: keep it a plain string
    unet = UNet2DConditionModel.from_pretrained(base_model, subfolder="unet")
    unet_lora = LoraConfig(r=rank, lora_alpha=2 * rank, init_lora_weights=False,
                           target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    text_encoder = CLIPTextModel.from_pretrained(base_model, subfolder="text_encoder")
    text_lora = LoraConfig(r=2, lora_alpha=2, init_lora_weights=False,
                           target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
    with warnings.catch_warnings():  # PEFT looks for a hub config to check the vocabulary: not applicable
        warnings.simplefilter("ignore", UserWarning)
        get_peft_model(unet, unet_lora).save_pretrained(str(path / "unet"), safe_serialization=safe_serialization)
        get_peft_model(text_encoder, text_lora).save_pretrained(
            str(path / "text_encoder"), safe_serialization=safe_serialization)
    return path


def build_tiny_clip_vision(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``transformers.CLIPVisionModel`` directory (32-px input, 32-d tokens)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    model = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        patch_size=8, projection_dim=32,
    ))
    model.save_pretrained(str(path))
    return Path(path)


def build_tiny_im2context(path: str | Path, visual_dim: int = 32, context_dim: int = TINY_CONTEXT_DIM,
                          num_queries: int = 8, num_layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny ``Im2Context`` state dict with ``torch.save``, as TexDreamer's ``i2t_decoder.pth``."""
    from .backbones.im2context import Im2Context

    torch.manual_seed(seed)
    module = Im2Context(visual_dim, context_dim, num_queries, num_layers, ffn_dim=64)
    with torch.no_grad():
        module.query.normal_()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), path)
    return path


def build_tiny_models(root: str | Path, seed: int = 0) -> dict[str, Path]:
    """Build every tiny model under ``root`` and write ``i2tx.json`` / ``t2i.json`` backbone configs.

    Layout (TexDreamer's checkpoint folder mirrored)::

        root/sd/{vae,unet,text_encoder,tokenizer,scheduler}/
        root/texdreamer/{unet,text_encoder}/adapter_config.json + adapter_model.safetensors
        root/texdreamer/i2uv/vision_encoder/   root/texdreamer/i2uv/i2t_decoder.pth
        root/i2tx.json   root/t2i.json          (relative paths, resolved against root)
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sd = build_tiny_sd(root / "sd", seed)
    lora = build_tiny_texture_lora(root / "texdreamer", sd, seed + 1)
    vision = build_tiny_clip_vision(lora / "i2uv" / "vision_encoder", seed + 2)
    i2t = build_tiny_im2context(lora / "i2uv" / "i2t_decoder.pth", seed=seed + 3)
    i2tx = {"type": "i2tx", "base_model": "sd", "texture_lora": "texdreamer",
            "vision_encoder": "texdreamer/i2uv/vision_encoder",
            "im2context": "texdreamer/i2uv/i2t_decoder.pth", "timestep": 0}
    (root / "i2tx.json").write_text(json.dumps(i2tx, indent=2) + "\n")
    (root / "t2i.json").write_text(json.dumps({"type": "t2i", "base_model": "sd"}, indent=2) + "\n")
    return {"sd": sd, "texture_lora": lora, "vision_encoder": vision, "im2context": i2t,
            "i2tx_config": root / "i2tx.json", "t2i_config": root / "t2i.json"}


def build_tiny_clip_text(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``CLIPTextModelWithProjection`` + tokenizer directory (32-d projected embeddings)."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    path = Path(path)
    torch.manual_seed(seed)
    vocab_size = build_tiny_tokenizer(path)
    model = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    model.save_pretrained(str(path))
    return path


# Published configurations of the full-size models (Stable Diffusion 2.1, OpenCLIP ViT-H/14 vision tower as
# used by TexDreamer, TexDreamer's Im2Context), for building random-weight models of the real size.
SD21_UNET_CONFIG: dict = {
    "sample_size": 96, "in_channels": 4, "out_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280], "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024, "use_linear_projection": True, "flip_sin_to_cos": True, "freq_shift": 0,
}
SD21_VAE_CONFIG: dict = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512], "sample_size": 768, "scaling_factor": 0.18215,
}
CLIP_VIT_H14_VISION_CONFIG: dict = {
    "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 16,
    "image_size": 224, "patch_size": 14, "projection_dim": 1024, "hidden_act": "gelu",
}
