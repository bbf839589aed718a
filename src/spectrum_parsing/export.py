"""ONNX export of a Spectrum model's image path, and an onnxruntime runner for it.

The exported graph is everything after the text encoder: backbone, pixel decoder, transformer decoder and
grounding, from ``images`` (B, 3, S, S) float in [0, 1] and ``text_embeds`` (P, D) to ``pred_logits``
(B, Q, P + 1) and ``pred_masks`` (B, Q, S/4, S/4). Batch and prompt count are dynamic; the image side ``S``
is fixed at export (the traced graph bakes in the level shapes); inputs are resized to a longest side of
``S`` and zero-padded right/bottom to ``S x S`` (:func:`~spectrum_parsing.processor.pad_square`), which is also
what the PyTorch path runs (and how training presents images), so both give the same result; masks are
cropped back. Prompts are
still embedded by the PyTorch text encoder (cached), which is cheap next to the image path.

    spectrum export --format onnx --out model.onnx           # the embedded default model
    spectrum parse photo.jpg --backend onnx --onnx model.onnx

The file carries ``image_size``, ``text_dim`` and the exporting package version as ONNX metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .hub import ModelLoadError
from .outputs import SpectrumOutput
from .processor import pad_square
from .writers import TMP_TAG, process_umask

__all__ = ["ONNX_OPSET", "OnnxRunner", "export_onnx", "pad_square"]

ONNX_OPSET = 17


class _ImagePath(nn.Module):
    """``SpectrumModel`` from (images, text_embeds) to (pred_logits, pred_masks), for tracing."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, text_embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(images, text_embeds=text_embeds)
        return out["pred_logits"], out["pred_masks"]


def export_onnx(model: Any, path: str | os.PathLike[str], image_size: int | None = None,
                opset: int = ONNX_OPSET, check: bool = True) -> Path:
    """Trace ``model`` (a :class:`~spectrum_parsing.modeling.SpectrumModel`) at ``image_size`` (default: the
    model's ``input_size``) into a self-contained ONNX file; with ``check`` (and the model on the CPU), compare
    onnxruntime with PyTorch on a random input (max abs difference of the logits and masks must be < 1e-3)."""

    size = int(image_size or model.config.input_size)
    if size % 32:
        raise ValueError(f"the export size must be a multiple of 32, got {size}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give the ONNX file to write (e.g. {path / 'model.onnx'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name beside the target and renamed only once it is complete and checked: an
    # interrupted or failed export never leaves a broken file under the final name.
    tmp = path.with_name(f"{TMP_TAG}{os.getpid()}.{path.name[:60]}.part")
    try:
        _export_to(model, tmp, size, opset, check)
        os.chmod(tmp, 0o666 & ~process_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _export_to(model: torch.nn.Module, path: Path, size: int, opset: int, check: bool) -> None:
    import onnx

    wrapper = _ImagePath(model).eval()
    images = torch.rand(1, 3, size, size, device=model.device)
    text = model.encode_prompts(["person", "hair"]).to(model.device)
    with torch.no_grad(), torch.autocast(device_type=model.device.type, enabled=False):
        torch.onnx.export(wrapper, (images, text), str(path), dynamo=False, opset_version=opset,
                          input_names=["images", "text_embeds"], output_names=["pred_logits", "pred_masks"],
                          dynamic_axes={"images": {0: "batch"}, "text_embeds": {0: "prompts"},
                                        "pred_logits": {0: "batch", 2: "prompts_plus_1"},
                                        "pred_masks": {0: "batch"}})
    proto = onnx.load(str(path))
    for key, value in {"image_size": str(size), "text_dim": str(int(text.shape[-1])),
                       "spectrum_parsing": __version__}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    if check and model.device.type == "cpu":  # onnxruntime runs on the CPU: compare with the CPU model only
        probe = torch.rand(2, 3, size, size)
        prompts = model.encode_prompts(["person", "hat", "left hand"])
        with torch.no_grad():
            want = wrapper(probe, prompts)
        out = OnnxRunner(path)(probe, text_embeds=prompts)
        worst = max(float((a - b).abs().max()) for a, b in zip(want, (out.pred_logits, out.pred_masks)))
        if worst > 1e-3:
            raise RuntimeError(f"the ONNX export differs from PyTorch by {worst:.2e} (limit 1e-3)")


class OnnxRunner:
    """An onnxruntime session of an exported Spectrum image path (see :func:`export_onnx`): a backend of
    :mod:`.processor` like the PyTorch model (``runner(pixel_values, text_embeds=...) -> SpectrumOutput``)."""

    device = torch.device("cpu")  # inputs are handed to onnxruntime from CPU tensors

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None,
                 providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such ONNX file (create it with `spectrum export --format onnx`)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # InvalidProtobuf, NotImplemented...
            raise ModelLoadError(f"{path}: not a loadable ONNX model ({type(err).__name__}: {err})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "image_size" not in meta:
            raise ModelLoadError(f"{path}: not a Spectrum export (no image_size metadata)")
        self.image_size = int(meta["image_size"])
        self.text_dim = int(meta.get("text_dim", 0))
        self.path = path

    def __call__(self, images: torch.Tensor, *, text_embeds: torch.Tensor) -> SpectrumOutput:
        """(B, 3, S, S) images and (P, D) prompt embeddings -> pred_logits and pred_masks (CPU tensors)."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"the ONNX model takes {self.image_size}x{self.image_size} images, got "
                             f"{tuple(images.shape[-2:])}: pad with pad_square()")
        if self.text_dim and text_embeds.shape[-1] != self.text_dim:
            raise ValueError(f"the ONNX model takes {self.text_dim}-d prompt embeddings, got {text_embeds.shape[-1]}")
        logits, masks = self.session.run(None, {"images": images.detach().float().cpu().contiguous().numpy(),
                                                "text_embeds": text_embeds.detach().float().cpu().numpy()})
        return SpectrumOutput(pred_logits=torch.from_numpy(logits), pred_masks=torch.from_numpy(masks))
