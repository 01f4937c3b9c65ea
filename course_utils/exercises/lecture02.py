"""Lecture 02 exercises: one update step of SGD with momentum, Nesterov (derived), RMSprop
and Adam, the cosine learning-rate schedule, and heavy-ball momentum on a quadratic: its
largest stable learning rate (derived) and its convergence rate (a prediction).

Each step exercise is functional: it takes the parameter, its gradient and the
optimizer state, and returns the new parameter and the new state (as a tuple). The
references are course_utils.optim's functional updates, which the optimizer classes
call too and which tests/test_optim.py compares with torch.optim, so an answer that
passes here is the update torch.optim performs.
"""

import math

import numpy as np
import torch

from course_utils import optim, schedules
from course_utils.exercises import Case, Exercise, Mistake, register

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "optim", "step")

# --- known mistakes -------------------------------------------------------------------


def _velocity_form(param, grad, velocity, lr, momentum):
    velocity = momentum * velocity - lr * grad  # the textbook form, a different state
    return param + velocity, velocity


def _momentum_instead_of_nesterov(param, grad, velocity, lr, momentum):
    return optim.sgd_step(param, grad, velocity, lr, momentum)


def _rmsprop_eps_inside(param, grad, square_avg, lr, alpha, eps):
    square_avg = alpha * square_avg + (1 - alpha) * grad**2
    return param - lr * grad / (square_avg + eps).sqrt(), square_avg


def _adam_no_bias_correction(param, grad, m, v, step, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param - lr * m / (v.sqrt() + eps), m, v


def _adam_eps_inside(param, grad, m, v, step, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param - lr * m_hat / (v_hat + eps).sqrt(), m, v


def _cosine_degrees(epoch, base_lr, T_max, eta_min=0.0):
    return eta_min + (base_lr - eta_min) * (1 + math.cos(180 * epoch / T_max)) / 2


# --- case generators ------------------------------------------------------------------


def _shape(rng):
    return tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 3)))


def _tensors(rng, shape, dtype, *names, positive=()):
    out = {}
    for name in names:
        x = rng.standard_normal(shape)
        out[name] = (np.abs(x) if name in positive else x).astype(dtype)
    return out


def _momentum_cases(rng):
    cases = []
    for group, dtype, first in (
        ("first step (zero velocity), float64", np.float64, True),
        ("later step, float64", np.float64, False),
        ("later step, float32", np.float32, False),
    ):
        for _ in range(2):
            args = _tensors(rng, _shape(rng), dtype, "param", "grad", "velocity")
            if first:
                args["velocity"] = np.zeros_like(args["velocity"])
            args |= {
                "lr": float(rng.choice([0.01, 0.1, 0.5])),
                "momentum": float(rng.choice([0.5, 0.9])),
            }
            cases.append(Case(group, args))
    args = _tensors(rng, (3,), np.float64, "param", "grad", "velocity")
    cases.append(Case("momentum 0 is plain SGD", args | {"lr": 0.1, "momentum": 0.0}))
    return cases


def _rmsprop_cases(rng):
    cases = []
    for group, dtype in (("float64", np.float64), ("float32", np.float32)):
        for _ in range(2):
            args = _tensors(
                rng, _shape(rng), dtype, "param", "grad", "square_avg", positive=("square_avg",)
            )
            args |= {"lr": 0.01, "alpha": float(rng.choice([0.9, 0.99])), "eps": 1e-8}
            cases.append(Case(group, args))
    args = _tensors(rng, (4,), np.float64, "param", "grad", "square_avg")
    args["square_avg"] = np.zeros(4)
    args["grad"][0] = 0.0
    cases.append(
        Case("first step, a zero gradient", args | {"lr": 0.01, "alpha": 0.99, "eps": 1e-8})
    )
    args = _tensors(rng, (4,), np.float64, "param", "grad", "square_avg", positive=("square_avg",))
    cases.append(Case("large eps", args | {"lr": 0.1, "alpha": 0.9, "eps": 0.5}))
    return cases


