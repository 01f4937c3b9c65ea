r"""Label smoothing (lecture 07): smoothed targets, their loss and its gradient, the logit
gap where that loss is smallest, and calibration (reliability bins, expected calibration
error).

Label smoothing (Szegedy et al., 2016) trains against a mixture of the one-hot target and
the uniform distribution over the K classes,

    g = (1 - alpha) * onehot(y) + alpha / K

so the true class gets 1 - alpha + alpha / K and every other class alpha / K. This is the
convention of ``torch.nn.functional.cross_entropy(..., label_smoothing=alpha)`` and of
Keras; the tests compare the two.

Shapes: N examples, K classes. Logits are (N, K), or (K,) for one example; class
indices are int64 of shape (N,) (or ()). Bad input raises TypeError/ValueError naming
the argument.
"""

import math
from typing import NamedTuple

import torch

from course_utils import _validate, losses

__all__ = [
    "CalibrationBins",
    "calibration_bins",
    "expected_calibration_error",
    "logit_gap",
    "optimal_logit_gap",
    "smooth_labels",
    "smoothed_cross_entropy",
    "smoothed_cross_entropy_grad",
    "smoothed_loss_at_gap",
    "smoothed_loss_floor",
]


def smooth_labels(target: torch.Tensor, num_classes: int, alpha: float, *, dtype=None):
    """Smoothed one-hot targets: the one-hot vector mixed with the uniform distribution.

        g = (1 - alpha) * onehot(target) + alpha / K,    K = num_classes

    The true class gets 1 - alpha + alpha / K, every other class alpha / K; each row sums
    to 1. alpha = 0 gives the one-hot vectors, alpha = 1 the uniform distribution.

    target: int64 class indices in [0, K), any shape (...). alpha in [0, 1].
    dtype: floating dtype of the result (default: torch's default dtype, float32).
    Returns a tensor of shape (..., K) on the device of ``target``.
    """
    num_classes = _validate.integer(num_classes, "num_classes", low=1)
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    _check_class_indices(target, num_classes)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
    onehot = torch.nn.functional.one_hot(target, num_classes).to(dtype)
    return (1 - alpha) * onehot + alpha / num_classes


def smoothed_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, alpha: float, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy against the smoothed targets g = smooth_labels(target, K, alpha).

        loss_i = -sum_c g_ic * log softmax(z_i)_c
               = (1 - alpha) * (-log softmax(z_i)_y) + alpha * mean_c (-log softmax(z_i)_c)

    The second line (expand g) is how torch computes it:
    ``F.cross_entropy(logits, target, label_smoothing=alpha, reduction=reduction)`` gives
    the same numbers.

    logits: (N, K) or (K,); target: int64 class indices, (N,) or (). Returns the
    per-example losses for reduction="none", their mean for "mean", their sum for "sum".
    """
    _check_logits_and_target(logits, target)
    g = smooth_labels(target, logits.shape[-1], alpha, dtype=logits.dtype)
    return losses.cross_entropy(logits, g, reduction=reduction)


def smoothed_cross_entropy_grad(
    logits: torch.Tensor, target: torch.Tensor, alpha: float
) -> torch.Tensor:
    """Gradient of the mean smoothed cross-entropy with respect to the logits.

    With p = softmax(z) and g the smoothed target (which sums to 1),

        d loss_i / d z_i = p_i - g_i,    d mean_loss / d z = (p - g) / N

    logits: (N, K) or (K,) (then N = 1); target: int64 class indices, (N,) or ().
    Returns a tensor of the shape of ``logits``.
    """
    _check_logits_and_target(logits, target)
    g = smooth_labels(target, logits.shape[-1], alpha, dtype=logits.dtype)
    batch_size = logits.shape[0] if logits.dim() == 2 else 1
    return (losses.softmax(logits) - g) / batch_size


def logit_gap(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How far each example's true-class logit stands above the mean of the other logits.

        d_i = z_iy - (1 / (K - 1)) * sum_{c != y} z_ic = (K z_iy - sum_c z_ic) / (K - 1)

    At the minimum of the smoothed loss all the other logits are equal, so there d_i is
    the gap z_iy - z_ic to each of them (see ``optimal_logit_gap``).

    logits: (N, K) with K >= 2, or (K,); target: int64 class indices, (N,) or ().
    Returns a tensor of shape (N,) (or ()).
    """
    _check_logits_and_target(logits, target)
    num_classes = logits.shape[-1]
    if num_classes < 2:
        raise ValueError(f"logits must have at least 2 classes, got shape {tuple(logits.shape)}")
    true_logit = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return (num_classes * true_logit - logits.sum(dim=-1)) / (num_classes - 1)


