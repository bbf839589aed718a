"""Write the prompt table of an embedded model: the text-encoder embeddings of every phrase the pipeline encodes
for its default prompts, every preset, and each canonical category (with its synonyms) asked for by name.

    python scripts/build_prompt_table.py                      # both embedded models
    python scripts/build_prompt_table.py --models spectrum-lite2

With the table (``prompt_embeddings.safetensors`` next to ``model.safetensors``), ``spectrum parse`` with those
prompts never loads the text encoder or imports ``transformers`` (:class:`~spectrum_parsing.text_encoders.
LazyTextEncoder`); any other prompt loads it on first use. The phrases are recorded by running the real
pipeline (both modes) with the encoder loaded, so the table holds exactly what the pipeline asks for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def record_phrases(pipe, image) -> list[str]:
    """Every phrase ``pipe`` encodes for the default prompts, the presets and each canonical category."""
    from spectrum_parsing.presets import PRESETS
    from spectrum_parsing.vocab import categories

    encoder = pipe.model.text_encoder
    seen: dict[str, None] = {}
    original = encoder.encode

    def recording(prompts, batch_size: int = 1):
        seen.update(dict.fromkeys(prompts))
        return original(prompts, batch_size=batch_size)

    encoder.encode = recording
    try:
        for mode in ("top-down", "bottom-up"):
            pipe.mode = mode
            pipe(image)
            pipe(image, ebp=False)
            for preset in PRESETS:
                pipe(image, preset=preset)
        pipe.mode = "top-down"
        names = categories.names()
        words = list(names) + [s for n in names for s in categories.get(n).synonyms]
        for start in range(0, len(words), 16):
            pipe(image, prompts=list(dict.fromkeys(words[start:start + 16])))
    finally:
        del encoder.encode
    return list(seen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["spectrum-lite2", "spectrum-bodypix"])
    args = parser.parse_args(argv)

    from PIL import Image

    from spectrum_parsing import SpectrumPipeline
    from spectrum_parsing.modeling import attach_prompt_table
    from spectrum_parsing.text_encoders import PROMPT_TABLE, load_text_encoder

    image = Image.open(ROOT / "examples" / "group.jpg").convert("RGB").resize((384, 288))
    for name in args.models:
        directory = ROOT / "src" / "spectrum_parsing" / "weights" / name
        (directory / PROMPT_TABLE).unlink(missing_ok=True)  # record with the real encoder, not an old table
        pipe = SpectrumPipeline.from_pretrained(directory)
        phrases = record_phrases(pipe, image)
        encoder = load_text_encoder(pipe.model.config.text_encoder)  # a fresh encoder: embeddings one at a time
        out = attach_prompt_table(directory, encoder, phrases)  # the table, and its digest in config.json
        print(f"{name}: {len(phrases)} phrases -> {out} ({out.stat().st_size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
