r"""Gradient clipping for lecture 08, the same as ``torch.nn.utils`` where torch has it.

In place, on the ``.grad`` of parameters (parameters whose ``.grad`` is None are skipped):

* ``clip_grad_value_``: every entry clamped to [-c, c] (Keras ``clipvalue``).
* ``clip_grad_norm_``: all gradients scaled by one factor so that their global norm, the
  norm of all entries of all gradients together, is at most c; returns that norm before
  clipping (torch's ``clip_grad_norm_``, Keras ``global_clipnorm``).
* ``clip_grad_norm_per_tensor_``: each gradient tensor scaled by its own factor so that its
  own norm is at most c (Keras ``clipnorm``).

On plain tensors (what the notebook's exercises compute; each returns new tensors):

* ``get_total_norm``: the global norm of a list of tensors (torch's ``get_total_norm``).
* ``total_norm_from_tensor_norms``: the same, from the norms of the tensors alone.
* ``clip_by_value``, ``clip_by_global_norm``, ``clip_by_tensor_norm``: the three clippings.
* ``nonfinite_grads``: which tensors hold a NaN or an infinity.
* ``clipped_norm_with_scaler``: the norm of the gradient an optimizer applies when clipping
  is combined with mixed-precision loss scaling, before or after unscaling.

Norm clipping uses torch's factor

    g <- g * min(1, c / (||g|| + 1e-6)),

which is 1 (no change) when ||g|| <= c - 1e-6 and leaves a norm just below c otherwise.
The 1e-6 keeps the division finite when every gradient is 0.
"""

import math
import numbers

import torch

from course_utils import _validate

__all__ = [
    "EPS",
    "clip_by_global_norm",
    "clip_by_tensor_norm",
    "clip_by_value",
    "clip_grad_norm_",
    "clip_grad_norm_per_tensor_",
    "clip_grad_value_",
    "clipped_norm_with_scaler",
    "get_total_norm",
    "nonfinite_grads",
    "total_norm_from_tensor_norms",
]

EPS = 1e-6  # added to the norm in the clipping factor, as torch.nn.utils does


# --- argument checks ------------------------------------------------------------------


def _threshold(x, name: str) -> float:
    """A clipping threshold: a real number >= 0; inf is allowed (it turns clipping off)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    x = float(x)
    if math.isnan(x) or x < 0:
        raise ValueError(f"{name} must be >= 0 (inf turns clipping off), got {x}")
    return x


def _norm_type(p) -> float:
    """The order p of the norm: any real number or +-inf (torch also accepts the string 'inf')."""
    if isinstance(p, str) and p.strip().lower() in ("inf", "+inf", "-inf"):
        return float(p)
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"norm_type must be a number or 'inf', got {type(p).__name__} {p!r}")
    if math.isnan(p):
        raise ValueError("norm_type must be a number or +-inf, got nan")
    return float(p)


def _tensors(tensors, name: str) -> list[torch.Tensor]:
    """A tensor or an iterable of floating-point tensors, as a list."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    elif isinstance(tensors, str | bytes) or not hasattr(tensors, "__iter__"):
        raise TypeError(
            f"{name} must be a tensor or an iterable of tensors, got {type(tensors).__name__}"
        )
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}[{i}] must be a floating-point tensor, got dtype {t.dtype}")
    return tensors


def _grads(params) -> list[torch.Tensor]:
    """The gradients of ``params`` (a tensor or an iterable of tensors) that exist."""
    return [p.grad for p in _tensors(params, "params") if p.grad is not None]


def _clip_factor(total_norm: torch.Tensor, max_norm: float) -> torch.Tensor:
    """min(1, max_norm / (total_norm + 1e-6)), as a tensor (NaN if total_norm is NaN)."""
    return torch.clamp(max_norm / (total_norm + EPS), max=1.0)


# --- norms ----------------------------------------------------------------------------


