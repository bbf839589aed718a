"""Full-size Spectrum forward with random weights: I2Tx backbone time and the decoder's share.

Builds SD 2.1 (UNet + VAE) + OpenCLIP ViT-H/14 vision tower + Im2Context at their real sizes with random
weights (no pretrained weights exist on this machine; speed does not depend on the weight values), the
default decoder (256-d, 100 queries, 6 deformable encoder layers, 9 decoder layers) and the real MiniLM text
encoder, then times one image at --size pixels.

    python benchmarks/bench_core.py --size 512 --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from common import PROMPTS, median_time, record
from spectrum_parsing.backbones.base import DTYPES
from spectrum_parsing.backbones.diffusion import build_full_size_backbone
from spectrum_parsing.configs import DecoderConfig, TextEncoderConfig
from spectrum_parsing.decoder import SpectrumDecoder
from spectrum_parsing.postprocess import group_instances
from spectrum_parsing.processor import ImagePrediction, SpectrumImageProcessor
from spectrum_parsing.text_encoders import load_text_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kind", choices=["i2tx", "t2i"], default="i2tx")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    device = torch.device(args.device)
    sync = device.type == "cuda"

    start = time.perf_counter()
    backbone = build_full_size_backbone(args.kind).to(device=device, dtype=dtype)
    build_s = time.perf_counter() - start
    params_m = sum(p.numel() for p in backbone.parameters()) / 1e6
    channels = backbone.feature_channels()
    text_encoder = load_text_encoder(TextEncoderConfig()).to(device)
    decoder = SpectrumDecoder(DecoderConfig(in_channels=channels, text_dim=text_encoder.dim)).to(device).eval()
    decoder_params_m = sum(p.numel() for p in decoder.parameters()) / 1e6
    image = torch.rand(1, 3, args.size, args.size, device=device)
    text = text_encoder.encode(PROMPTS)

    with torch.inference_mode():
        feats = backbone(image)
        backbone_s, backbone_runs = median_time(lambda: backbone(image), args.repeats, sync=sync)
        decoder_s, _ = median_time(lambda: decoder(feats, text), args.repeats, sync=sync)
        out = decoder(feats, text)

        processor = SpectrumImageProcessor(args.size)

        def post() -> None:  # the bottom-up pipeline's post-processing (instances + semantic inference)
            logits, low = out["pred_logits"][0].float(), out["pred_masks"][0]
            prediction = ImagePrediction(logits, low, (args.size, args.size), (args.size, args.size))
            group_instances(logits, processor.mask_logits(prediction), PROMPTS, 0)
            processor.post_process_semantic(prediction, exclude=(0,))

        post_s, _ = median_time(post, args.repeats, sync=sync)
    total = backbone_s + decoder_s + post_s
    results = {
        "backbone forward (s)": round(backbone_s, 3),
        "backbone runs (s)": [round(t, 3) for t in backbone_runs],
        "decoder + grounding (s)": round(decoder_s, 3),
        "post-processing (s)": round(post_s, 3),
        "decoder + grounding share of full forward": f"{100 * decoder_s / total:.1f}%",
        "decoder + grounding + post-processing share": f"{100 * (decoder_s + post_s) / total:.1f}%",
        "backbone parameters (M)": round(params_m, 1),
        "decoder parameters (M)": round(decoder_params_m, 1),
        "feature channels": {s: c for s, c in channels.items()},
        "random-init build time (s)": round(build_s, 1),
    }
    command = "python benchmarks/bench_core.py " + " ".join(sys.argv[1:])
    params = {"kind": args.kind, "size": args.size, "dtype": args.dtype, "device": args.device,
              "repeats": args.repeats, "prompts": len(PROMPTS)}
    record(f"Full-size {args.kind} forward ({args.device})", command.strip(), params, results)
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
