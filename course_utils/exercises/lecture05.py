r"""Lecture 05 exercises: penalties and their gradients, SGD with weight decay, the L1
proximal step, an early-stopping rule, mixup, ensemble averaging and the error of an
ensemble.

Every reference is a public function of ``course_utils.regularization``. The mixup
exercise is stochastic: its cases are coded so that the judge can read back, for every
example, the weight it was mixed with and its partner. Example i has the input
(i + 1) * u for a fixed random u and the target of class i mod C (one-hot, or
smoothed), so a mixed target holds lam_i at its own class and 1 - lam_i at its
partner's, and the mixed input, divided by u, gives the partner's number. The judge then
checks the convex combinations exactly and the weights' distribution statistically.
"""

import math

import numpy as np
import torch
from scipy import stats as scipy_stats

from course_utils import regularization
from course_utils.exercises import Case, Exercise, GeneratorSeed, Mistake, register, stats

OPTIMIZERS = ("SGD", "Adam", "AdamW", "optim")
AUTOGRAD = ("backward", "grad")

# --- case generators: parameter tuples --------------------------------------------------


def _normal(rng, shape, dtype=np.float64):
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _mlp_params(rng, dtype=np.float64):
    """(W1, b1, W2, b2) of a random two-layer MLP."""
    d, h, o = (int(k) for k in rng.integers(2, 7, size=3))
    return tuple(_normal(rng, s, dtype) for s in ((h, d), (h,), (o, h), (o,)))


def _conv_params(rng):
    """A conv kernel (out, in, k, k), its bias, a linear weight and its bias."""
    c_out, c_in, k, o = (int(v) for v in rng.integers(2, 5, size=4))
    return tuple(_normal(rng, s) for s in ((c_out, c_in, k, k), (c_out,), (o, c_out), (o,)))


def _l2_penalty_cases(rng):
    gains_and_scalar = (_normal(rng, (3,)), _normal(rng, (5,)), _normal(rng, ()))
    return [
        Case("an MLP's (W1, b1, W2, b2), float64", {"params": _mlp_params(rng)}),
        Case("an MLP's (W1, b1, W2, b2), float64", {"params": _mlp_params(rng)}),
        Case("a conv kernel (out, in, k, k) and biases", {"params": _conv_params(rng)}),
        Case("float32", {"params": _mlp_params(rng, np.float32)}),
        Case("biases, gains and a scalar only: the penalty is 0", {"params": gains_and_scalar}),
        Case("a single weight matrix", {"params": (_normal(rng, (4, 6)),)}),
    ]


def _l2_grad_cases(rng):
    # always four tensors (the answer returns a tuple of four gradients)
    mixed = (_normal(rng, (3, 4)), _normal(rng, ()), _normal(rng, (3,)), _normal(rng, (2, 3)))
    return [
        Case("an MLP's (W1, b1, W2, b2), float64", {"params": _mlp_params(rng)}),
        Case("an MLP's (W1, b1, W2, b2), float64", {"params": _mlp_params(rng)}),
        Case("a conv kernel (out, in, k, k) and biases", {"params": _conv_params(rng)}),
        Case("float32", {"params": _mlp_params(rng, np.float32)}),
        Case("a scalar and a gain vector are not penalized", {"params": mixed}),
    ]


def _weights(params):
    return [p for p in params if p.dim() >= 2]


def _zero(params):
    return torch.zeros((), dtype=params[0].dtype)


def _l2_not_squared(params):
    return sum(((w**2).sum().sqrt() for w in _weights(params)), _zero(params))


def _l2_with_biases(params):
    return sum(((p**2).sum() for p in params), _zero(params))


def _l2_mean(params):
    return sum(((w**2).mean() for w in _weights(params)), _zero(params))


def _grad_without_2(params):
    return tuple(p.clone() if p.dim() >= 2 else torch.zeros_like(p) for p in params)


def _grad_of_biases_too(params):
    return tuple(2 * p for p in params)


def _grad_of_the_norm(params):
    return tuple(p / (p**2).sum().sqrt() if p.dim() >= 2 else torch.zeros_like(p) for p in params)


# --- case generators: update steps -------------------------------------------------------


def _shape(rng):
    return tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 3)))


