"""Lecture 01 exercises: softmax, log-softmax, cross-entropy and its gradient, BCE, Huber,
the gradient of squared error on a softmax (derived), the loss floor of a model that
ignores its input (a prediction).

Every student function has the signature of its course_utils.losses twin (with the
defaults the exercise uses), so the reference is the course_utils function itself.
"""

import numpy as np
import torch

from course_utils import losses
from course_utils.exercises import Case, Exercise, Mistake, register

# Functions whose use would make an exercise trivial (checked on the AST by `check`,
# and disabled at run time by the grader).
# logcumsumexp and logaddexp compute logsumexp under other names (the last entry of
# z.logcumsumexp(dim), np.logaddexp.reduce(z)); soft_margin_loss is the binary
# cross-entropy with logits for targets +-1.
SOFTMAX_FAMILY = ("softmax", "log_softmax", "logsumexp", "softmin", "logcumsumexp", "logaddexp")
LOSS_FAMILY = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "huber_loss",
    "smooth_l1_loss",
    "CrossEntropyLoss",
    "BCEWithLogitsLoss",
    "HuberLoss",
    "SmoothL1Loss",
    "soft_margin_loss",
    "SoftMarginLoss",
)


# --- case generators ------------------------------------------------------------------


def _logits(rng, shape, dtype=np.float64, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _random_shape(rng, min_dim=1, max_dim=3):
    return tuple(int(n) for n in rng.integers(2, 7, size=rng.integers(min_dim, max_dim + 1)))


def _softmax_cases(rng):
    cases = [
        Case("random shapes, float64", {"z": _logits(rng, _random_shape(rng))}) for _ in range(4)
    ]
    cases += [
        Case("float32", {"z": _logits(rng, _random_shape(rng), np.float32)}) for _ in range(2)
    ]
    cases += [
        Case("dim argument", {"z": _logits(rng, (3, 5)), "dim": 0}),
        Case("dim argument", {"z": _logits(rng, (2, 3, 4)), "dim": 1}),
    ]
    big = rng.choice([-1000.0, 1000.0], size=(4, 5))
    big[:, 0] = 1000.0
    cases += [
        Case("extreme logits (±1000, 1e4)", {"z": big}),
        Case("extreme logits (±1000, 1e4)", {"z": np.array([1e4, 1e4 - 1.0, -1e4])}),
        Case("extreme logits (±1000, 1e4)", {"z": big.astype(np.float32)}),
        Case("ties and a batch of one", {"z": np.full((1, 4), 2.5)}),
        Case("ties and a batch of one", {"z": _logits(rng, (1, 6))}),
    ]
    return cases


def _class_targets(rng, n, c):
    return rng.integers(0, c, size=n).astype(np.int64)


def _prob_targets(rng, n, c, dtype=np.float64):
    p = rng.random((n, c)) ** 2
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def _cross_entropy_cases(rng):
    cases = []
    for _ in range(3):
        n, c = (int(k) for k in rng.integers(2, 9, size=2))
        cases.append(
            Case(
                "class-index targets",
                {"logits": _logits(rng, (n, c)), "target": _class_targets(rng, n, c)},
            )
        )
    for _ in range(3):
        n, c = (int(k) for k in rng.integers(2, 9, size=2))
        cases.append(
            Case(
                "probability targets",
                {"logits": _logits(rng, (n, c)), "target": _prob_targets(rng, n, c)},
            )
        )
    n, c = 4, 5
    cases.append(
        Case(
            "float32",
            {"logits": _logits(rng, (n, c), np.float32), "target": _class_targets(rng, n, c)},
        )
    )
    big = rng.choice([-1000.0, 1000.0], size=(3, 4))
    cases += [
        Case("extreme logits (±1000)", {"logits": big, "target": np.array([0, 1, 3])}),
        Case("extreme logits (±1000)", {"logits": big, "target": _prob_targets(rng, 3, 4)}),
        Case(
            "ties and a batch of one",
            {"logits": np.zeros((1, 3)), "target": np.array([2])},
        ),
        Case(
            "ties and a batch of one",
            {"logits": _logits(rng, (1, 4)), "target": _prob_targets(rng, 1, 4)},
        ),
    ]
    return cases


def _bce_cases(rng):
    def hard(shape):
        return rng.integers(0, 2, size=shape).astype(np.float64)

    cases = [
        Case("hard 0/1 targets", {"logits": _logits(rng, s), "target": hard(s)})
        for s in (_random_shape(rng), _random_shape(rng))
    ]
    cases += [
        Case("soft targets", {"logits": _logits(rng, s), "target": rng.random(s)})
        for s in (_random_shape(rng), _random_shape(rng))
    ]
    cases += [
        Case(
            "float32",
            {"logits": _logits(rng, (6,), np.float32), "target": hard((6,)).astype(np.float32)},
        ),
    ]
    # Every group's values come from rng, so that a table of memorised outputs is no
    # answer. Both signs of a logit near ±1000 meet both targets.
    signs = np.concatenate([[-1.0, 1.0, -1.0, 1.0], rng.choice([-1.0, 1.0], size=2)])
    big = signs * rng.uniform(500.0, 1000.0, size=6)
    cases += [
        Case(
            "extreme logits (±1000)", {"logits": big, "target": np.r_[0.0, 1.0, 1.0, 0.0, hard(2)]}
        ),
        Case("a batch of one", {"logits": _logits(rng, (1,)), "target": hard((1,))}),
    ]
    return cases


def _huber_cases(rng):
    cases = []
    for _ in range(3):
        shape = _random_shape(rng)
        cases.append(
            Case("random, delta=1", {"pred": _logits(rng, shape), "target": _logits(rng, shape)})
        )
    for delta in (0.1, 2.5):
        shape = _random_shape(rng)
        cases.append(
            Case(
                "other deltas",
                {"pred": _logits(rng, shape), "target": _logits(rng, shape), "delta": delta},
            )
        )
    small = 0.1 * rng.standard_normal(5)
    cases += [
        Case("all residuals inside delta", {"pred": small, "target": np.zeros(5)}),
        Case("all residuals outside delta", {"pred": 10 + rng.random(5), "target": -rng.random(5)}),
        Case(
            "float32",
            {"pred": _logits(rng, (7,), np.float32), "target": _logits(rng, (7,), np.float32)},
        ),
    ]
    target = rng.standard_normal(1)  # one residual beyond delta = 1, of either sign
    residual = rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0, size=1)
    cases.append(Case("a batch of one", {"pred": target + residual, "target": target}))
    return cases


