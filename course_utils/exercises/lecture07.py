"""Lecture 07 exercises: smoothed targets, their loss and gradient, the logit gap where the
loss is smallest (derived), the loss floor (a prediction), expected calibration error.

Every reference is a public function of course_utils.label_smoothing with the same
signature as the student's function.
"""

import math

import numpy as np
import torch

from course_utils import label_smoothing as ls
from course_utils import losses
from course_utils.exercises import Case, Exercise, Mistake, register

# What would make the cross-entropy exercises trivial: torch's own losses (which take
# label_smoothing=) and autograd.
LOSS_FAMILY = (
    "cross_entropy",
    "nll_loss",
    "kl_div",
    "CrossEntropyLoss",
    "NLLLoss",
    "KLDivLoss",
)


# --- case generators ------------------------------------------------------------------


def _alpha(rng) -> float:
    return float(rng.choice([0.05, 0.1, 0.2, 0.3, 0.5]))


def _indices(rng, n, k):
    return rng.integers(0, k, size=n).astype(np.int64)


def _smooth_labels_cases(rng):
    cases = []
    for _ in range(3):
        n, k = int(rng.integers(1, 9)), int(rng.integers(2, 11))
        args = {"target": _indices(rng, n, k), "num_classes": k, "alpha": _alpha(rng)}
        cases.append(Case("random targets", args))
    k = int(rng.integers(3, 8))
    cases += [
        Case(
            "alpha = 0 (one-hot) and alpha = 1 (uniform)",
            {"target": _indices(rng, 4, k), "num_classes": k, "alpha": 0.0},
        ),
        Case(
            "alpha = 0 (one-hot) and alpha = 1 (uniform)",
            {"target": _indices(rng, 4, k), "num_classes": k, "alpha": 1.0},
        ),
        Case(
            "many classes (K = 1000)",
            {"target": _indices(rng, 3, 1000), "num_classes": 1000, "alpha": 0.1},
        ),
        Case(
            "a class that no example has",
            {"target": np.array([0, 0, 1], dtype=np.int64), "num_classes": 5, "alpha": 0.2},
        ),
        Case(
            "a batch of one",
            {"target": np.array([2], dtype=np.int64), "num_classes": 3, "alpha": _alpha(rng)},
        ),
    ]
    return cases


