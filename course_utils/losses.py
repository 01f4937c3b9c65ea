"""Loss functions for classification and regression, written out from their formulas.

Where ``torch.nn.functional`` has a function of the same name, the one here gives the same
results (up to rounding) for the same arguments; the tests compare the two. These versions
use only basic tensor operations (max, exp, sum, log), so you can read off how each loss is
computed and why it does not overflow. The key identity is

    softmax(z)_c     = exp(z_c - m) / sum_k exp(z_k - m),          m = max_k z_k
    log_softmax(z)_c = (z_c - m) - log(sum_k exp(z_k - m))

Subtracting the maximum m changes nothing mathematically (it cancels), but it keeps every
exponent <= 0, so exp never overflows, and the largest term of the sum is exactly 1, so the
log never sees 0.

Shapes: N is the batch size and C the number of classes. Classification logits are (N, C),
or (C,) for a single example.

Inputs are checked up front: a wrong type, dtype, shape or value raises TypeError or
ValueError naming the argument, and NaN or infinite inputs are refused rather than passed on.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from course_utils import _validate

__all__ = [
    "accuracy",
    "best_constant_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "cross_entropy_grad",
    "huber_loss",
    "log_softmax",
    "mse_loss",
    "numerical_gradient",
    "softmax",
    "softmax_squared_error_grad",
]


def softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax along ``dim``: scores in, probabilities that sum to 1 out.

        softmax(z)_c = exp(z_c - m) / sum_k exp(z_k - m),    m = max_k z_k

    z: floating point, at least one dimension. Returns a tensor of the same shape.
    """
    _check_floating(z, "z", min_dim=1)
    dim = _validate.dim(dim, z)
    exp = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return exp / exp.sum(dim=dim, keepdim=True)


def log_softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Logarithm of the softmax along ``dim``, by the log-sum-exp trick.

        log_softmax(z)_c = (z_c - m) - log(sum_k exp(z_k - m)),    m = max_k z_k

    Taking log(softmax(z)) instead would give log(0) = -inf once a probability underflows.

    z: floating point, at least one dimension. Returns a tensor of the same shape.
    """
    _check_floating(z, "z", min_dim=1)
    dim = _validate.dim(dim, z)
    shifted = z - z.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy between a target distribution g and the softmax of the logits z.

    For each example,

        loss = -sum_c g_c * log_softmax(z)_c

    where ``target`` gives g in one of two ways:
      - class indices y: int64 of shape (N,) (or () for logits (C,)), values in [0, C);
        g is one-hot at y, so the loss is -log_softmax(z)_y;
      - class probabilities: floating point, the same shape as ``logits``; g = target.

    Label smoothing eps in [0, 1] mixes g with the uniform distribution over C classes:

        g = (1 - eps) * g + eps / C

    logits: (N, C) or (C,). Returns the per-example losses, shape (N,) or (), for
    reduction="none"; their mean over N for "mean"; their sum for "sum".
    """
    _check_logits(logits)
    eps = _validate.number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    _validate.reduction(reduction)
    g = _target_distribution(logits, target, eps)
    log_p = log_softmax(logits, dim=-1)
    # 0 * log(0) counts as 0, as in the definition of entropy: a class with no target weight
    # adds nothing, even if its log-probability underflowed to -inf.
    loss = -torch.where(g != 0, g * log_p, 0.0).sum(dim=-1)
    return _reduce(loss, reduction)


