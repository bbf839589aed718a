"""Where the default model's time goes: one 512-px image split into stages, plus torch.profiler's top ops.

Stages: resize to the model input, backbone (BodyPix), decoder + grounding (prompts cached), masks to image
size, per-person grouping, semantic label map. Medians over --repeats runs.

    python benchmarks/profile_default.py --size 512 --repeats 10
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from PIL import Image

from common import ROOT, median_time, record
from spectrum_parsing.inference import outputs_at_size, resize_for_model
from spectrum_parsing.pipeline import SpectrumPipeline
from spectrum_parsing.postprocess import group_instances, semantic_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    pipe = SpectrumPipeline.from_pretrained()
    model = pipe.model
    image = Image.open(ROOT / "examples" / "group.jpg").convert("RGB")
    image.thumbnail((args.size, args.size))
    array = np.asarray(image)
    prompts = [*pipe.resolve_prompts(None, True), model.config.person_prompt]
    person = len(prompts) - 1
    times = {}
    with torch.inference_mode():
        inputs = resize_for_model(array, pipe.image_size)
        times["resize"] = median_time(lambda: resize_for_model(array, pipe.image_size), args.repeats)[0]
        feats = model.extract_features(inputs)
        times["backbone"] = median_time(lambda: model.extract_features(inputs), args.repeats)[0]
        embeds = model.encode_prompts(prompts)
        out = model(features=feats, text_embeds=embeds)
        times["decoder + grounding"] = median_time(lambda: model(features=feats, text_embeds=embeds),
                                                   args.repeats)[0]
        size = tuple(inputs.shape[-2:])

        def to_image() -> tuple[torch.Tensor, torch.Tensor]:
            return outputs_at_size(out["pred_logits"][0], out["pred_masks"][0], size, array.shape[:2])

        logits, masks = to_image()
        times["masks to image size"] = median_time(to_image, args.repeats)[0]
        times["group per person"] = median_time(
            lambda: group_instances(logits, masks, prompts, person), args.repeats)[0]
        times["semantic map"] = median_time(lambda: semantic_map(logits, masks, exclude=(person,)), args.repeats)[0]
        total = sum(times.values())
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            pipe(image)
    top = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    results = {f"{k} (ms)": f"{1000 * v:.1f} ({100 * v / total:.0f}%)" for k, v in times.items()}
    results["sum of stages (ms)"] = round(1000 * total, 1)
    command = "python benchmarks/profile_default.py " + " ".join(sys.argv[1:])
    record("Default model, time per stage (CPU)", command.strip(),
           {"size": args.size, "model input": pipe.image_size, "prompts": len(prompts), "repeats": args.repeats,
            "threads": torch.get_num_threads()}, results)
    for k, v in results.items():
        print(f"{k}: {v}")
    print(top)


if __name__ == "__main__":
    main()
