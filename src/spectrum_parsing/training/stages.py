"""Multi-stage training: a config may start from another config's final model (``init_from_experiment``),
trained first if missing; categories a later stage trains on stop being recorded as withheld."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .config import ExperimentConfig

logger = logging.getLogger(__name__)


def withheld_after(config: ExperimentConfig, before: Sequence[str]) -> list[str]:
    """Categories still never trained on after this run: those this run withholds, and - for a model that
    continues from ``init_from`` - only those its earlier training withheld too (``before``)."""
    now = list(config.data.targets.withheld)
    if not config.model.init_from:
        return now
    still = set(now)
    kept = [c for c in before if c in still]
    dropped = sorted(set(before) - set(kept))
    if dropped:
        logger.warning("init_from model had withheld %s; this run trains on them, so they are no longer unseen",
                       dropped)
    return kept
