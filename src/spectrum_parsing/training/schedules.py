"""Learning-rate schedules from ``diffusers.optimization`` (linear warm-up, then cosine, polynomial or
constant), chosen by ``train.schedule``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import TrainConfig


def _diffusers_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    from diffusers.optimization import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_polynomial_decay_schedule_with_warmup,
    )

    warmup, total = config.warmup_steps, config.max_steps
    if config.schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    if config.schedule == "poly":
        base = optimizer.defaults["lr"]
        return get_polynomial_decay_schedule_with_warmup(optimizer, warmup, total, lr_end=base * config.min_lr_ratio,
                                                         power=config.poly_power)
    if config.min_lr_ratio > 0:
        from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

        return get_cosine_with_min_lr_schedule_with_warmup(optimizer, warmup, total, min_lr_rate=config.min_lr_ratio)
    return get_cosine_schedule_with_warmup(optimizer, warmup, total)


def _shifted(factor: Callable[[int], float]) -> Callable[[int], float]:
    return lambda step: factor(step + 1)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The scheduler ``config`` asks for, stepped once per optimizer step: ``warmup_steps`` of linear warm-up,
    then ``cosine`` (to ``min_lr_ratio`` of the base rate; transformers' min-lr variant when that is above 0),
    ``poly`` (power ``poly_power``, to ``min_lr_ratio``) or ``constant`` — diffusers' schedule functions, read one
    step ahead so the first optimizer step already has rate ``1 / warmup_steps`` (diffusers' step 0 has rate 0:
    a wasted step) and the last one reaches the final rate. Every parameter group is scaled by the same factor,
    so a fine-tuned backbone keeps its own ``backbone_lr`` ratio."""
    inner = _diffusers_scheduler(optimizer, config)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [_shifted(f) for f in inner.lr_lambdas])
