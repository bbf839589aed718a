"""Record golden outputs of the embedded models for tests/test_golden.py (rerun after retraining a model).

    python scripts/record_golden.py

For each embedded model: the grounding logits of the first 8 queries and a 6x6 corner of their mask logits,
on ``examples/selfie.jpg`` resized to the model's input size, for three prompts. Small, but any change in the
weights, the backbone, the preprocessing or the decoder moves them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from spectrum_parsing.embedded import EMBEDDED_MODELS, WEIGHTS_DIR
from spectrum_parsing.modeling import SpectrumModel
from spectrum_parsing.processor import resize_for_model

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "golden"
PROMPTS = ["hair", "face", "upper clothes"]


def golden(model: SpectrumModel) -> dict[str, torch.Tensor]:
    image = np.asarray(Image.open(ROOT / "examples" / "selfie.jpg").convert("RGB"))
    with torch.no_grad():
        out = model(resize_for_model(image, model.config.input_size), PROMPTS)
    return {"logits": out["pred_logits"][0, :8].contiguous(),
            "masks": out["pred_masks"][0, :8, 10:16, 10:16].contiguous()}


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in EMBEDDED_MODELS:
        if not (WEIGHTS_DIR / name / "model.safetensors").is_file():
            continue
        tensors = golden(SpectrumModel.from_pretrained(WEIGHTS_DIR / name).eval())
        save_file(tensors, str(OUT / f"{name}.safetensors"), metadata={"prompts": ",".join(PROMPTS)})
        print(name, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