def smoothed_loss_at_gap(gap: torch.Tensor, num_classes: int, alpha: float) -> torch.Tensor:
    """The smoothed cross-entropy of logits (d, 0, ..., 0) with true class 0, elementwise in d.

    p_y = e^d / (e^d + K - 1) and the smoothed target gives the true class
    g_y = 1 - alpha + alpha / K, so

        L(d) = log(e^d + K - 1) - g_y * d

    computed as logaddexp(d, log(K - 1)) - g_y * d, which does not overflow.
    dL/dd = p_y - g_y: with alpha = 0 it is negative for every d (the loss falls forever);
    with alpha > 0 it vanishes at ``optimal_logit_gap(K, alpha)``.

    gap: a floating-point tensor of gaps d, any shape; num_classes K >= 2; alpha in [0, 1].
    Returns a tensor of the shape and dtype of ``gap``.
    """
    _validate.tensor(gap, "gap", floating=True)
    num_classes = _validate.integer(num_classes, "num_classes", low=2)
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    if not torch.isfinite(gap).all():
        raise ValueError("gap must be finite, but it holds NaN or inf")
    true_target = 1 - alpha + alpha / num_classes
    log_others = torch.full_like(gap, math.log(num_classes - 1))
    return torch.logaddexp(gap, log_others) - true_target * gap


def optimal_logit_gap(num_classes: int, alpha: float) -> float:
    """The logit gap at which the smoothed cross-entropy is smallest.

    The loss is minimal where softmax(z) = g, i.e. where every logit ratio matches the
    target ratio: z_y - z_c = log(g_y / g_c) for every c != y, so

        d* = log((1 - alpha + alpha / K) / (alpha / K)) = log(1 + K (1 - alpha) / alpha)

    alpha = 0 (one-hot targets) has no minimum: d* = inf. alpha = 1 gives d* = 0.

    num_classes K >= 2; alpha in [0, 1]. Returns a Python float.
    """
    num_classes = _validate.integer(num_classes, "num_classes", low=2)
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    if alpha == 0:
        return math.inf
    return math.log1p(num_classes * (1 - alpha) / alpha)


def smoothed_loss_floor(num_classes: int, alpha: float) -> float:
    """The smallest value the smoothed cross-entropy of one example can take.

    At its minimum softmax(z) = g, and the cross-entropy of g with itself is its entropy:

        L* = H(g) = -g_y log g_y - (K - 1) (alpha / K) log(alpha / K),
        g_y = 1 - alpha + alpha / K

    with 0 log 0 = 0, so L* = 0 for alpha = 0, and log K for alpha = 1.

    num_classes K >= 1; alpha in [0, 1]. Returns a Python float.
    """
    num_classes = _validate.integer(num_classes, "num_classes", low=1)
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    true_target, other_target = 1 - alpha + alpha / num_classes, alpha / num_classes
    floor = 0.0 - true_target * math.log(true_target)  # 0.0 - 0.0: no -0.0 for alpha = 0
    if other_target > 0:
        floor -= (num_classes - 1) * other_target * math.log(other_target)
    return floor


class CalibrationBins(NamedTuple):
    """Examples grouped by confidence, as in a reliability diagram (``calibration_bins``)."""

    edges: torch.Tensor  # (M + 1,) float64: 0, 1/M, ..., 1
    count: torch.Tensor  # (M,) int64: examples whose confidence falls in the bin
    confidence: torch.Tensor  # (M,) float64: their mean confidence (NaN where count is 0)
    accuracy: torch.Tensor  # (M,) float64: the fraction of them classified right (NaN if empty)


