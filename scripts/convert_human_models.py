"""Port the TF.js MoveNet-MultiPose and BlazePose graphs to the package's torch format (graph.json + safetensors).

Usage::

    python scripts/convert_human_models.py                       # from ../shared/weights/human-models
    python scripts/convert_human_models.py --source DIR --out src/spectrum_parsing/weights

Reads each ``NAME.json`` + ``NAME.bin`` (TF.js graph model, float16-quantised weights), writes
``OUT/NAME/graph.json`` and ``OUT/NAME/model.safetensors``, and checks that the written files load back and
give the same outputs as the freshly read graph on a random input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"movenet-multipose": ("int32", (1, 192, 256, 3)), "blazepose-full": ("float32", (1, 256, 256, 3)),
          "blazepose-detector": ("float32", (1, 224, 224, 3))}


def main(argv: list[str] | None = None) -> int:
    """Convert every model in MODELS; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "weights" / "human-models")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "spectrum_parsing" / "weights")
    args = parser.parse_args(argv)

    import torch

    from spectrum_parsing.persons.tfgraph import TFGraphModule, load_graph_model, read_tfjs_graph, save_graph_model

    for name, (dtype, shape) in MODELS.items():
        source = args.source / f"{name}.json"
        if not source.is_file():
            print(f"error: {source} not found", file=sys.stderr)
            return 2
        spec, tensors = read_tfjs_graph(source)
        module = TFGraphModule.from_tensors(spec, tensors).eval()
        out = save_graph_model(module, args.out / name, metadata={"source": f"{name}.json (TF.js graph model)"})
        loaded = load_graph_model(out).eval()
        x = (torch.randint(0, 256, shape, dtype=torch.int32) if dtype == "int32" else torch.rand(shape))
        with torch.no_grad():
            a, b = module(x), loaded(x)
        worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
        params = sum(v.numel() for v in tensors.values() if v.is_floating_point())
        size = (out / "model.safetensors").stat().st_size / 2**20
        print(f"{name}: {len(spec.nodes)} ops, {params / 1e6:.2f} M parameters, {size:.1f} MiB -> {out} "
              f"(reload max diff {worst:.1e})")
        if worst > 0:
            print(f"error: {name}: the saved files do not reproduce the graph", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
