"""Full Spectrum model (I2Tx backbone + decoder + grounding) on a GPU: latency, throughput and peak memory.

Sweeps dtype (float32, float16, bfloat16) x batch (1, 8) x variant:
  eager          - PyTorch eager, attention through SDPA (diffusers' AttnProcessor2_0, our decoder's SDPA)
  channels_last  - the same with the convolutional parts (VAE, UNet, decoder) in channels_last
  compile        - channels_last plus torch.compile of the building blocks (UNet/VAE resnets and transformer
                   blocks, CLIP encoder layers, the decoder); the feature hooks stay outside compiled code
For each: median latency per batch and per image over --repeats runs (after warm-up), images/s, and peak GPU
memory (torch.cuda.max_memory_allocated). Weights and prompt embeddings are random (speed does not depend on their
values; the prompt embeddings have MiniLM's 384 dimensions, so no text encoder is needed on the GPU machine).

    python benchmarks/bench_gpu.py --size 512 --repeats 10                 # on a CUDA machine
    python benchmarks/bench_gpu.py --device cpu --tiny --size 64           # code-path smoke check on a CPU

--tiny swaps in the tiny random test models (for checking this script without a GPU; figures meaningless).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

import torch
from torch import nn

from common import PROMPTS, median_time, record
from spectrum_parsing.backbones.base import DTYPES
from spectrum_parsing.configs import DecoderConfig
from spectrum_parsing.decoder import SpectrumDecoder


def compile_blocks(module: nn.Module) -> int:
    """torch.compile, in place, the repeated building blocks of a backbone (resnets, transformer blocks, CLIP
    encoder layers); returns how many. Forward hooks on their parents keep working."""
    names = ("ResnetBlock2D", "BasicTransformerBlock", "Transformer2DModel", "CLIPEncoderLayer", "Downsample2D",
             "Upsample2D")
    import torch._dynamo

    # Every block instance (and input layout) is its own compiled entry: allow many more than the default 8.
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(256, getattr(torch._dynamo.config, name)))
    count = 0
    for sub in module.modules():
        if type(sub).__name__ in names and not getattr(sub, "_spectrum_compiled", False):
            sub.compile()
            sub._spectrum_compiled = True
            count += 1
    return count


TEXT_DIM = 384  # all-MiniLM-L6-v2, the default text encoder


def build(tiny: bool, device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    if tiny:
        from spectrum_parsing.backbones import load_backbone, load_backbone_config
        from spectrum_parsing.tiny_models import build_tiny_models

        paths = build_tiny_models(tempfile.mkdtemp(prefix="spectrum-tiny-"))
        backbone = load_backbone(load_backbone_config(paths["i2tx_config"]))
    else:
        from spectrum_parsing.backbones.diffusion import build_full_size_backbone

        backbone = build_full_size_backbone("i2tx")
    backbone = backbone.to(device=device, dtype=dtype).eval()
    decoder = SpectrumDecoder(DecoderConfig(in_channels=backbone.feature_channels(), text_dim=TEXT_DIM))
    text = torch.nn.functional.normalize(torch.randn(len(PROMPTS), TEXT_DIM), dim=-1)
    return backbone, decoder.to(device=device, dtype=dtype).eval(), text.to(device=device, dtype=dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="float32,float16,bfloat16")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--variants", default="eager,channels_last,compile")
    parser.add_argument("--tiny", action="store_true", help="tiny random models (smoke check of this script)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu --tiny to check the script, or on a GPU machine")
    rows: dict[str, Any] = {}
    for dtype_name in args.dtypes.split(","):
        dtype = DTYPES[dtype_name]
        backbone, decoder, text = build(args.tiny, device, dtype)
        for variant in args.variants.split(","):
            if variant in ("channels_last", "compile"):
                backbone.to(memory_format=torch.channels_last)
                decoder.to(memory_format=torch.channels_last)
            if variant == "compile":
                compile_blocks(backbone)
                decoder.compile()
            for batch in (int(b) for b in args.batches.split(",")):
                images = torch.rand(batch, 3, args.size, args.size, device=device)
                if variant != "eager":
                    images = images.contiguous(memory_format=torch.channels_last)

                def step(backbone=backbone, decoder=decoder, images=images, dtype=dtype, text=text) -> None:
                    feats = backbone(images)
                    decoder({s: f.to(dtype) for s, f in feats.items()}, text)

                if cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                with torch.inference_mode():
                    start = time.perf_counter()
                    step()  # first call (compiles, for the compile variant)
                    first = time.perf_counter() - start
                    latency, _ = median_time(step, args.repeats, warmup=2, sync=cuda)
                peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
                key = f"{dtype_name} {variant} batch {batch}"
                rows[key] = {"ms/batch": round(1000 * latency, 1), "ms/image": round(1000 * latency / batch, 1),
                             "images/s": round(batch / latency, 1), "peak GiB": round(peak, 2),
                             "first call (s)": round(first, 1)}
                print(key, rows[key], flush=True)
        backbone = decoder = None
        if cuda:
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    command = "python benchmarks/bench_gpu.py " + " ".join(sys.argv[1:])
    if not args.tiny:  # a smoke check's figures mean nothing: printed, not recorded
        record(f"Full model on {name}", command.strip(),
               {"size": args.size, "repeats": args.repeats, "prompts": len(PROMPTS), "torch": torch.__version__}, rows)


if __name__ == "__main__":
    main()