def calibration_bins(
    probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15
) -> CalibrationBins:
    """Group the examples by confidence into M equal-width bins (Guo et al., 2017).

    An example's confidence is its largest predicted probability, c_i = max_k p_ik, and
    its prediction the class with it (ties go to the lowest index, as in torch.argmax).
    Bin m = 1, ..., M holds the examples with c_i in ((m - 1)/M, m/M]. For each bin,

        count_m = |B_m|,    conf(B_m) = mean_{i in B_m} c_i,
        acc(B_m) = mean_{i in B_m} [pred_i = y_i]

    A calibrated model has acc(B_m) = conf(B_m) in every bin.

    probs: (N, K), rows of probabilities (>= 0, summing to 1: pass softmax(logits));
    target: int64 class indices (N,); n_bins M >= 1. Statistics are in float64; a mean over
    an empty bin is NaN.
    """
    confidence, correct = _confidence_and_correct(probs, target)
    n_bins = _validate.integer(n_bins, "n_bins", low=1)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=probs.device)
    # bucketize (right=False) gives i with edges[i] < c <= edges[i + 1]: half-open on the left
    index = torch.bucketize(confidence, edges[1:-1])
    count = torch.bincount(index, minlength=n_bins)
    confidence_sum = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)
    correct_sum = torch.zeros_like(confidence_sum)
    confidence_sum.index_add_(0, index, confidence)
    correct_sum.index_add_(0, index, correct)
    return CalibrationBins(edges, count, confidence_sum / count, correct_sum / count)


def expected_calibration_error(
    probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15
) -> float:
    """Expected calibration error (Guo et al., 2017): the gap between accuracy and
    confidence, averaged over the M confidence bins of ``calibration_bins``, weighted by
    how many examples each holds:

        ECE = sum_m (|B_m| / N) * |acc(B_m) - conf(B_m)|

    Empty bins add nothing. ECE is 0 for a calibrated model and at most 1.

    probs: (N, K) probabilities; target: int64 class indices (N,); n_bins M >= 1.
    Returns a Python float.
    """
    bins = calibration_bins(probs, target, n_bins)
    filled = bins.count > 0
    weight = bins.count[filled].to(torch.float64) / len(target)
    gaps = (bins.accuracy[filled] - bins.confidence[filled]).abs()
    return (weight * gaps).sum().item()


# --- checks --------------------------------------------------------------------------------


def _check_class_indices(target, num_classes: int) -> None:
    _validate.tensor(target, "target")
    if target.dtype != torch.int64:
        raise TypeError(
            f"target must hold int64 class indices, got dtype {target.dtype} (use target.long())"
        )
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(
            f"target class indices must be in [0, {num_classes}), "
            f"got values from {target.min().item()} to {target.max().item()}"
        )


def _check_logits_and_target(logits, target) -> None:
    _validate.tensor(logits, "logits", floating=True)
    if logits.dim() not in (1, 2) or logits.numel() == 0:
        raise ValueError(f"logits must have shape (N, K) or (K,), got {tuple(logits.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits must be finite, but they hold NaN or inf")
    _check_class_indices(target, logits.shape[-1])
    if target.shape != logits.shape[:-1]:
        raise ValueError(
            f"target must have shape {tuple(logits.shape[:-1])} for logits of shape "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )


def _confidence_and_correct(probs, target):
    """Each example's confidence max_k p_ik and whether its argmax is right, in float64."""
    _validate.tensor(probs, "probs", floating=True)
    if probs.dim() != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"probs must have shape (N, K) with N, K >= 1, got {tuple(probs.shape)}")
    if not torch.isfinite(probs).all():
        raise ValueError("probs must be finite, but they hold NaN or inf")
    if probs.min() < 0:
        raise ValueError(f"probs must be >= 0 (probabilities), got a minimum of {probs.min()}")
    sums = probs.sum(dim=-1)
    if (sums - 1).abs().max() > 1e-3:
        raise ValueError(
            "probs rows must sum to 1 (pass softmax(logits), not the logits), got sums from "
            f"{sums.min().item():.4g} to {sums.max().item():.4g}"
        )
    _check_class_indices(target, probs.shape[1])
    if target.shape != probs.shape[:1]:
        raise ValueError(
            f"target must have shape ({probs.shape[0]},) for probs of shape "
            f"{tuple(probs.shape)}, got {tuple(target.shape)}"
        )
    probs = probs.to(torch.float64)
    correct = probs.argmax(dim=-1) == target  # argmax: ties go to the lowest index
    return probs.amax(dim=-1), correct.to(torch.float64)
