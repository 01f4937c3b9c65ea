r"""Learning-rate schedules as pure functions of the epoch.

Each function returns the learning rate to use during ``epoch`` (0, 1, 2, ...),
the value ``optimizer.param_groups[i]["lr"]`` has at that epoch under the torch
scheduler named in its docstring when ``scheduler.step()`` is called once per
epoch. Being plain functions, they can be plotted, tabulated or passed to
``course_utils.training.fit(scheduler=...)`` via ``functools.partial``::

    schedule = functools.partial(cosine_annealing_lr, base_lr=0.1, T_max=50)
    [schedule(epoch) for epoch in range(50)]
"""

import math

from course_utils import _validate

__all__ = ["cosine_annealing_lr", "cosine_warm_restarts_lr", "linear_warmup_lr", "multistep_lr"]


def multistep_lr(epoch: int, base_lr: float, milestones, gamma: float = 0.1) -> float:
    r"""Step decay: multiply the rate by gamma at each milestone (torch's MultiStepLR).

        lr(epoch) = base_lr * gamma^k,   k = number of milestones <= epoch

    E.g. milestones=[30, 80], gamma=0.1: base_lr for epochs 0-29, base_lr/10 for
    30-79, base_lr/100 from 80 on. A milestone listed twice counts twice.
    """
    epoch = _validate.integer(epoch, "epoch", low=0)
    _validate.number(base_lr, "base_lr", low=0.0)
    _validate.number(gamma, "gamma", low=0.0)
    milestones = [_validate.integer(m, "milestones[i]", low=0) for m in milestones]
    k = sum(1 for m in milestones if m <= epoch)
    return base_lr * gamma**k


def cosine_annealing_lr(epoch: int, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    r"""Cosine annealing from base_lr down to eta_min over T_max epochs (torch's CosineAnnealingLR).

        lr(epoch) = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    lr(0) = base_lr and lr(T_max) = eta_min. This is the closed form; torch's
    ``scheduler.step()`` uses an equivalent recursive update (each lr from the
    previous one) that agrees with it up to rounding for epochs 0..T_max. Past
    T_max the formula (like torch) follows the cosine back up, with period
    2 * T_max; use ``cosine_warm_restarts_lr`` for restarts instead.
    """
    _validate.number(epoch, "epoch", low=0.0)
    _validate.number(base_lr, "base_lr", low=0.0)
    _validate.integer(T_max, "T_max", low=1)
    _validate.number(eta_min, "eta_min", low=0.0)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2


def cosine_warm_restarts_lr(
    epoch: int, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> float:
    r"""Cosine annealing restarted every T_i epochs (SGDR; torch's CosineAnnealingWarmRestarts).

        lr(epoch) = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    where the first cycle has length T_0, each later cycle is T_mult times longer
    (T_i = T_0 * T_mult^i), and T_cur = epochs since the start of the current
    cycle. At each restart the rate jumps back to base_lr. ``epoch`` may be
    fractional (e.g. epoch + batch / batches_per_epoch) to anneal within an epoch.
    """
    _validate.number(epoch, "epoch", low=0.0)
    _validate.number(base_lr, "base_lr", low=0.0)
    _validate.integer(T_0, "T_0", low=1)
    _validate.integer(T_mult, "T_mult", low=1)
    _validate.number(eta_min, "eta_min", low=0.0)
    T_i, T_cur = T_0, epoch
    while T_cur >= T_i:  # skip whole cycles
        T_cur -= T_i
        T_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def linear_warmup_lr(
    epoch: int, base_lr: float, warmup_epochs: int, start_factor: float = 1 / 3
) -> float:
    r"""Linear warmup from start_factor * base_lr to base_lr, then constant (torch's LinearLR).

        lr(epoch) = base_lr * (start_factor + (1 - start_factor) * min(epoch, warmup_epochs)
                                                                 / warmup_epochs)

    Same as ``LinearLR(optimizer, start_factor, end_factor=1.0, total_iters=warmup_epochs)``,
    including its default start_factor of 1/3. start_factor = 0 (allowed here,
    not by torch) starts from a rate of exactly 0.
    """
    _validate.number(epoch, "epoch", low=0.0)
    _validate.number(base_lr, "base_lr", low=0.0)
    _validate.integer(warmup_epochs, "warmup_epochs", low=1)
    _validate.number(start_factor, "start_factor", low=0.0, high=1.0)
    progress = min(epoch, warmup_epochs) / warmup_epochs
    return base_lr * (start_factor + (1 - start_factor) * progress)