def total_norm_from_tensor_norms(norms: torch.Tensor, norm_type=2.0) -> torch.Tensor:
    r"""The p-norm of several tensors taken together, from their individual p-norms.

        || (g_1, ..., g_k) ||_p = ( sum_i sum_j |g_ij|^p )^(1/p) = ( sum_i ||g_i||_p^p )^(1/p)
                                = || (||g_1||_p, ..., ||g_k||_p) ||_p,
        || (g_1, ..., g_k) ||_inf = max_i ||g_i||_inf

    So the global norm is the norm of the vector of norms, for every p != 0 (for p = 0, the
    count of non-zero entries, torch's formula counts the tensors that have any instead).
    norms: (k,) floating point, each >= 0 (or NaN/inf). Returns a 0-d tensor.
    """
    _validate.tensor(norms, "norms", floating=True)
    if norms.dim() != 1:
        raise ValueError(f"norms must have shape (k,), got {tuple(norms.shape)}")
    if (norms < 0).any():
        raise ValueError("norms must be >= 0: a norm is never negative")
    return torch.linalg.vector_norm(norms, _norm_type(norm_type))


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite: bool = False) -> torch.Tensor:
    r"""The norm of all entries of ``tensors`` together, as ``torch.nn.utils.get_total_norm``.

        total = || (||t_1||_p, ..., ||t_k||_p) ||_p      (``total_norm_from_tensor_norms``)

    tensors: a tensor or an iterable of floating-point tensors of any shapes. Returns a 0-d
    tensor on the first tensor's device, of the tensors' (promoted) dtype; 0.0 (float32) for
    no tensors. A NaN anywhere makes it NaN; an infinite entry, or (for p = 2) a float32
    square sum beyond 3.4e38 (entries around 1e19), makes it inf. error_if_nonfinite: raise a
    RuntimeError (as torch does) instead of returning a NaN or infinite norm.
    """
    tensors = _tensors(tensors, "tensors")
    p = _norm_type(norm_type)
    if not isinstance(error_if_nonfinite, bool):
        raise TypeError(f"error_if_nonfinite must be a bool, got {type(error_if_nonfinite)}")
    if not tensors:
        return torch.tensor(0.0)
    with torch.no_grad():
        device = tensors[0].device
        norms = torch.stack([torch.linalg.vector_norm(t, p).to(device) for t in tensors])
        total = total_norm_from_tensor_norms(norms, p)
    if error_if_nonfinite and not torch.isfinite(total):
        bad = [i for i, t in enumerate(tensors) if not torch.isfinite(t).all()]
        where = f"tensors {bad} hold NaN or inf" if bad else "every entry is finite: it overflowed"
        raise RuntimeError(
            f"the total norm of order {p} of the gradients is {total.item()} ({where}), so it "
            "cannot be clipped. Set error_if_nonfinite=False to scale the gradients by it anyway."
        )
    return total


# --- clipping in place, on parameters ---------------------------------------------------


def clip_grad_value_(params, clip_value) -> None:
    r"""Clamp every gradient entry to [-clip_value, clip_value], in place.

        g_ij <- max(-c, min(c, g_ij))

    Each entry is clipped alone, so the direction of the gradient changes whenever some but
    not all entries are clipped. NaN stays NaN; +-inf becomes +-c. Same as
    ``torch.nn.utils.clip_grad_value_``. params: a tensor or an iterable of tensors; those
    without a ``.grad`` are skipped. clip_value: >= 0 (inf leaves the gradients alone).
    """
    clip_value = _threshold(clip_value, "clip_value")
    with torch.no_grad():
        for g in _grads(params):
            g.clamp_(min=-clip_value, max=clip_value)


def clip_grad_norm_(
    params, max_norm, norm_type=2.0, error_if_nonfinite: bool = False
) -> torch.Tensor:
    r"""Scale all gradients by one factor so that their global norm is at most max_norm.

        total = || (g_1, ..., g_k) ||_p                        (``get_total_norm``)
        g_i  <- g_i * min(1, max_norm / (total + 1e-6))        for every i

    One factor for all parameters keeps the direction of the whole gradient. Returns
    ``total``, the norm before clipping (worth logging: it shows when gradients explode).
    Same as ``torch.nn.utils.clip_grad_norm_``, also for bad gradients: a NaN anywhere makes
    the total and so every gradient NaN; an infinite total (and no NaN) sets the finite
    entries to 0 and the infinite ones to NaN. error_if_nonfinite: raise a RuntimeError
    instead (the gradients are then left unchanged). params: a tensor or an iterable of
    tensors; those without a ``.grad`` are skipped. max_norm: >= 0 (inf only measures).
    """
    max_norm = _threshold(max_norm, "max_norm")
    grads = _grads(params)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if grads:
        factor = _clip_factor(total, max_norm)
        with torch.no_grad():
            for g in grads:
                g.mul_(factor.to(g.device))
    return total


