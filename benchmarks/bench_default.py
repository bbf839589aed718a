"""The embedded default model on this machine: load time, per-image latency and batched throughput of
SpectrumPipeline, with PyTorch and with the ONNX export run by onnxruntime.

Times the whole call a user makes (image decode excluded; resize, backbone, decoder, grounding, grouping,
label map) on the bundled group photo resized to --size pixels on its longest side, with the model's default
prompts plus EBP. Throughput: 8 copies of the photo per call, at batch sizes 1, 4 and 8. ONNX: the model
exported at its input size (``spectrum export``), the square-padded input run by onnxruntime.

    python benchmarks/bench_default.py --size 512 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from common import ROOT, median_time, record
from spectrum_parsing.pipeline import SpectrumPipeline, model_display_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=str(ROOT / "examples" / "group.jpg"))
    args = parser.parse_args()
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        pipe = SpectrumPipeline.from_pretrained()
        loads.append(time.perf_counter() - start)
    image = Image.open(args.image).convert("RGB")
    image.thumbnail((args.size, args.size))
    with torch.inference_mode():
        latency, runs = median_time(lambda: pipe(image), args.repeats, warmup=2)
        result = pipe(image)
        throughput = {}
        for batch in (1, 4, 8):
            seconds, _ = median_time(lambda b=batch: pipe([image] * 8, batch_size=b), max(1, args.repeats // 2))
            throughput[f"batch {batch}"] = round(8 / seconds, 2)
    from spectrum_parsing.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        onnx_file = export_onnx(pipe.model, Path(tmp) / "model.onnx")
        onnx_pipe = SpectrumPipeline(pipe.model, onnx=onnx_file, mode=pipe.mode, person_detector=pipe.person_detector,
                                     person_segmenter=pipe.person_segmenter, top_down=pipe.top_down)
        with torch.inference_mode():
            onnx_latency, onnx_runs = median_time(lambda: onnx_pipe(image), args.repeats, warmup=2)
            onnx_throughput = {}
            for batch in (1, 8):
                seconds, _ = median_time(lambda b=batch: onnx_pipe([image] * 8, batch_size=b),
                                         max(1, args.repeats // 2))
                onnx_throughput[f"batch {batch}"] = round(8 / seconds, 2)
            # the same pipeline (top-down, same detector), the image path in onnxruntime: do the label maps agree?
            agree = float((onnx_pipe(image).label_map == pipe(image).label_map).mean())
    results = {"model load (s, median of 3 in one process)": round(sorted(loads)[1], 3),
               "first load incl. imports (s)": round(loads[0], 3),
               "latency per image (s)": round(latency, 3), "runs (s)": [round(t, 3) for t in runs],
               "image": f"{Path(args.image).name} {image.width}x{image.height}",
               "prompts scored": len(result.prompts), "persons found": len(result.persons),
               "PyTorch throughput (images/s)": throughput,
               "ONNX Runtime latency per image (s)": round(onnx_latency, 3),
               "ONNX Runtime runs (s)": [round(t, 3) for t in onnx_runs],
               "ONNX Runtime throughput (images/s)": onnx_throughput,
               "ONNX vs PyTorch label-map agreement (same pipeline)": f"{100 * agree:.2f}%"}
    command = "python benchmarks/bench_default.py " + " ".join(sys.argv[1:])
    record(f"Default model ({model_display_name(None)}) on CPU", command.strip(),
           {"size": args.size, "model input": pipe.image_size, "repeats": args.repeats,
            "threads": torch.get_num_threads()}, results)
    for k, v in results.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
