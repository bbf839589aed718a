"""The model's output type, shared by every backend (the PyTorch model and the ONNX runner)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import torch

__all__ = ["SpectrumOutput"]


@dataclass
class SpectrumOutput:
    """Decoder outputs for a batch (in the manner of transformers' ``ModelOutput``: fields, and mapping-style
    access by name for code that treats it as a dict, such as the losses).

    ``pred_logits``: (B, Q, P + 1) grounding logits, last column = no object. ``pred_masks``: (B, Q, h/4, w/4)
    mask logits at stride 4 of the (padded) input. ``pred_embeds``: (B, Q, E) normalised query embeddings.
    ``aux_outputs``: the same dicts for every earlier decoder layer (training's deep supervision); None from
    backends that do not give them (ONNX)."""

    pred_logits: torch.Tensor
    pred_masks: torch.Tensor
    pred_embeds: torch.Tensor | None = None
    aux_outputs: list[dict[str, torch.Tensor]] | None = None

    @classmethod
    def from_dict(cls, outputs: dict[str, Any]) -> SpectrumOutput:
        return cls(pred_logits=outputs["pred_logits"], pred_masks=outputs["pred_masks"],
                   pred_embeds=outputs.get("pred_embeds"), aux_outputs=outputs.get("aux_outputs"))

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self.keys() else None
        return default if value is None else value

    def keys(self) -> list[str]:
        """The names of the fields that are set."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def image(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One image's ``(pred_logits (Q, P + 1), pred_masks (Q, h/4, w/4))``."""
        return self.pred_logits[index], self.pred_masks[index]

    def __len__(self) -> int:
        return int(self.pred_logits.shape[0])