# --- known mistakes -------------------------------------------------------------------


def _naive_softmax(z, dim=-1):
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


def _wrong_axis(fn):
    def wrong(z, dim=-1):
        other = 0 if dim % z.dim() != 0 else -1
        return fn(z, dim=other)

    return wrong


def _log_of_softmax(z, dim=-1):
    return torch.log(losses.softmax(z, dim=dim))


def _naive_log_softmax(z, dim=-1):
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


def _ce_sum(logits, target):
    return losses.cross_entropy(logits, target, reduction="sum")


def _ce_naive(logits, target):
    p = _naive_softmax(logits)
    if target.dtype == torch.int64:
        return -torch.log(p[torch.arange(len(target)), target]).mean()
    return -(target * torch.log(p)).sum(dim=1).mean()


def _ce_grad_no_mean(logits, target):
    return losses.cross_entropy_grad(logits, target) * logits.shape[0]


def _ce_grad_flipped(logits, target):
    return -losses.cross_entropy_grad(logits, target)


def _bce_naive(logits, target):
    p = torch.sigmoid(logits)
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def _huber_no_half(pred, target, delta=1.0):
    r = (pred - target).abs()
    return torch.where(r <= delta, r**2, 2 * delta * (r - 0.5 * delta)).mean()


def _huber_swapped(pred, target, delta=1.0):
    r = (pred - target).abs()
    return torch.where(r > delta, 0.5 * r**2, delta * (r - 0.5 * delta)).mean()


def _softmax_se_cases(rng):
    cases = _cross_entropy_cases(rng)
    # a confidently wrong softmax: the gold class has the smallest logit by far
    target = rng.integers(0, 10, size=3).astype(np.int64)
    z = 0.5 * rng.standard_normal((3, 10))
    z[np.arange(3), target] = -rng.uniform(10.0, 50.0, size=3)
    cases.append(
        Case("confidently wrong (gold logit far below the rest)", {"logits": z, "target": target})
    )
    return cases


