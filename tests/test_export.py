"""ONNX export of the image path: onnxruntime matches PyTorch, and the pipeline/CLI can run on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime", reason="the ONNX tests need onnx and onnxruntime (the dev extra)")

from spectrum_parsing.cli import main  # noqa: E402
from spectrum_parsing.export import OnnxRunner, export_onnx, pad_square  # noqa: E402
from spectrum_parsing.hub import ModelLoadError  # noqa: E402
from spectrum_parsing.pipeline import SpectrumPipeline  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory) -> Path:
    pipe = SpectrumPipeline.from_pretrained(tiny_model_dir)
    return export_onnx(pipe.model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", image_size=96)


def test_onnxruntime_matches_pytorch_for_any_batch_and_prompt_count(tiny_model_dir, exported):
    model = SpectrumPipeline.from_pretrained(tiny_model_dir).model
    runner = OnnxRunner(exported)
    assert runner.image_size == 96
    for batch, prompts in ((1, ["hat"]), (3, ["hat", "left hand", "dress", "person", "scarf"])):
        images = torch.rand(batch, 3, 96, 96, generator=torch.Generator().manual_seed(batch))
        embeds = model.encode_prompts(prompts)
        with torch.no_grad():
            want = model(images, text_embeds=embeds)
        out = runner(images, text_embeds=embeds)
        logits, masks = out.pred_logits, out.pred_masks
        assert logits.shape == (batch, want["pred_logits"].shape[1], len(prompts) + 1)
        torch.testing.assert_close(logits, want["pred_logits"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(masks, want["pred_masks"], atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="pad_square"):
        runner(torch.rand(1, 3, 64, 96), text_embeds=model.encode_prompts(["hat"]))
    assert pad_square(torch.ones(1, 3, 40, 96), 96)[:, :, 40:].abs().sum() == 0


def test_pipeline_and_cli_on_the_onnx_backend(tiny_model_dir, exported, tmp_path, capsys):
    square = Image.open(EXAMPLES / "group.jpg").convert("RGB").resize((96, 96))
    torch_pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96)
    onnx_pipe = SpectrumPipeline.from_pretrained(tiny_model_dir, onnx=exported)
    a = torch_pipe(square, prompts=["shirt", "hat"], score_threshold=0.0)
    b = onnx_pipe(square, prompts=["shirt", "hat"], score_threshold=0.0)
    assert (a.label_map == b.label_map).mean() > 0.99 and len(a.persons) == len(b.persons)
    wide = onnx_pipe(np.asarray(square.resize((150, 60))), prompts=["shirt"])  # padded to square, cropped back
    assert wide.label_map.shape == (60, 150)
    # Not only square photos: PyTorch pads to the same square input (as in training), so the two agree on any
    # shape, in both modes (the export used to agree on 75% of pixels of real photos).
    group = np.asarray(Image.open(EXAMPLES / "group.jpg").convert("RGB").resize((240, 150)))
    for mode in ("top-down", "bottom-up"):
        a = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96, mode=mode)(group, score_threshold=0.0)
        b = SpectrumPipeline.from_pretrained(tiny_model_dir, onnx=exported, mode=mode)(group, score_threshold=0.0)
        assert (a.label_map == b.label_map).mean() > 0.999 and len(a.persons) == len(b.persons), mode
    fast = SpectrumPipeline.from_pretrained(tiny_model_dir, image_size=96, square_inputs=False)(
        group, score_threshold=0.0)
    assert fast.label_map.shape == group.shape[:2]  # the faster, non-square inputs: a result, not ONNX's
    with pytest.raises(ValueError, match="96-px inputs"):
        SpectrumPipeline.from_pretrained(tiny_model_dir, onnx=exported, image_size=128)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        OnnxRunner(bad)
    out = tmp_path / "cli.onnx"
    assert main(["export", "--model", str(tiny_model_dir), "--out", str(out), "--image-size", "64"]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
    square.save(tmp_path / "sq.png")
    assert main(["parse", str(tmp_path / "sq.png"), "--model", str(tiny_model_dir), "--onnx", str(out),
                 "--out", str(tmp_path / "o"), "--prompt", "shirt"]) == 0
    assert (tmp_path / "o" / "sq.json").is_file()