def _logits(rng, shape, dtype=np.float64, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _smoothed_ce_cases(rng, reductions=True):
    def case(group, n, k, alpha, dtype=np.float64, logits=None, **extra):
        logits = _logits(rng, (n, k), dtype) if logits is None else logits
        args = {"logits": logits, "target": _indices(rng, n, k), "alpha": alpha}
        return Case(group, args | extra)

    def sizes():
        return int(rng.integers(2, 9)), int(rng.integers(2, 11))

    cases = [case("random logits, float64", *sizes(), _alpha(rng)) for _ in range(3)]
    cases += [case("alpha = 0 and alpha = 1", *sizes(), a) for a in (0.0, 1.0)]
    cases += [case("float32", *sizes(), _alpha(rng), np.float32)]
    big = rng.choice([-1000.0, 1000.0], size=(3, 4))
    cases += [
        case("extreme logits (±1000)", 3, 4, 0.1, logits=big),
        case("a batch of one", 1, 5, _alpha(rng)),
    ]
    if reductions:
        cases += [
            case("reduction 'none' and 'sum'", *sizes(), _alpha(rng), reduction=r)
            for r in ("none", "sum")
        ]
    return cases


def _gap_cases(rng):
    cases = []
    for _ in range(4):
        k = int(rng.choice([2, 3, 10, 100]))
        cases.append(Case("random K and alpha", {"num_classes": k, "alpha": _alpha(rng)}))
    cases += [
        Case("tiny and large alpha", {"num_classes": 10, "alpha": 1e-4}),
        Case("tiny and large alpha", {"num_classes": 5, "alpha": 0.9}),
        Case("alpha = 1: uniform targets", {"num_classes": int(rng.integers(2, 20)), "alpha": 1.0}),
        Case("K = 1000 (ImageNet)", {"num_classes": 1000, "alpha": 0.1}),
    ]
    return cases


def _floor_cases(rng):
    # the gap is infinite for alpha = 0 (no minimum), the floor is 0
    alpha_zero = Case(
        "alpha = 0: one-hot targets", {"num_classes": int(rng.integers(2, 20)), "alpha": 0.0}
    )
    return [*_gap_cases(rng), alpha_zero]


def _probs(rng, n, k, dtype=np.float64, scale=None):
    """Softmax of random logits; a random scale spreads the confidences over (1/K, 1]."""
    scale = float(rng.uniform(0.5, 6.0)) if scale is None else scale
    z = scale * rng.standard_normal((n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def _ece_cases(rng):
    def case(group, probs, target, **extra):
        return Case(group, {"probs": probs, "target": target} | extra)

    cases = []
    for _ in range(3):
        n, k = int(rng.integers(20, 300)), int(rng.integers(2, 11))
        cases.append(case("random probabilities", _probs(rng, n, k), _indices(rng, n, k)))
    n, k = 200, 5
    probs = _probs(rng, n, k)
    right = probs.argmax(axis=1).astype(np.int64)  # every prediction right
    cases += [
        case("n_bins argument", probs, _indices(rng, n, k), n_bins=int(rng.choice([1, 5, 10]))),
        case("all predictions right", probs, right),
        case("float32", _probs(rng, 100, 4, np.float32), _indices(rng, 100, 4)),
    ]
    # Confidences exactly on bin edges (0.25, 0.5 and 0.75 with 4 bins), and a tie for
    # the largest probability, which goes to the lowest index as in torch.argmax.
    edges = np.array(
        [
            [0.5, 0.25, 0.125, 0.125],  # confidence 0.5
            [0.125, 0.75, 0.0625, 0.0625],  # 0.75
            [0.25, 0.25, 0.25, 0.25],  # 0.25, a four-way tie: predicted class 0
            [0.1, 0.3, 0.55, 0.05],  # 0.55
            [0.45, 0.05, 0.25, 0.25],  # 0.45
            [0.0, 0.0, 1.0, 0.0],  # 1.0
        ]
    )
    cases += [
        case("confidences on bin edges, ties", edges, np.array([0, 1, 0, 3, 0, 2]), n_bins=4),
        case("a batch of one", _probs(rng, 1, 3), _indices(rng, 1, 3)),
    ]
    return cases


# --- known mistakes -------------------------------------------------------------------


def _onehot(target, k, dtype=torch.float32):
    return torch.nn.functional.one_hot(target, k).to(dtype)


def _labels_gold_one_minus_alpha(target, num_classes, alpha):
    return (1 - alpha) * _onehot(target, num_classes) + alpha / num_classes * (
        1 - _onehot(target, num_classes)
    )


def _labels_spread_over_others(target, num_classes, alpha):
    onehot = _onehot(target, num_classes)
    return (1 - alpha) * onehot + alpha / max(num_classes - 1, 1) * (1 - onehot)


def _labels_no_one_minus_alpha(target, num_classes, alpha):
    return _onehot(target, num_classes) + alpha / num_classes


def _ce_with(labels):
    def loss(logits, target, alpha, reduction="mean"):
        g = labels(target, logits.shape[-1], alpha).to(logits.dtype)
        return losses.cross_entropy(logits, g, reduction=reduction)

    return loss


def _ce_naive_log(logits, target, alpha, reduction="mean"):
    g = ls.smooth_labels(target, logits.shape[-1], alpha, dtype=logits.dtype)
    e = torch.exp(logits)
    loss = -(g * torch.log(e / e.sum(dim=-1, keepdim=True))).sum(dim=-1)
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def _grad_no_mean(logits, target, alpha):
    return ls.smoothed_cross_entropy_grad(logits, target, alpha) * logits.shape[0]


def _grad_flipped(logits, target, alpha):
    return -ls.smoothed_cross_entropy_grad(logits, target, alpha)


def _grad_not_smoothed(logits, target, alpha):
    return ls.smoothed_cross_entropy_grad(logits, target, 0.0)


def _log(x):
    return math.log(x) if x > 0 else -math.inf


def _gap_gold_one_minus_alpha(num_classes, alpha):
    return _log((1 - alpha) / (alpha / num_classes))


def _gap_spread_over_others(num_classes, alpha):
    return _log((1 - alpha) * (num_classes - 1) / alpha)


def _gap_log_target(num_classes, alpha):
    return math.log(1 - alpha + alpha / num_classes)


def _floor_zero(num_classes, alpha):
    return 0.0


def _floor_true_class_only(num_classes, alpha):
    return -math.log(1 - alpha + alpha / num_classes)


def _floor_one_other_class(num_classes, alpha):
    g_y, g_c = 1 - alpha + alpha / num_classes, alpha / num_classes
    return -g_y * math.log(g_y) - (g_c * math.log(g_c) if g_c > 0 else 0.0)


def _ece_unweighted(probs, target, n_bins=15):
    bins = ls.calibration_bins(probs, target, n_bins)
    filled = bins.count > 0
    return (bins.accuracy[filled] - bins.confidence[filled]).abs().mean().item()


def _ece_signed(probs, target, n_bins=15):
    bins = ls.calibration_bins(probs, target, n_bins)
    filled = bins.count > 0
    weight = bins.count[filled].double() / len(target)
    return (weight * (bins.accuracy[filled] - bins.confidence[filled])).sum().abs().item()


def _ece_by_loop(confidence, correct, n_bins, left_closed=False):
    """ECE from per-example confidences and correctness, bin by bin."""
    scaled = confidence * n_bins
    index = scaled.floor() if left_closed else scaled.ceil() - 1  # [lo, hi) or (lo, hi]
    index = index.long().clamp(0, n_bins - 1)
    total = 0.0
    for m in range(n_bins):
        in_bin = index == m
        if in_bin.any():
            gap = correct[in_bin].mean() - confidence[in_bin].mean()
            total += in_bin.double().mean().item() * abs(gap.item())
    return total


def _ece_left_closed(probs, target, n_bins=15):
    confidence, prediction = probs.double().max(dim=-1)
    return _ece_by_loop(confidence, (prediction == target).double(), n_bins, left_closed=True)


def _ece_true_class_probability(probs, target, n_bins=15):
    p_true = probs.double().gather(1, target[:, None]).squeeze(1)
    correct = (probs.argmax(dim=-1) == target).double()
    return _ece_by_loop(p_true, correct, n_bins)


CONVENTION = (
    "every class gets alpha / K, the true class included: its target is 1 - alpha + alpha / K "
    "(the convention of torch's label_smoothing), not 1 - alpha"
)
OTHERS = (
    "that spreads alpha over the K - 1 wrong classes; here the uniform distribution over all K "
    "classes is mixed in: every class gets alpha / K, the true class 1 - alpha + alpha / K"
)

register(
    Exercise(
        id="07.smooth_labels",
        name="smooth_labels",
        title="Smoothed one-hot targets",
        points=1,
        reference=ls.smooth_labels,
        cases=_smooth_labels_cases,
        mistakes=(
            Mistake(CONVENTION, _labels_gold_one_minus_alpha),
            Mistake(OTHERS, _labels_spread_over_others),
            Mistake(
                "the one-hot part is scaled by (1 - alpha): each row must still sum to 1",
                _labels_no_one_minus_alpha,
            ),
        ),
    ),
    Exercise(
        id="07.smoothed_cross_entropy",
        name="smoothed_cross_entropy",
        title="Cross-entropy against smoothed targets",
        points=2,
        reference=ls.smoothed_cross_entropy,
        cases=_smoothed_ce_cases,
        forbidden=LOSS_FAMILY,
        mistakes=(
            Mistake(CONVENTION, _ce_with(_labels_gold_one_minus_alpha)),
            Mistake(OTHERS, _ce_with(_labels_spread_over_others)),
            Mistake(
                "log(softmax(z)) is -inf where softmax underflows to 0, and with smoothing "
                "every class has weight alpha / K > 0: use a stable log-softmax",
                _ce_naive_log,
            ),
        ),
    ),
    Exercise(
        id="07.smoothed_cross_entropy_grad",
        name="smoothed_cross_entropy_grad",
        title="Gradient of the smoothed cross-entropy",
        points=2,
        reference=ls.smoothed_cross_entropy_grad,
        cases=lambda rng: _smoothed_ce_cases(rng, reductions=False),
        forbidden=(*LOSS_FAMILY, "backward", "grad", "autograd"),
        mistakes=(
            Mistake("forgot the 1/N of the mean: divide by the batch size N", _grad_no_mean),
            Mistake("the sign is flipped: the gradient is softmax(z) - g", _grad_flipped),
            Mistake(
                "that is the gradient for one-hot targets: subtract the smoothed target g",
                _grad_not_smoothed,
            ),
        ),
    ),
    Exercise(
        id="07.optimal_logit_gap",
        name="optimal_logit_gap",
        title="The logit gap where the smoothed loss is smallest (derive it)",
        points=3,
        reference=ls.optimal_logit_gap,
        cases=_gap_cases,
        mistakes=(
            Mistake(
                "the true class's target is 1 - alpha + alpha / K, not 1 - alpha (every class "
                "gets alpha / K)",
                _gap_gold_one_minus_alpha,
            ),
            Mistake(OTHERS, _gap_spread_over_others),
            Mistake(
                "log g_y is not a gap: at the minimum softmax(z) = g, so compare the true "
                "class's target with another class's, log(g_y / g_c)",
                _gap_log_target,
            ),
        ),
    ),
    Exercise(
        id="07.smoothed_loss_floor",
        name="smoothed_loss_floor",
        title="Predict the lowest training loss with smoothed targets",
        points=2,
        reference=ls.smoothed_loss_floor,
        cases=_floor_cases,
        mistakes=(
            Mistake(
                "with smoothing the loss cannot reach 0: the target g is not one-hot, and "
                "-sum g log p is smallest at p = g, where it equals the entropy of g",
                _floor_zero,
            ),
            Mistake(
                "-log g_y counts only the true class, with weight 1; the loss weighs every "
                "class c by g_c: sum over all K classes of -g_c log p_c at p = g",
                _floor_true_class_only,
            ),
            Mistake(
                "there are K - 1 other classes, each with target alpha / K",
                _floor_one_other_class,
            ),
        ),
    ),
    Exercise(
        id="07.expected_calibration_error",
        name="expected_calibration_error",
        title="Expected calibration error",
        points=3,
        reference=ls.expected_calibration_error,
        cases=_ece_cases,
        rtol=1e-5,
        atol=1e-7,
        mistakes=(
            Mistake(
                "each bin's |accuracy - confidence| is weighted by the fraction of examples "
                "in it, |B_m| / N, not averaged over the bins",
                _ece_unweighted,
            ),
            Mistake(
                "without the absolute value per bin, over- and underconfident bins cancel: "
                "take |acc(B_m) - conf(B_m)| in each bin, then the weighted sum",
                _ece_signed,
            ),
            Mistake(
                "bin m holds the confidences in ((m - 1)/M, m/M]: a confidence of exactly "
                "m/M belongs to bin m, the lower one",
                _ece_left_closed,
            ),
            Mistake(
                "the confidence is the largest probability (that of the predicted class), "
                "not the probability of the true class",
                _ece_true_class_probability,
            ),
        ),
    ),
)
