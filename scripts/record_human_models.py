"""Record TF.js's own outputs of MoveNet-MultiPose and BlazePose on the bundled photos, as test fixtures.

Run once (the fixtures are committed); it needs Node.js and the npm packages of TensorFlow.js (pure JS, no
TensorFlow): ::

    npm install --prefix /tmp/tfjs @tensorflow/tfjs@4
    NODE_PATH=/tmp/tfjs/node_modules python scripts/record_human_models.py

Writes ``tests/fixtures/human_models/``: the exact model inputs as PNG (lossless), and ``NAME.safetensors``
with the graph outputs computed by TF.js (CPU backend) from ``../shared/weights/human-models``.
``tests/persons/test_tfgraph.py`` checks the torch port against them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "weights" / "human-models"
OUT = ROOT / "tests" / "fixtures" / "human_models"
MOVENET_NODES = ["Identity", "StatefulPartitionedCall/Sigmoid", "StatefulPartitionedCall/Sigmoid_1"]
BLAZEPOSE_NODES = ["Identity_1", "Identity_2", "Identity_3"]
BLAZEPOSE_CROP = (0.70, 0.08, 1.0, 1.0)  # a person of group.jpg (x0, y0, x1, y1 as fractions), squared below


def run_tfjs(model: str, array: np.ndarray, nodes: list[str]) -> dict[str, np.ndarray]:
    """The named node outputs of a TF.js graph model on ``array`` (NHWC int32 or float32)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "input.bin"
        array.astype("<i4" if array.dtype == np.int32 else "<f4").tofile(raw)
        dtype = "int32" if array.dtype == np.int32 else "float32"
        text = subprocess.run(["node", str(ROOT / "scripts" / "tfjs" / "record.js"), str(SOURCE / f"{model}.json"),
                               str(raw), dtype, ",".join(map(str, array.shape)), ",".join(nodes)],
                              check=True, capture_output=True, text=True).stdout
    data = json.loads(text)
    return {k: np.asarray(v["data"], dtype=np.float32).reshape(v["shape"]) for k, v in data.items()}


def main() -> int:
    """Record the fixtures; returns the exit status."""
    from safetensors.numpy import save_file

    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("group", "two-dancers", "selfie"):
        image = Image.open(ROOT / "examples" / f"{name}.jpg").convert("RGB").resize((256, 192), Image.BILINEAR)
        image.save(OUT / f"movenet_{name}.png")
        outputs = run_tfjs("movenet-multipose", np.asarray(image, dtype=np.int32)[None], MOVENET_NODES)
        save_file({k.replace("/", "."): v for k, v in outputs.items()}, str(OUT / f"movenet_{name}.safetensors"))
        scores = outputs["Identity"][0, :, 55]
        print(f"movenet {name}: person scores {np.round(scores, 3).tolist()}")
    photo = Image.open(ROOT / "examples" / "group.jpg").convert("RGB")
    w, h = photo.size
    x0, y0, x1, y1 = (BLAZEPOSE_CROP[0] * w, BLAZEPOSE_CROP[1] * h, BLAZEPOSE_CROP[2] * w, BLAZEPOSE_CROP[3] * h)
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    crop = photo.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))
    crop = crop.resize((256, 256), Image.BILINEAR)
    crop.save(OUT / "blazepose_crop.png")
    outputs = run_tfjs("blazepose-full", (np.asarray(crop, dtype=np.float32) / 255.0)[None], BLAZEPOSE_NODES)
    save_file(outputs, str(OUT / "blazepose_crop.safetensors"))
    print(f"blazepose crop: pose flag {float(outputs['Identity_3'].ravel()[0]):.3f}, "
          f"person pixels {(outputs['Identity_1'] > 0.5).mean():.3f}")
    # The pose detector on the group photo centred on a black square, 224x224, RGB in [-1, 1] (MediaPipe's range).
    side = max(w, h)
    square = Image.new("RGB", (side, side))
    square.paste(photo, ((side - w) // 2, (side - h) // 2))
    square = square.resize((224, 224), Image.BILINEAR)
    square.save(OUT / "blazepose_detector_group.png")
    x = (np.asarray(square, dtype=np.float32) / 127.5 - 1.0)[None]
    outputs = run_tfjs("blazepose-detector", x, ["Identity"])
    save_file(outputs, str(OUT / "blazepose_detector_group.safetensors"))
    scores = 1 / (1 + np.exp(-np.clip(outputs["Identity"][0, :, 0].astype(np.float64), -100, 100)))
    print(f"blazepose detector: {int((scores >= 0.5).sum())} anchors >= 0.5, best {scores.max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