def clip_grad_norm_per_tensor_(params, max_norm, norm_type=2.0) -> torch.Tensor:
    r"""Scale each gradient tensor by its own factor so that its own norm is at most max_norm.

        g_i <- g_i * min(1, max_norm / (||g_i||_p + 1e-6))      for every i

    The same as calling ``torch.nn.utils.clip_grad_norm_([p], max_norm)`` for each
    parameter p alone. Each tensor keeps its direction, but the whole gradient does not when
    some tensors are scaled more than others. Returns the norms before clipping, shape (k,)
    for the k parameters that have a gradient. A NaN or inf in one tensor affects that
    tensor only. params: a tensor or an iterable of tensors; max_norm: >= 0.
    """
    max_norm = _threshold(max_norm, "max_norm")
    p = _norm_type(norm_type)
    grads = _grads(params)
    norms = []
    with torch.no_grad():
        for g in grads:
            norm = torch.linalg.vector_norm(g, p)
            g.mul_(_clip_factor(norm, max_norm))
            norms.append(norm)
    return torch.stack(norms) if norms else torch.zeros(0)


# --- the same on plain tensors (functional) ---------------------------------------------


def clip_by_value(grads, clip_value) -> tuple[torch.Tensor, ...]:
    r"""``clip_grad_value_`` on a tuple of gradient tensors: returns the clipped copies.

    g_ij <- max(-c, min(c, g_ij))
    """
    grads = _tensors(grads, "grads")
    clip_value = _threshold(clip_value, "clip_value")
    return tuple(g.clamp(min=-clip_value, max=clip_value) for g in grads)


def clip_by_global_norm(grads, max_norm, norm_type=2.0) -> tuple[torch.Tensor, ...]:
    r"""``clip_grad_norm_`` on a tuple of k gradient tensors, without changing them.

        total = || (g_1, ..., g_k) ||_p,    g_i <- g_i * min(1, max_norm / (total + 1e-6))

    Returns k + 1 tensors: the k clipped gradients, then ``total`` (before clipping).
    """
    grads = _tensors(grads, "grads")
    max_norm = _threshold(max_norm, "max_norm")
    total = get_total_norm(grads, norm_type)
    factor = _clip_factor(total, max_norm)
    return (*(g * factor for g in grads), total)


def clip_by_tensor_norm(grads, max_norm, norm_type=2.0) -> tuple[torch.Tensor, ...]:
    r"""``clip_grad_norm_per_tensor_`` on a tuple of gradient tensors: the clipped copies.

    g_i <- g_i * min(1, max_norm / (||g_i||_p + 1e-6))
    """
    grads = _tensors(grads, "grads")
    max_norm = _threshold(max_norm, "max_norm")
    p = _norm_type(norm_type)
    return tuple(g * _clip_factor(torch.linalg.vector_norm(g, p), max_norm) for g in grads)


def nonfinite_grads(grads) -> torch.Tensor:
    r"""Which gradient tensors hold a NaN, +inf or -inf: a bool tensor of shape (k,).

        bad_i = not all_j isfinite(g_ij)

    Tested entry by entry: a norm or a sum of finite float32 entries can overflow to inf
    (e.g. two entries of 3e38), so a non-finite norm does not prove a non-finite gradient.
    An empty tensor is finite.
    """
    grads = _tensors(grads, "grads")
    return torch.tensor([not torch.isfinite(g).all().item() for g in grads], dtype=torch.bool)


def clipped_norm_with_scaler(grad_norm, max_norm, scale, unscale_first: bool) -> float:
    r"""The norm of the gradient the optimizer applies under loss scaling and norm clipping.

    Mixed-precision training multiplies the loss by a scale S (``torch.amp.GradScaler``),
    so backward() leaves S g in ``.grad``, and the optimizer step divides by S again. With
    n = ||g|| the true gradient's norm and c = max_norm:

        unscale first (``scaler.unscale_``, then clip):  n * min(1, c / (n + 1e-6))
        clip the scaled gradient, unscale in the step:    n * min(1, c / (S n + 1e-6))

    The second clips at an effective threshold of c / S (65536 times too small at torch's
    initial scale 2^16). grad_norm, max_norm >= 0; scale > 0. Returns a float.
    """
    n = _validate.number(grad_norm, "grad_norm", low=0.0)
    c = _threshold(max_norm, "max_norm")
    s = _validate.number(scale, "scale", low=0.0, low_open=True)
    if not isinstance(unscale_first, bool):
        raise TypeError(f"unscale_first must be a bool, got {type(unscale_first).__name__}")
    in_grad = n if unscale_first else s * n  # the norm of .grad when clip_grad_norm_ runs
    return n * min(1.0, c / (in_grad + EPS))
