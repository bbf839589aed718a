"""Multi-stage training: a config may start from another config's final model (``init_from_experiment``),
trained first if missing; categories a later stage trains on stop being recorded as withheld."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from ..configs import ConfigError
from .config import ExperimentConfig

logger = logging.getLogger(__name__)


def continue_after(config: ExperimentConfig, progress: bool = True) -> ExperimentConfig:
    """``config`` with ``init_from`` set to the final model of its ``init_from_experiment``, training that earlier
    stage first (resuming its newest checkpoint) if its model does not exist yet."""
    earlier = ExperimentConfig.from_yaml(config.model.init_from_experiment)
    out = Path(earlier.train.output_dir)
    final = out / "model"
    recorded = out / "experiment.json"
    if recorded.is_file():
        previous = ExperimentConfig.from_dict(json.loads(recorded.read_text()))
        if previous.model.init_from_experiment:  # recorded after its own earlier stage was resolved
            previous = dataclasses.replace(previous, model=dataclasses.replace(previous.model, init_from=None))
        if previous.to_json_string() != earlier.to_json_string():
            raise ConfigError(f"{out} holds a run of another config than {config.model.init_from_experiment}; "
                              "move it away or change that config's train.output_dir")
    if not (final / "model.safetensors").is_file():
        logger.warning("training the earlier stage %s first (into %s)", config.model.init_from_experiment, out)
        from .loop import train  # the earlier stage runs the same loop

        train(earlier, resume="auto", progress=progress)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, init_from=str(final)))


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