def _step_args(rng, dtype=np.float64, first=False):
    shape = _shape(rng)
    velocity = np.zeros(shape, dtype) if first else _normal(rng, shape, dtype)
    return {
        "param": _normal(rng, shape, dtype),
        "grad": _normal(rng, shape, dtype),
        "velocity": velocity,
        "lr": float(rng.choice([0.01, 0.1, 0.5])),
        "momentum": float(rng.choice([0.5, 0.9])),
        "weight_decay": float(rng.choice([1e-3, 1e-2, 0.1])),
    }


def _weight_decay_cases(rng):
    cases = [Case("first step (zero velocity), float64", _step_args(rng, first=True))]
    cases.append(Case("first step (zero velocity), float64", _step_args(rng, first=True)))
    cases += [Case("later step, float64", _step_args(rng)) for _ in range(2)]
    cases.append(Case("later step, float32", _step_args(rng, np.float32)))
    cases.append(
        Case("momentum 0: plain SGD with weight decay", _step_args(rng) | {"momentum": 0.0})
    )
    cases.append(Case("weight_decay 0: plain momentum", _step_args(rng) | {"weight_decay": 0.0}))
    return cases


def _decoupled_decay(param, grad, velocity, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad
    return param - lr * velocity - lr * weight_decay * param, velocity


def _decay_twice(param, grad, velocity, lr, momentum, weight_decay):
    velocity = momentum * velocity + grad + 2 * weight_decay * param
    return param - lr * velocity, velocity


def _prox_args(rng, dtype=np.float64):
    shape = (*_shape(rng), 4)
    return {
        "param": _normal(rng, shape, dtype),
        "grad": _normal(rng, shape, dtype),
        "lr": float(rng.choice([0.1, 0.3])),
        "l1": float(rng.choice([1.0, 2.0, 3.0])),
    }


def _prox_cases(rng):
    cases = [
        Case("random, float64 (some weights become exactly 0)", _prox_args(rng)) for _ in range(3)
    ]
    small = _prox_args(rng)
    small["param"], small["grad"] = 0.1 * small["param"], 0.1 * small["grad"]
    cases += [
        Case("everything inside the threshold: all weights become 0", small | {"l1": 10.0}),
        Case("l1 = 0: a plain gradient step", _prox_args(rng) | {"l1": 0.0}),
        Case("float32", _prox_args(rng, np.float32)),
    ]
    return cases


def _prox_subgradient(param, grad, lr, l1):
    return param - lr * (grad + l1 * param.sign())


def _prox_threshold_without_lr(param, grad, lr, l1):
    v = param - lr * grad
    return v.sign() * (v.abs() - l1).clamp(min=0)


def _prox_positive_only(param, grad, lr, l1):
    return (param - lr * grad - lr * l1).clamp(min=0)


def _prox_shrink_first(param, grad, lr, l1):
    return param.sign() * (param.abs() - lr * l1).clamp(min=0) - lr * grad


# --- case generators: early stopping --------------------------------------------------------


def _u_curve(rng, epochs, noise):
    """A validation loss that falls, bottoms out at a random epoch and rises, plus noise."""
    t = np.arange(epochs)
    bottom = int(rng.integers(epochs // 4, epochs // 2))
    curve = 0.5 + 2.0 * np.exp(-t / 4) + 0.01 * np.clip(t - bottom, 0, None)
    return curve + noise * rng.standard_normal(epochs)


def _early_stopping_cases(rng):
    falling = 1.0 + np.exp(-np.arange(30) / 10) + 0.001 * rng.random(30)
    falling = np.minimum.accumulate(falling)  # never rises
    falling[1:] -= 1e-3 * np.arange(1, 30)  # strictly decreasing
    ties = np.array([2.0, 1.5, 1.2, 1.2, 1.2, 1.2, 1.1, 1.0])
    ties[0] += rng.random()
    small = np.array([3.0, 2.0, 1.98, 1.97, 1.96, 1.955, 1.6, 1.5, 1.55, 1.6])
    nan = _u_curve(rng, 20, 0.0)
    nan[int(rng.integers(3, 6))] = np.nan
    return [
        Case("a U-shaped validation curve", {"val_losses": _u_curve(rng, 40, 0.0), "patience": 3}),
        Case(
            "a noisy curve: patience matters",
            {"val_losses": _u_curve(rng, 60, 0.05), "patience": int(rng.integers(3, 8))},
        ),
        Case(
            "still improving at the end: train to the last epoch",
            {"val_losses": falling, "patience": 5},
        ),
        Case("ties are not improvements", {"val_losses": ties, "patience": 3}),
        Case(
            "min_delta: small improvements do not count",
            {"val_losses": small + 0.001 * rng.random(10), "patience": 3, "min_delta": 0.05},
        ),
        Case("patience 1", {"val_losses": _u_curve(rng, 30, 0.02), "patience": 1}),
        Case("a diverged epoch (NaN) is not an improvement", {"val_losses": nan, "patience": 4}),
    ]


def _stopping_against_previous(val_losses, patience, min_delta=0.0):
    values = val_losses.tolist()
    best, wait = 0, 0
    for t in range(1, len(values)):
        if values[t] < values[best]:
            best = t
        wait = 0 if values[t] < values[t - 1] - min_delta else wait + 1
        if wait >= patience:
            return torch.tensor(best), torch.tensor(t)
    return torch.tensor(best), torch.tensor(len(values) - 1)


def _stopping_rule(values, patience, min_delta, improves, stop_after):
    best, best_epoch, wait = math.inf, 0, 0
    for t, value in enumerate(values):
        if improves(value, best, min_delta):
            best, best_epoch, wait = value, t, 0
        else:
            wait += 1
            if stop_after(wait, patience):
                return torch.tensor(best_epoch), torch.tensor(t)
    return torch.tensor(best_epoch), torch.tensor(len(values) - 1)


def _stopping_ties_improve(val_losses, patience, min_delta=0.0):
    return _stopping_rule(
        val_losses.tolist(), patience, min_delta, lambda v, b, d: v <= b - d, lambda w, p: w >= p
    )


def _stopping_one_late(val_losses, patience, min_delta=0.0):
    return _stopping_rule(
        val_losses.tolist(), patience, min_delta, lambda v, b, d: v < b - d, lambda w, p: w > p
    )


def _stopping_without_min_delta(val_losses, patience, min_delta=0.0):
    return _stopping_rule(
        val_losses.tolist(), patience, min_delta, lambda v, b, d: v < b, lambda w, p: w >= p
    )


# --- mixup --------------------------------------------------------------------------------

MIXUP_N = 16_384  # examples per case: the weights' KS test then accepts within 0.023
MIXUP_CLASSES = 16  # a partner has the example's own class with probability 1/16


def _mixup_case(rng, group, alpha, feature_shape, dtype=np.float64, smoothing=0.0):
    n, c = MIXUP_N, MIXUP_CLASSES
    u = rng.standard_normal(feature_shape)
    u /= np.abs(u).max()
    codes = np.arange(1, n + 1, dtype=np.float64).reshape(n, *([1] * len(feature_shape)))
    y = np.full((n, c), smoothing / c)
    y[np.arange(n), np.arange(n) % c] += 1.0 - smoothing
    args = {
        "x": (codes * u).astype(dtype),
        "y": y.astype(dtype),
        "alpha": alpha,
        "generator": GeneratorSeed(int(rng.integers(2**31))),
    }
    return Case(group, args)


def _mixup_cases(rng):
    return [
        _mixup_case(rng, "one-hot targets, alpha = 0.2", 0.2, (4,)),
        _mixup_case(rng, "one-hot targets, alpha = 1: uniform weights", 1.0, (3,)),
        _mixup_case(
            rng, "smoothed probability targets", float(rng.choice([0.4, 2.0])), (4,), smoothing=0.1
        ),
        _mixup_case(
            rng, "image-shaped inputs (N, 2, 3, 3)", float(rng.choice([0.3, 0.5])), (2, 3, 3)
        ),
        _mixup_case(rng, "float32", float(rng.choice([0.2, 1.5])), (4,), np.float32),
    ]


def _judge_mixup(case, got):
    """Exact checks of the convex combinations, then the weights' distribution (1 test)."""
    mixed_x, mixed_y = (np.asarray(a, dtype=np.float64) for a in got)
    x, y, alpha = case.args["x"], case.args["y"], case.args["alpha"]
    n, c = y.shape
    tol = 1e-9 if y.dtype == np.float64 else 1e-5
    rows = np.arange(n)
    own_class = rows % c

    # targets: y = a * onehot + b, so e = (y~ - b) / a holds lam_i at the example's class,
    # 1 - lam_i at the partner's (when it differs) and 0 elsewhere
    if not np.allclose(mixed_y.sum(axis=1), 1.0, rtol=0, atol=c * tol):
        return (
            "the rows of the mixed targets must sum to 1: y~ is a convex combination of two "
            "rows of y"
        )
    b = float(y.min())
    e = (mixed_y - b) / (float(y.max()) - b)
    if (e < -10 * tol).any():
        return "the mixed targets have negative weights: lam must lie in [0, 1]"
    lam = e[rows, own_class]
    others = e.copy()
    others[rows, own_class] = 0.0
    partner_class = others.argmax(axis=1)
    mu = others[rows, partner_class]
    others[rows, partner_class] = 0.0
    if (np.abs(others) > 10 * tol).any():
        return "a mixed target mixes more than two examples: mix each example with one partner"
    # The partner's weight 1 - lam shows when the partner has another class (15 in 16) and
    # 1 - lam is above rounding; those rows are a sample of lam | lam < 1 - cutoff.
    cutoff = 1e-6 if y.dtype == np.float64 else 1e-3
    mixed = mu > cutoff
    if mixed.mean() < 0.5:
        return (
            f"only {mixed.mean():.0%} of the examples were mixed with an example of another class: "
            "mix each example and its target with a randomly chosen partner (a random permutation)"
        )

    # inputs: x_i = (i + 1) u, so a convex combination is s_i u with s_i = lam_i (i+1) + mu_i (j+1)
    u = x[0].astype(np.float64).ravel()  # x_0 = 1 * u
    flat = mixed_x.reshape(n, -1)
    s = flat @ u / (u @ u)
    resid = np.abs(flat - s[:, None] * u).max()
    if not resid <= (1e-6 if x.dtype == np.float64 else 0.1):
        return (
            "the mixed inputs are not convex combinations of two inputs with one weight per "
            "example: every entry of x~_i must use the same lam_i"
        )
    usable = mixed & (mu > 0.1)
    partner = (s[usable] - lam[usable] * (rows[usable] + 1)) / mu[usable] - 1
    whole = np.round(partner)
    if usable.any() and (
        np.abs(partner - whole).max() > 0.25
        or whole.min() < 0
        or whole.max() > n - 1
        or ((whole.astype(np.int64) % c) != partner_class[usable]).any()
    ):
        return (
            "x~_i and y~_i are not mixed alike: use the same weight lam_i and the same partner j "
            "for the input and for the target"
        )

    # the weights: Beta(alpha, alpha), given lam < 1 - cutoff (the rows where it shows)
    if np.ptp(lam[mixed]) < 1e-6:
        return (
            "every example was mixed with the same weight: draw one weight per example, "
            "lam of shape (N,), not one for the whole batch"
        )
    beta_cdf = scipy_stats.beta(alpha, alpha).cdf
    top = beta_cdf(1 - cutoff)
    return stats.ks_test(
        lam[mixed], lambda v: np.minimum(beta_cdf(v) / top, 1.0), what="mixing weights"
    )


def _mix(x, y, lam_x, lam_y, perm):
    def combine(t, lam):
        lam = lam.to(t.dtype).view(len(t), *([1] * (t.dim() - 1)))
        return lam * t + (1 - lam) * t[perm]

    return combine(x, lam_x), combine(y, lam_y)


def _mixup_uniform(x, y, alpha, generator=None):
    lam = torch.rand(len(x), generator=generator, dtype=torch.float64)
    return _mix(x, y, lam, lam, torch.randperm(len(x), generator=generator))


def _mixup_two_weights(x, y, alpha, generator=None):
    lam_x = regularization._beta(alpha, len(x), generator)
    lam_y = regularization._beta(alpha, len(x), generator)
    return _mix(x, y, lam_x, lam_y, torch.randperm(len(x), generator=generator))


def _mixup_inputs_only(x, y, alpha, generator=None):
    mixed_x, _ = regularization.mixup(x, y, alpha, generator=generator)
    return mixed_x, y.clone()


# --- ensembles ----------------------------------------------------------------------------


def _ensemble_cases(rng):
    def logits(m, n, c, scale=2.0, dtype=np.float64):
        return (scale * rng.standard_normal((m, n, c))).astype(dtype)

    extreme = rng.choice([-1000.0, 1000.0], size=(3, 4, 3))
    disagree = np.zeros((2, 1, 2))
    disagree[0, 0, 0], disagree[1, 0, 1] = 4.0, float(rng.uniform(0.5, 2.0))
    return [
        Case("random logits (M, N, C), float64", {"logits": logits(5, 6, 4)}),
        Case("random logits (M, N, C), float64", {"logits": logits(3, 8, 10)}),
        Case("members that disagree", {"logits": disagree}),
        Case("a single model (M = 1)", {"logits": logits(1, 5, 3)}),
        Case("extreme logits (±1000)", {"logits": extreme}),
        Case("float32", {"logits": logits(4, 5, 6, dtype=np.float32)}),
    ]


def _average_logits(logits):
    return torch.softmax(logits.mean(dim=0), dim=-1)


def _naive_average(logits):
    e = torch.exp(logits)
    return (e / e.sum(dim=-1, keepdim=True)).mean(dim=0)


def _ensemble_mse_cases(rng):
    def case(group, n, cross_fraction):
        mse = float(rng.uniform(0.1, 2.0))
        return Case(group, {"mse": mse, "cross": cross_fraction * mse, "n": n})

    return [
        case("correlated errors", int(rng.integers(2, 20)), float(rng.uniform(0.1, 0.9))),
        case("correlated errors", int(rng.integers(2, 20)), float(rng.uniform(0.1, 0.9))),
        case("n = 1: a single member", 1, float(rng.uniform(0.1, 0.9))),
        case("uncorrelated errors (cross = 0)", int(rng.integers(2, 20)), 0.0),
        case("identical errors (cross = mse)", int(rng.integers(2, 20)), 1.0),
        case("many members (n = 1000)", 1000, float(rng.uniform(0.1, 0.9))),
        case("negatively correlated errors", 3, -0.25),
    ]


def _ensemble_mse_uncorrelated(mse, cross, n):
    return mse / n


def _ensemble_mse_cross_divided(mse, cross, n):
    return mse / n + cross


register(
    Exercise(
        id="05.l2_penalty",
        name="l2_penalty",
        title="The L2 penalty of the weights",
        points=2,
        reference=regularization.l2_penalty,
        cases=_l2_penalty_cases,
        mistakes=(
            Mistake(
                "the penalty is the *squared* norm, the sum of all W_ij^2 (||W||_F without the "
                "square is a different penalty)",
                _l2_not_squared,
            ),
            Mistake(
                "biases are not penalized: leave out tensors with fewer than 2 dimensions",
                _l2_with_biases,
            ),
            Mistake("sum the squares; do not average them", _l2_mean),
        ),
    ),
    Exercise(
        id="05.l2_penalty_grad",
        name="l2_penalty_grad",
        title="The gradient of the L2 penalty",
        points=1,
        reference=regularization.l2_penalty_grad,
        cases=_l2_grad_cases,
        n_outputs=4,
        forbidden=AUTOGRAD,
        mistakes=(
            Mistake("the derivative of W_ij^2 is 2 W_ij", _grad_without_2),
            Mistake(
                "biases are not in the penalty: their gradient is a tensor of zeros",
                _grad_of_biases_too,
            ),
            Mistake(
                "W / ||W||_F is the gradient of the norm without the square; the penalty "
                "sum W_ij^2 has gradient 2 W",
                _grad_of_the_norm,
            ),
        ),
    ),
    Exercise(
        id="05.sgd_weight_decay_step",
        name="sgd_weight_decay_step",
        title="One step of SGD with momentum and weight decay",
        points=2,
        reference=regularization.sgd_weight_decay_step,
        cases=_weight_decay_cases,
        n_outputs=2,
        forbidden=OPTIMIZERS,
        mistakes=(
            Mistake(
                "that is decoupled decay (SGDW), outside the momentum; here the penalty's "
                "gradient weight_decay * theta joins the gradient before the momentum",
                _decoupled_decay,
            ),
            Mistake(
                "weight_decay = wd is the penalty (wd / 2) ||theta||^2, whose gradient is "
                "wd * theta, not 2 wd * theta",
                _decay_twice,
            ),
        ),
    ),
    Exercise(
        id="05.l1_proximal_step",
        name="l1_proximal_step",
        title="The proximal step of the L1 penalty (derive it)",
        points=3,
        reference=regularization.l1_proximal_step,
        cases=_prox_cases,
        forbidden=("softshrink", "Softshrink", "hardshrink"),
        mistakes=(
            Mistake(
                "that is the subgradient step theta - lr (g + l1 sign(theta)), which jumps "
                "across 0; minimise |w - v|^2 / (2 lr) + l1 |w| for each coordinate instead",
                _prox_subgradient,
            ),
            Mistake(
                "the threshold is lr * l1: the penalty's weight relative to 1 / (2 lr)",
                _prox_threshold_without_lr,
            ),
            Mistake(
                "negative coordinates shrink towards 0 too: keep the sign of v",
                _prox_positive_only,
            ),
            Mistake(
                "take the gradient step first (v = theta - lr g), then shrink v",
                _prox_shrink_first,
            ),
        ),
    ),
    Exercise(
        id="05.early_stopping_epoch",
        name="early_stopping_epoch",
        title="Early stopping with patience",
        points=2,
        reference=regularization.early_stopping_epoch,
        cases=_early_stopping_cases,
        n_outputs=2,
        mistakes=(
            Mistake(
                "compare each loss with the best loss so far, not with the previous epoch's",
                _stopping_against_previous,
            ),
            Mistake(
                "a loss equal to the best is not an improvement (use <, not <=)",
                _stopping_ties_improve,
            ),
            Mistake(
                "stop after `patience` epochs without improvement, not after patience + 1",
                _stopping_one_late,
            ),
            Mistake(
                "an improvement must beat the best by more than min_delta",
                _stopping_without_min_delta,
            ),
        ),
    ),
    Exercise(
        id="05.mixup",
        name="mixup",
        title="mixup (stochastic)",
        points=3,
        reference=regularization.mixup,
        cases=_mixup_cases,
        n_outputs=2,
        judge=_judge_mixup,
        mistakes=(
            Mistake(
                "the weights follow Beta(alpha, alpha), not Uniform(0, 1) (that is alpha = 1 only)",
                _mixup_uniform,
            ),
            Mistake(
                "mix x_i and y_i with the same weight lam_i (draw the weights once)",
                _mixup_two_weights,
            ),
            Mistake(
                "mix the targets too, with the same partners and weights as the inputs",
                _mixup_inputs_only,
            ),
        ),
    ),
    Exercise(
        id="05.ensemble_average",
        name="ensemble_average",
        title="The prediction of an ensemble",
        points=2,
        reference=regularization.ensemble_average,
        cases=_ensemble_cases,
        mistakes=(
            Mistake(
                "average the members' probabilities, not their logits: softmax of the mean logit "
                "is a different (geometric) average",
                _average_logits,
            ),
            Mistake(
                "subtract each row's maximum logit before exp, or logits like 1000 overflow",
                _naive_average,
            ),
        ),
    ),
    Exercise(
        id="05.ensemble_mse",
        name="ensemble_mse",
        title="The error of an average of n models (derive and predict)",
        points=2,
        reference=regularization.ensemble_mse,
        cases=_ensemble_mse_cases,
        rtol=1e-9,
        atol=1e-12,
        mistakes=(
            Mistake(
                "mse / n holds only for uncorrelated errors: the part of the error the members "
                "share (cross) does not average out",
                _ensemble_mse_uncorrelated,
            ),
            Mistake(
                "count the terms of |sum_m eps_m|^2: n squares (mse each) and n (n - 1) cross "
                "products (cross each), all divided by n^2",
                _ensemble_mse_cross_divided,
            ),
        ),
    ),
)