def _constant_loss_cases(rng):
    cases = []
    for _ in range(3):
        c, n = int(rng.integers(2, 11)), int(rng.integers(5, 60))
        cases.append(Case("random labels", {"target": _class_targets(rng, n, c), "num_classes": c}))
    c = int(rng.integers(2, 11))
    balanced = np.repeat(np.arange(c), int(rng.integers(1, 6))).astype(np.int64)
    cases += [
        Case("balanced classes", {"target": rng.permutation(balanced), "num_classes": c}),
        Case(
            "classes that never occur",
            {"target": rng.choice([1, 4], size=12).astype(np.int64), "num_classes": 7},
        ),
        Case("imbalanced (90% one class)", {"target": _imbalanced(rng), "num_classes": 3}),
        Case(
            "every label the same",
            {
                "target": np.full(
                    int(rng.integers(2, 12)), int(rng.integers(0, 4)), dtype=np.int64
                ),
                "num_classes": 4,
            },
        ),
        Case(
            "a batch of one",
            {"target": rng.integers(0, 2, size=1).astype(np.int64), "num_classes": 2},
        ),
    ]
    return cases


def _imbalanced(rng):
    """Labels of 3 classes, 90% of them one class (a random one), in a random order."""
    k = int(rng.integers(1, 4))
    major, second, third = rng.permutation(3)
    labels = [major] * (18 * k) + [second] * k + [third] * k
    return rng.permutation(np.array(labels, dtype=np.int64))


def _se_grad_of_ce(logits, target):
    return losses.cross_entropy_grad(logits, target)


def _distribution(logits, target):
    if target.is_floating_point():
        return target
    return torch.eye(logits.shape[-1], dtype=logits.dtype)[target]


def _se_grad_no_jacobian(logits, target):
    # 2 (p - g) / N: the chain rule stopped at the probabilities
    p = losses.softmax(logits)
    return 2 * (p - _distribution(logits, target)) / logits.shape[0]


def _se_grad_diagonal_only(logits, target):
    # only the diagonal p (1 - p) of the softmax's Jacobian
    p = losses.softmax(logits)
    return 2 * (p - _distribution(logits, target)) * p * (1 - p) / logits.shape[0]


def _constant_loss_uniform(target, num_classes):
    return float(np.log(num_classes))


def _constant_loss_log2(target, num_classes):
    return losses.best_constant_cross_entropy(target, num_classes) / float(np.log(2.0))


OVERFLOW = (
    "exp overflows for large logits (exp(1000) = inf in floating point): "
    "subtract the maximum logit before exponentiating"
)