def cross_entropy_grad(
    logits: torch.Tensor, target: torch.Tensor, *, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Gradient of the mean cross-entropy with respect to the logits, without autograd.

    With p = softmax(z) and g the (smoothed) target distribution of an example (see
    ``cross_entropy``), d log_softmax(z)_c / d z_k = [c == k] - p_k, so

        d loss / d z_k = -sum_c g_c * ([c == k] - p_k) = p_k * sum_c g_c - g_k

    A one-hot or smoothed one-hot g sums to 1, which gives the familiar (p - g). The mean
    over the batch divides by N:

        d mean_loss / d z = (p * sum_c g_c - g) / N

    logits: (N, C) or (C,) (then N = 1); target as in ``cross_entropy``.
    Returns a tensor of the shape of ``logits``.
    """
    _check_logits(logits)
    eps = _validate.number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    g = _target_distribution(logits, target, eps)
    p = softmax(logits, dim=-1)
    batch_size = logits.shape[0] if logits.dim() == 2 else 1
    return (p * g.sum(dim=-1, keepdim=True) - g) / batch_size


def binary_cross_entropy_with_logits(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Binary cross-entropy of p = sigmoid(z) against targets y in [0, 1], computed stably.

    The textbook form -(y * log(p) + (1 - y) * log(1 - p)) hits log(0) once sigmoid(z)
    rounds to 0 or 1. Using log(p) = -log(1 + exp(-z)) and log(1 - p) = -z - log(1 + exp(-z)),
    it becomes (1 - y) * z + log(1 + exp(-z)), and then

        loss = max(z, 0) - z * y + log(1 + exp(-|z|))

    where exp only sees arguments <= 0 (log1p keeps log(1 + tiny) accurate). The code
    writes -|z| as z - 2 max(z, 0): the same number, but then autograd's derivative is
    sigmoid(z) - y everywhere, also at z = 0 where max and |.| both have a kink.

    logits, target: floating point, the same shape (any). Returns the elementwise losses
    for reduction="none", their mean for "mean", their sum for "sum".
    """
    _check_floating(logits, "logits")
    _check_floating(target, "target")
    _validate.same_shape(logits, target, "logits", "target")
    _validate.reduction(reduction)
    relu = logits.clamp(min=0)
    loss = relu - logits * target + torch.log1p(torch.exp(logits - 2 * relu))
    return _reduce(loss, reduction)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error, elementwise:

        loss = (pred - target)^2

    pred, target: floating point, the same shape (any). Returns the elementwise losses for
    reduction="none", their mean for "mean" (the mean squared error), their sum for "sum".
    """
    _check_regression(pred, target)
    _validate.reduction(reduction)
    loss = (pred - target) ** 2
    return _reduce(loss, reduction)


def huber_loss(
    pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Huber loss: squared error for small errors, absolute error for large ones.

    With d = pred - target, elementwise,

        loss = 0.5 * d^2                      if |d| < delta
               delta * (|d| - 0.5 * delta)    otherwise

    The two pieces meet with the same value and slope at |d| = delta, so the gradient is
    d near 0 and is capped at +-delta for outliers.

    pred, target: floating point, the same shape (any); delta > 0. Returns the elementwise
    losses for reduction="none", their mean for "mean", their sum for "sum".
    (torch.nn.functional.huber_loss takes reduction before delta; pass both by keyword.)
    """
    _check_regression(pred, target)
    delta = _validate.number(delta, "delta", low=0.0, low_open=True)
    _validate.reduction(reduction)
    abs_diff = (pred - target).abs()
    loss = torch.where(
        abs_diff < delta,
        0.5 * abs_diff**2,
        delta * (abs_diff - 0.5 * delta),
    )
    return _reduce(loss, reduction)


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of examples whose highest-scoring class is the target class.

        accuracy = (1 / N) * sum_i [argmax_c z_ic == y_i]

    logits: (N, C) or (C,). target: class indices y, int64 of shape (N,) (or ()), or class
    probabilities of the shape of ``logits``, for which y_i = argmax_c target_ic.
    Ties go to the lowest class index, as in torch.argmax. Returns a Python float in [0, 1].
    """
    _check_logits(logits)
    _check_target(logits, target)
    if target.is_floating_point():
        target = target.argmax(dim=-1)
    correct = logits.argmax(dim=-1) == target
    return correct.sum().item() / correct.numel()


def numerical_gradient(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Gradient of a scalar function f at x by central differences, in float64.

    For each element x_i, with e_i the unit vector along it,

        df/dx_i ~ (f(x + eps * e_i) - f(x - eps * e_i)) / (2 * eps)

    The error is O(eps^2) from the formula plus O(1e-16 / eps) from rounding, which is why
    this runs in float64. It costs 2 evaluations of f per element: use it to check a
    gradient on small inputs, not to train.

    f: takes a tensor shaped like x, returns a one-element tensor or a number.
    x: floating point, any shape; it is not modified (f sees a float64 copy).
    Returns a float64 tensor of the shape of x.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    _validate.tensor(x, "x", floating=True)
    eps = _validate.number(eps, "eps", low=0.0, low_open=True)
    x = x.detach().to(torch.float64, copy=True)
    grad = torch.zeros_like(x)
    for i in np.ndindex(*x.shape):
        original = x[i].item()
        x[i] = original + eps
        f_plus = _scalar_output(f(x))
        x[i] = original - eps
        f_minus = _scalar_output(f(x))
        x[i] = original
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def softmax_squared_error_grad(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient of the squared error between softmax(z) and the target, without autograd.

    Per example L = sum_c (p_c - g_c)^2 with p = softmax(z) and g the target distribution
    (class indices or probabilities, as in ``cross_entropy``). The softmax's Jacobian is
    d p_c / d z_k = p_c ([c == k] - p_k), so with d = 2 (p - g)

        d L / d z_k = sum_c d_c p_c ([c == k] - p_k) = p_k (d_k - sum_c p_c d_c)

    and the mean over the batch divides by N. Every term carries a factor p_k: where the
    softmax is confidently wrong (p_y near 0), the gold logit gets almost no gradient.

    logits: (N, C) or (C,) (then N = 1); target as in ``cross_entropy``.
    Returns a tensor of the shape of ``logits``.
    """
    _check_logits(logits)
    g = _target_distribution(logits, target, 0.0)
    p = softmax(logits, dim=-1)
    d = 2 * (p - g)
    batch_size = logits.shape[0] if logits.dim() == 2 else 1
    return p * (d - (p * d).sum(dim=-1, keepdim=True)) / batch_size


def best_constant_cross_entropy(target: torch.Tensor, num_classes: int) -> float:
    """The lowest mean cross-entropy of a model that ignores its input (the same logits for all).

    With constant logits b and q = softmax(b), the mean loss over labels y_1..y_N is
    -sum_c f_c log q_c, where f_c is the fraction of labels equal to c. It equals
    H(f) + KL(f || q) >= H(f), with equality at q = f, so the minimum is the entropy of
    the label frequencies,

        H(f) = -sum_c f_c log f_c        (0 log 0 = 0: absent classes add nothing),

    log C for balanced classes and 0 when every label is the same. A classifier whose
    loss is not below H(f) has learned nothing from its inputs.

    target: class indices, int64 of shape (N,), values in [0, num_classes).
    Returns H(f) as a Python float.
    """
    num_classes = _validate.integer(num_classes, "num_classes", low=1)
    _validate.tensor(target, "target")
    if target.dtype != torch.int64 or target.dim() != 1 or target.numel() == 0:
        raise ValueError(
            f"target must be a non-empty 1-D int64 tensor of class indices, got dtype "
            f"{target.dtype} and shape {tuple(target.shape)}"
        )
    if target.min() < 0 or target.max() >= num_classes:
        raise ValueError(f"target class indices must be in [0, {num_classes})")
    f = torch.bincount(target, minlength=num_classes).double() / target.numel()
    f = f[f > 0]
    return -(f * f.log()).sum().item()


# --- helpers -------------------------------------------------------------------------------


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a loss reduction: 'none' keeps the per-element losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _target_distribution(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float
) -> torch.Tensor:
    """The target as a distribution g over the classes, shaped like logits, then smoothed."""
    _check_target(logits, target)
    num_classes = logits.shape[-1]
    if target.is_floating_point():
        g = target
    else:
        g = F.one_hot(target, num_classes).to(logits.dtype)
    return (1 - label_smoothing) * g + label_smoothing / num_classes


def _check_floating(x, name: str, *, min_dim: int = 0) -> None:
    """Check that x is a non-empty floating-point tensor holding no NaN or inf."""
    _validate.tensor(x, name, floating=True, min_dim=min_dim)
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, but it holds NaN or inf")


def _check_logits(logits) -> None:
    """Check classification logits: finite floating point, shape (N, C) or (C,)."""
    _check_floating(logits, "logits")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must have shape (N, C) or (C,), got {tuple(logits.shape)}")


def _check_target(logits: torch.Tensor, target) -> None:
    """Check a classification target: int64 class indices or class probabilities."""
    _validate.tensor(target, "target")
    num_classes = logits.shape[-1]
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"target of class probabilities must have the shape of logits "
                f"{tuple(logits.shape)}, got {tuple(target.shape)}"
            )
        _check_floating(target, "target")
        return
    if target.dtype != torch.int64:
        raise TypeError(
            f"target must be int64 class indices or floating-point class probabilities, "
            f"got dtype {target.dtype} (use target.long() for class indices)"
        )
    if target.shape != logits.shape[:-1]:
        raise ValueError(
            f"target of class indices must have shape {tuple(logits.shape[:-1])} "
            f"for logits of shape {tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if target.min() < 0 or target.max() >= num_classes:
        raise ValueError(
            f"target class indices must be in [0, {num_classes}), "
            f"got values from {target.min().item()} to {target.max().item()}"
        )


def _check_regression(pred, target) -> None:
    """Check a regression pair: finite floating-point tensors of the same shape."""
    _check_floating(pred, "pred")
    _check_floating(target, "target")
    _validate.same_shape(pred, target, "pred", "target")


def _scalar_output(value) -> float:
    """The output of f in numerical_gradient as a float: a one-element tensor or a number."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"f must return a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"f must return a one-element tensor or a number, got {type(value).__name__}"
        )
    if not math.isfinite(value):
        raise ValueError(f"f must return a finite value, got {value}")
    return float(value)
