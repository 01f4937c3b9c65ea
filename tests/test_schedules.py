"""course_utils.schedules against torch's LR schedulers, epoch by epoch."""

import math

import pytest
import torch

from course_utils import schedules


def torch_lrs(make_scheduler, base_lr, epochs):
    """The lr torch's scheduler sets for epochs 0..epochs-1, with one step() per epoch."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    ("base_lr", "milestones", "gamma"),
    [(0.1, [30, 80], 0.1), (1.0, [1, 2, 3], 0.5), (0.05, [10, 10, 25], 0.3), (2.0, [0, 7], 0.9)],
)
def test_multistep_matches_torch(base_lr, milestones, gamma):
    epochs = 100
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma), base_lr, epochs
    )
    ours = [schedules.multistep_lr(e, base_lr, milestones, gamma) for e in range(epochs)]
    assert ours == pytest.approx(expected, rel=1e-12)


def test_multistep_by_hand():
    lrs = [schedules.multistep_lr(e, 1.0, [2, 4], 0.5) for e in range(6)]
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize(
    ("base_lr", "T_max", "eta_min"),
    [(0.1, 10, 0.0), (1.0, 50, 0.01), (0.3, 7, 0.05), (0.01, 1, 0.0), (2.0, 100, 1.0)],
)
def test_cosine_annealing_matches_torch_recursive_form_up_to_T_max(base_lr, T_max, eta_min):
    epochs = T_max + 1  # epochs 0..T_max, where torch's recursion equals the closed form
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max, eta_min),
        base_lr,
        epochs,
    )
    ours = [schedules.cosine_annealing_lr(e, base_lr, T_max, eta_min) for e in range(epochs)]
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert ours[0] == base_lr
    assert ours[T_max] == pytest.approx(eta_min, abs=1e-12)


def test_cosine_annealing_midpoint_and_beyond_T_max():
    assert schedules.cosine_annealing_lr(5, 1.0, 10, 0.2) == pytest.approx(0.6)  # halfway
    # the closed form is periodic: it climbs back up after T_max, like torch's closed form
    assert schedules.cosine_annealing_lr(15, 1.0, 10) == pytest.approx(0.5)
    assert schedules.cosine_annealing_lr(20, 1.0, 10) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("base_lr", "T_0", "T_mult", "eta_min"),
    [(0.1, 10, 1, 0.0), (1.0, 3, 2, 0.1), (0.5, 1, 2, 0.0), (0.2, 5, 3, 0.01), (1.0, 4, 1, 0.5)],
)
def test_cosine_warm_restarts_matches_torch(base_lr, T_0, T_mult, eta_min):
    epochs = 100
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min),
        base_lr,
        epochs,
    )
    ours = [
        schedules.cosine_warm_restarts_lr(e, base_lr, T_0, T_mult, eta_min) for e in range(epochs)
    ]
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_warm_restarts_restart_epochs():
    """T_0 = 2, T_mult = 2: cycles of 2, 4, 8 epochs start at epochs 0, 2, 6, 14."""
    lrs = [schedules.cosine_warm_restarts_lr(e, 1.0, 2, 2) for e in range(20)]
    restarts = [e for e, lr in enumerate(lrs) if lr == 1.0]
    assert restarts == [0, 2, 6, 14]
    assert lrs[1] == pytest.approx(0.5)  # halfway through the first cycle


@pytest.mark.parametrize(
    ("base_lr", "warmup_epochs", "start_factor"),
    [(0.1, 5, 1 / 3), (1.0, 10, 0.1), (0.5, 1, 0.5), (0.01, 20, 1.0), (3.0, 7, 0.25)],
)
def test_linear_warmup_matches_torch(base_lr, warmup_epochs, start_factor):
    epochs = 40
    expected = torch_lrs(
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor, 1.0, warmup_epochs),
        base_lr,
        epochs,
    )
    ours = [
        schedules.linear_warmup_lr(e, base_lr, warmup_epochs, start_factor) for e in range(epochs)
    ]
    assert ours == pytest.approx(expected, rel=1e-12)


def test_linear_warmup_from_zero():
    lrs = [schedules.linear_warmup_lr(e, 0.4, 4, start_factor=0.0) for e in range(6)]
    assert lrs == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4])


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: schedules.multistep_lr(-1, 0.1, [3]), "epoch"),
        (lambda: schedules.multistep_lr(0, -0.1, [3]), "base_lr"),
        (lambda: schedules.cosine_annealing_lr(0, 0.1, 0), "T_max"),
        (lambda: schedules.cosine_warm_restarts_lr(0, 0.1, 5, T_mult=0), "T_mult"),
        (lambda: schedules.linear_warmup_lr(0, 0.1, 5, start_factor=1.5), "start_factor"),
        (lambda: schedules.linear_warmup_lr(0, 0.1, 0), "warmup_epochs"),
    ],
)
def test_invalid_arguments_raise(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_schedules_are_finite_and_nonnegative():
    for e in range(30):
        for lr in (
            schedules.cosine_annealing_lr(e, 0.1, 12),
            schedules.cosine_warm_restarts_lr(e + 0.5, 0.1, 4, 2),
            schedules.linear_warmup_lr(e, 0.1, 6),
        ):
            assert math.isfinite(lr) and 0.0 <= lr <= 0.1 + 1e-15