def _adam_cases(rng):
    cases = []
    for group, dtype, step in (
        ("first step (bias correction matters most)", np.float64, 1),
        ("step 10, float64", np.float64, 10),
        ("step 10, float32", np.float32, 10),
        ("step 10000 (bias correction vanishes)", np.float64, 10000),
    ):
        for _ in range(2):
            args = _tensors(rng, _shape(rng), dtype, "param", "grad", "m", "v", positive=("v",))
            if step == 1:
                args["m"], args["v"] = np.zeros_like(args["m"]), np.zeros_like(args["v"])
            args["v"] = (0.1 * args["v"]).astype(dtype)
            args |= {"step": step, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
            cases.append(Case(group, args))
    args = _tensors(rng, (5,), np.float64, "param", "grad", "m", "v", positive=("v",))
    args |= {"step": 3, "lr": 0.01, "beta1": 0.5, "beta2": 0.9, "eps": 0.1}
    cases.append(Case("other betas and a large eps", args))
    return cases


def _cosine_cases(rng):
    cases = []
    for _ in range(4):
        T_max = int(rng.integers(5, 50))
        epoch = int(rng.integers(0, T_max + 1))
        cases.append(
            Case(
                "inside the cycle",
                {"epoch": epoch, "base_lr": 0.1, "T_max": T_max, "eta_min": 0.01},
            )
        )
    T_max = int(rng.integers(5, 50))
    cases += [
        Case(
            "the ends: epoch 0 and epoch T_max",
            {"epoch": 0, "base_lr": 0.1, "T_max": T_max, "eta_min": 0.01},
        ),
        Case(
            "the ends: epoch 0 and epoch T_max",
            {"epoch": T_max, "base_lr": 0.1, "T_max": T_max, "eta_min": 0.01},
        ),
        Case(
            "eta_min = 0",
            {"epoch": int(rng.integers(1, T_max)), "base_lr": 0.5, "T_max": T_max, "eta_min": 0.0},
        ),
    ]
    return cases


def _momentum_max_lr_naive(hessian, momentum=0.0):
    return 2 / float(np.linalg.eigvalsh(hessian.numpy())[-1])


def _momentum_max_lr_effective(hessian, momentum=0.0):
    # "the effective rate lr / (1 - mu) must stay below 2 / lam_max"
    return 2 * (1 - momentum) / float(np.linalg.eigvalsh(hessian.numpy())[-1])


def _momentum_max_lr_smallest(hessian, momentum=0.0):
    eigenvalues = np.linalg.eigvalsh(hessian.numpy())
    return 2 * (1 + momentum) / float(eigenvalues[eigenvalues > 1e-12].min())


def _momentum_rate_gd(hessian, lr, momentum=0.0):
    return float(np.abs(1 - lr * np.linalg.eigvalsh(hessian.numpy())).max())


def _momentum_rate_sqrt_mu(hessian, lr, momentum=0.0):
    return math.sqrt(momentum)


def _momentum_rate_steepest_only(hessian, lr, momentum=0.0):
    lam_max = float(np.linalg.eigvalsh(hessian.numpy())[-1])
    return optim.momentum_rate(torch.tensor([[lam_max]], dtype=torch.float64), lr, momentum)


def _spd(rng, d, condition=None):
    """A random symmetric positive definite (d, d) matrix (condition number if given)."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    if condition is None:
        eigenvalues = rng.uniform(0.1, 10.0, size=d)
    else:
        eigenvalues = np.geomspace(1.0, condition, d) * rng.uniform(0.5, 2.0)
    return (q * eigenvalues) @ q.T


def _symmetric(h):
    return (h + h.T) / 2


def _momentum_max_lr_cases(rng):
    def case(group, h, momentum):
        return Case(group, {"hessian": _symmetric(h), "momentum": momentum})

    cases = [
        case("random Hessians", _spd(rng, int(rng.integers(2, 7))), float(rng.choice([0.5, 0.9])))
        for _ in range(3)
    ]
    cases += [
        case("momentum 0: gradient descent", _spd(rng, 3), 0.0),
        case("momentum 0.99", _spd(rng, 4), 0.99),
        case("one parameter (1, 1)", np.array([[float(rng.uniform(0.5, 20.0))]]), 0.9),
        case("ill-conditioned (kappa = 1e4)", _spd(rng, 5, condition=1e4), 0.9),
        case("a flat direction (eigenvalue 0)", np.diag([0.0, 1.0, float(rng.uniform(2, 9))]), 0.5),
    ]
    return cases


def _momentum_rate_cases(rng):
    def case(group, h, fraction, momentum):
        h = _symmetric(h)
        limit = 2 * (1 + momentum) / np.linalg.eigvalsh(h)[-1]
        return Case(group, {"hessian": h, "lr": float(fraction * limit), "momentum": momentum})

    cases = [
        case(
            "random Hessians and rates",
            _spd(rng, int(rng.integers(2, 6))),
            float(rng.uniform(0.05, 0.95)),
            float(rng.choice([0.3, 0.6, 0.9])),
        )
        for _ in range(3)
    ]
    cases += [
        case("momentum 0: gradient descent", _spd(rng, 3), float(rng.uniform(0.1, 0.9)), 0.0),
        case("large momentum (complex roots)", _spd(rng, 3, condition=10.0), 0.5, 0.95),
        case("small rate (real roots)", _spd(rng, 3, condition=100.0), 0.01, 0.2),
        case("above the largest stable rate", _spd(rng, 2), 1.2, 0.5),
    ]
    # Polyak's best parameters for a random condition number: a repeated root everywhere
    kappa = float(rng.uniform(10, 1000))
    h = np.diag([1.0, kappa])
    mu = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    lr = 4 / (1 + math.sqrt(kappa)) ** 2
    cases.append(Case("Polyak's best lr and momentum", {"hessian": h, "lr": lr, "momentum": mu}))
    return cases


register(
    Exercise(
        id="02.sgd_momentum_step",
        name="sgd_momentum_step",
        title="One step of SGD with momentum",
        points=2,
        reference=optim.sgd_step,
        cases=_momentum_cases,
        n_outputs=2,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake(
                "this is the textbook velocity form (v <- mu v - lr g, p <- p + v); "
                "use PyTorch's form v <- mu v + g, p <- p - lr v",
                _velocity_form,
            ),
        ),
    ),
    Exercise(
        id="02.nesterov_step",
        name="nesterov_step",
        title="One step of Nesterov momentum",
        points=2,
        reference=optim.nesterov_step,
        cases=_momentum_cases,
        n_outputs=2,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake(
                "this is plain momentum: Nesterov steps along g + mu * v (the look-ahead), "
                "not along v",
                _momentum_instead_of_nesterov,
            ),
        ),
    ),
    Exercise(
        id="02.rmsprop_step",
        name="rmsprop_step",
        title="One step of RMSprop",
        points=2,
        reference=optim.rmsprop_step,
        cases=_rmsprop_cases,
        n_outputs=2,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake("eps goes outside the square root: g / (sqrt(s) + eps)", _rmsprop_eps_inside),
        ),
    ),
    Exercise(
        id="02.adam_step",
        name="adam_step",
        title="One step of Adam with bias correction",
        points=3,
        reference=optim.adam_step,
        cases=_adam_cases,
        n_outputs=3,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake(
                "no bias correction: divide m by (1 - beta1^t) and v by (1 - beta2^t)",
                _adam_no_bias_correction,
            ),
            Mistake(
                "eps goes outside the square root: m_hat / (sqrt(v_hat) + eps)", _adam_eps_inside
            ),
        ),
    ),
    Exercise(
        id="02.cosine_annealing_lr",
        name="cosine_annealing_lr",
        title="Cosine annealing schedule",
        points=1,
        reference=schedules.cosine_annealing_lr,
        cases=_cosine_cases,
        rtol=1e-9,
        atol=1e-12,
        forbidden=("lr_scheduler", "CosineAnnealingLR"),
        mistakes=(Mistake("math.cos takes radians: use math.pi, not 180", _cosine_degrees),),
    ),
    Exercise(
        id="02.momentum_max_lr",
        name="momentum_max_lr",
        title="The largest stable learning rate of heavy-ball momentum (derive it)",
        points=2,
        reference=optim.momentum_max_lr,
        cases=_momentum_max_lr_cases,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake(
                "2 / lam_max is gradient descent's limit; momentum changes it: analyse the "
                "two-step recurrence e_t = (1 + mu - lr lam) e_{t-1} - mu e_{t-2}",
                _momentum_max_lr_naive,
            ),
            Mistake(
                "momentum does not shrink the stable range like an effective rate "
                "lr / (1 - mu) would: find when the roots of the recurrence leave the unit circle",
                _momentum_max_lr_effective,
            ),
            Mistake(
                "the steepest direction (the largest eigenvalue) is the first to diverge",
                _momentum_max_lr_smallest,
            ),
        ),
    ),
    Exercise(
        id="02.momentum_rate",
        name="momentum_rate",
        title="Predict the convergence rate of heavy-ball momentum",
        points=2,
        reference=optim.momentum_rate,
        cases=_momentum_rate_cases,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake(
                "max |1 - lr lam| is gradient descent's factor: with momentum each direction "
                "follows a two-step recurrence; take the largest |root| of its polynomial",
                _momentum_rate_gd,
            ),
            Mistake(
                "sqrt(mu) is the modulus only when the roots are complex (a^2 < 4 mu); with "
                "real roots the larger one, (|a| + sqrt(a^2 - 4 mu)) / 2, is bigger",
                _momentum_rate_sqrt_mu,
            ),
            Mistake(
                "every eigenvalue has its own rate and the slowest direction decides; the "
                "flat directions are usually the slow ones",
                _momentum_rate_steepest_only,
            ),
        ),
    ),
)