register(
    Exercise(
        id="01.softmax",
        name="softmax",
        title="Stable softmax",
        points=2,
        reference=losses.softmax,
        cases=_softmax_cases,
        forbidden=SOFTMAX_FAMILY,
        mistakes=(
            Mistake(OVERFLOW, _naive_softmax),
            Mistake(
                "normalised along the wrong dimension: use the `dim` argument",
                _wrong_axis(losses.softmax),
            ),
        ),
    ),
    Exercise(
        id="01.log_softmax",
        name="log_softmax",
        title="Stable log-softmax",
        points=2,
        reference=losses.log_softmax,
        cases=_softmax_cases,
        forbidden=SOFTMAX_FAMILY,
        mistakes=(
            Mistake(
                "log(softmax(z)) underflows: softmax is 0 for very negative logits and "
                "log(0) = -inf; use log_softmax(z) = z - max - log(sum(exp(z - max)))",
                _log_of_softmax,
            ),
            Mistake(OVERFLOW, _naive_log_softmax),
            Mistake(
                "normalised along the wrong dimension: use the `dim` argument",
                _wrong_axis(losses.log_softmax),
            ),
        ),
    ),
    Exercise(
        id="01.cross_entropy",
        name="cross_entropy",
        title="Cross-entropy from logits (class-index and probability targets)",
        points=3,
        reference=losses.cross_entropy,
        cases=_cross_entropy_cases,
        forbidden=(*SOFTMAX_FAMILY, *LOSS_FAMILY),
        mistakes=(
            Mistake("you summed over the batch: the mean divides the sum by N", _ce_sum),
            Mistake(
                "log(softmax(...)) is not stable for large logits: compute log-softmax with the "
                "log-sum-exp trick",
                _ce_naive,
            ),
        ),
    ),
    Exercise(
        id="01.cross_entropy_grad",
        name="cross_entropy_grad",
        title="Gradient of the mean cross-entropy w.r.t. the logits",
        points=3,
        reference=losses.cross_entropy_grad,
        cases=_cross_entropy_cases,
        forbidden=(*SOFTMAX_FAMILY, *LOSS_FAMILY, "backward", "grad"),
        mistakes=(
            Mistake(
                "forgot the 1/N of the mean: divide (softmax(z) - g) by the batch size N",
                _ce_grad_no_mean,
            ),
            Mistake(
                "the sign is flipped: the gradient is softmax(z) - g, not g - softmax(z)",
                _ce_grad_flipped,
            ),
        ),
    ),
    Exercise(
        id="01.binary_cross_entropy_with_logits",
        name="binary_cross_entropy_with_logits",
        title="Binary cross-entropy from logits",
        points=2,
        reference=losses.binary_cross_entropy_with_logits,
        cases=_bce_cases,
        forbidden=(*LOSS_FAMILY, "logsigmoid", "softplus", "logaddexp"),
        mistakes=(
            Mistake(
                "log(sigmoid(z)) and log(1 - sigmoid(z)) are -inf for large |z|: use the "
                "stable form max(z, 0) - z*y + log(1 + exp(-|z|))",
                _bce_naive,
            ),
        ),
    ),
    Exercise(
        id="01.huber_loss",
        name="huber_loss",
        title="Huber loss",
        points=2,
        reference=losses.huber_loss,
        cases=_huber_cases,
        forbidden=LOSS_FAMILY,
        mistakes=(
            Mistake(
                "the quadratic branch is 0.5 * r**2 (and the linear one delta * (|r| - delta/2))",
                _huber_no_half,
            ),
            Mistake(
                "the branches are swapped: quadratic for |r| <= delta, linear beyond",
                _huber_swapped,
            ),
        ),
    ),
    Exercise(
        id="01.softmax_squared_error_grad",
        name="softmax_squared_error_grad",
        title="Gradient of squared error on a softmax w.r.t. the logits (derive it)",
        points=3,
        reference=losses.softmax_squared_error_grad,
        cases=_softmax_se_cases,
        forbidden=(*SOFTMAX_FAMILY, *LOSS_FAMILY, "backward", "grad", "jacobian"),
        mistakes=(
            Mistake(
                "that is the cross-entropy's gradient (p - g) / N; this loss is "
                "sum_c (p_c - g_c)^2, and its gradient goes through the softmax's Jacobian",
                _se_grad_of_ce,
            ),
            Mistake(
                "2 (p - g) / N is the gradient with respect to the probabilities p; the "
                "logits are one step further back: multiply by d p_c / d z_k",
                _se_grad_no_jacobian,
            ),
            Mistake(
                "you kept only the diagonal p_k (1 - p_k) of the softmax's Jacobian: "
                "d p_c / d z_k = p_c ([c == k] - p_k) is not zero for c != k",
                _se_grad_diagonal_only,
            ),
        ),
    ),
    Exercise(
        id="01.best_constant_cross_entropy",
        name="best_constant_cross_entropy",
        title="Predict the loss floor of a model that ignores its input",
        points=2,
        reference=losses.best_constant_cross_entropy,
        cases=_constant_loss_cases,
        rtol=1e-6,
        atol=1e-9,
        forbidden=(*SOFTMAX_FAMILY, *LOSS_FAMILY, "entropy"),
        mistakes=(
            Mistake(
                "log C is the loss of uniform predictions; the best constant prediction "
                "follows the label frequencies, which need not be uniform",
                _constant_loss_uniform,
            ),
            Mistake("use the natural logarithm (nats), as cross_entropy does", _constant_loss_log2),
        ),
    ),
)
