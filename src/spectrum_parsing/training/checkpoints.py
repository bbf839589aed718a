"""Checkpoints ``output_dir/checkpoints/step-N/``: accelerate's state (model, optimizer, scheduler), the model
as ``save_pretrained``, torch RNG states (safetensors, nothing unpickled) and ``trainer.json``; rotation keeps
the newest ``keep_checkpoints`` and never touches a folder not named ``step-<number>``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from ..configs import ConfigError
from ..modeling import SpectrumModel


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = output_dir / "checkpoints"
    if not root.is_dir():
        return []
    # Only step-<number>: a user's backup copy (step-2.bak, step-2 copy) is neither resumed from nor rotated away.
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"step-\d+", p.name)
             and (p / "trainer.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(accelerator: Any, model: SpectrumModel, output_dir: Path, step: int, keep: int) -> Path:
    """Save model weights (``save_pretrained``), optimizer/scheduler/RNG state and the step counter."""
    directory = output_dir / "checkpoints" / f"step-{step}"
    accelerator.save_state(str(directory / "state"))
    _save_rng(directory / f"rng-{accelerator.process_index}.safetensors")
    if accelerator.is_main_process:
        model.save_pretrained(directory / "model")
        (directory / "trainer.json").write_text(json.dumps({"step": step}))
        for old in checkpoint_dirs(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return directory


def _save_rng(path: Path) -> None:
    """Torch RNG states (CPU and CUDA) as tensors: restorable without unpickling anything.

    Data randomness does not need saving (it is a function of the sample index); the torch generators drive
    the loss's point sampling, so they must be restored for an exact resume.
    """
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(states, str(path))


def _checkpoint_step(checkpoint: Path) -> int:
    """The step a checkpoint was saved at (its ``trainer.json``); a missing or damaged file is a ConfigError."""
    path = checkpoint / "trainer.json"
    if not path.is_file():
        raise ConfigError(f"{checkpoint}: not a training checkpoint (no trainer.json)")
    try:
        step = json.loads(path.read_text())["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step {step!r} is not a non-negative integer")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: damaged checkpoint file ({type(err).__name__}: {err})") from None
    return step


def _restore_rng(path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ConfigError(f"checkpoint is missing its RNG state {path.name}: cannot resume exactly")
    try:
        states = load_file(str(path))
        torch.set_rng_state(states["cpu"])
    except Exception as err:
        raise ConfigError(f"{path}: damaged RNG state ({type(err).__name__}: {str(err)[:200]})") from None
    cuda = [states[k] for k in sorted((k for k in states if k.startswith("cuda")), key=lambda k: int(k[4:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
