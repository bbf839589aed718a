"""ParseOptions: every knob of a parse, one typed name each, passed unchanged from the CLI, the server and the
Python API down to the processor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["ParseOptions"]


@dataclass(frozen=True)
class ParseOptions:
    """How a parse turns scores into persons and parts.

    ``score_threshold``: a part (and, bottom-up, a person instance) is reported when its mean score is at least
    this. ``background_threshold``: a pixel whose best prompt scores below this is background (both modes).
    ``mask_threshold``: bottom-up only, the probability at which the parser's own person masks are binarised.
    ``min_part_overlap``: bottom-up only, the share of a part instance its person must cover.
    ``ebp``: add the model's expanded body-part prompts to the user's. ``batch_size``: images per model call.
    """

    score_threshold: float = 0.3
    background_threshold: float = 0.5
    mask_threshold: float = 0.5
    min_part_overlap: float = 0.5
    ebp: bool = True
    batch_size: int = 1

    def __post_init__(self) -> None:
        for name in ("score_threshold", "background_threshold", "mask_threshold", "min_part_overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if not isinstance(self.ebp, bool):
            raise ValueError(f"ebp must be true or false, got {self.ebp!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")

    def replace(self, **changes: Any) -> ParseOptions:
        """A copy with ``changes`` (unknown names are a clear error)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown parse option(s) {unknown}; known: "
                            f"{', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
