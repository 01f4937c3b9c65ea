"""Lecture 04 exercises: batch normalization forward and backward, running statistics,
folding into a linear layer, layer normalization, and a prediction of how noisy the running
mean is.

All are deterministic; the references are course_utils.batchnorm's functions, which
tests/test_batchnorm.py compares with torch (F.batch_norm, nn.BatchNorm1d, F.layer_norm).
The backward exercise receives the cache that ``batchnorm_forward`` returns, (x_hat, gamma,
inv_std), as a tuple of arrays.
"""

import math

import numpy as np
import torch

from course_utils import batchnorm
from course_utils.exercises import Case, Exercise, Mistake, register

NORMALIZATIONS = (
    "batch_norm",
    "native_batch_norm",
    "BatchNorm1d",
    "layer_norm",
    "native_layer_norm",
    "LayerNorm",
    "instance_norm",
    "group_norm",
    "rms_norm",
    "RMSNorm",
)
AUTOGRAD = ("backward", "grad", "autograd", "vjp", "jacobian", "func")
FUSION = ("fuse_linear_bn_weights", "fuse_linear_bn_eval", "fusion")


# --- case generators ------------------------------------------------------------------


def _features(rng, n, c, dtype=np.float64, shift=None, scale=None):
    """x of shape (n, c): each feature with its own mean and spread."""
    shift = rng.uniform(-3, 3, size=c) if shift is None else shift
    scale = rng.uniform(0.5, 4, size=c) if scale is None else scale
    return (shift + scale * rng.standard_normal((n, c))).astype(dtype)


def _affine(rng, c, dtype=np.float64):
    gamma = rng.uniform(0.5, 2.0, size=c) * rng.choice([-1.0, 1.0], size=c)
    return gamma.astype(dtype), rng.standard_normal(c).astype(dtype)


def _size(rng, low=3, high=9):
    return int(rng.integers(low, high)), int(rng.integers(1, 6))


def _transform_cases(rng):
    cases = []

    def add(group, x, eps=1e-5):
        gamma, beta = _affine(rng, x.shape[1], x.dtype)
        cases.append(Case(group, {"x": x, "gamma": gamma, "beta": beta, "eps": eps}))

    for _ in range(3):
        add("random batches, float64", _features(rng, *_size(rng)))
    add("float32", _features(rng, *_size(rng), dtype=np.float32))
    add("a large eps (0.1): where does it go?", _features(rng, 6, 3, scale=np.full(3, 0.3)), 0.1)
    add("a batch of two", _features(rng, 2, 4))
    x = _features(rng, 5, 3)
    x[:, 1] = x[0, 1]
    add("a constant feature (variance 0)", x)
    add(
        "a large offset (mean 1e5, std 0.1)",
        _features(rng, 8, 2, shift=np.full(2, 1e5), scale=np.full(2, 0.1)),
    )
    return cases


def _backward_cases(rng):
    cases = []

    def add(group, x, dy=None, gamma=None):
        c = x.shape[1]
        g, b = _affine(rng, c, x.dtype)
        gamma = g if gamma is None else gamma.astype(x.dtype)
        t = {k: torch.from_numpy(v) for k, v in (("x", x), ("gamma", gamma), ("beta", b))}
        _, cache = batchnorm.batchnorm_forward(t["x"], t["gamma"], t["beta"])
        dy = rng.standard_normal(x.shape).astype(x.dtype) if dy is None else dy.astype(x.dtype)
        cases.append(Case(group, {"dy": dy, "cache": tuple(v.numpy() for v in cache)}))

    for _ in range(3):
        add("random batches, float64", _features(rng, *_size(rng)))
    add("float32", _features(rng, *_size(rng), dtype=np.float32))
    add("a batch of two", _features(rng, 2, 3))
    add("one feature", _features(rng, 7, 1))
    x = _features(rng, 6, 2)
    add("dy the same for every example (dx = 0)", x, dy=np.tile(rng.standard_normal(2), (6, 1)))
    add("gamma with a zero", _features(rng, 5, 3), gamma=np.array([0.0, 1.5, -0.7]))
    return cases


def _running_cases(rng):
    cases = []

    def add(group, x, momentum):
        c = x.shape[1]
        mean = rng.standard_normal(c).astype(x.dtype)
        var = rng.uniform(0.2, 3.0, size=c).astype(x.dtype)
        args = {"running_mean": mean, "running_var": var, "x": x, "momentum": momentum}
        cases.append(Case(group, args))

    for _ in range(3):
        add("random batches, float64", _features(rng, *_size(rng)), float(rng.choice([0.1, 0.3])))
    add("float32", _features(rng, *_size(rng), dtype=np.float32), 0.1)
    add("a batch of two (N/(N-1) = 2)", _features(rng, 2, 3), 0.1)
    add("momentum 1: only the new batch", _features(rng, 4, 2), 1.0)
    add("momentum 0: nothing changes", _features(rng, 4, 2), 0.0)
    return cases


def _fold_cases(rng):
    cases = []

    def add(group, out, inp, dtype=np.float64, eps=1e-5, gamma=None, var=None):
        g, b = _affine(rng, out, dtype)
        args = {
            "weight": rng.standard_normal((out, inp)).astype(dtype),
            "bias": rng.standard_normal(out).astype(dtype),
            "gamma": g if gamma is None else gamma.astype(dtype),
            "beta": b,
            "running_mean": rng.uniform(-2, 2, size=out).astype(dtype),
            "running_var": (rng.uniform(0.2, 4.0, size=out) if var is None else var).astype(dtype),
            "eps": eps,
        }
        cases.append(Case(group, args))

    for _ in range(2):
        add("random layers (out != in), float64", int(rng.integers(2, 5)), int(rng.integers(5, 8)))
    add("square weight (out = in)", 4, 4)
    add("float32", 3, 5, dtype=np.float32)
    add("a small running variance (eps matters)", 3, 2, var=np.array([1e-6, 1e-4, 1.0]))
    add("eps = 0.1", 2, 3, eps=0.1)
    add("gamma with a zero and a negative entry", 3, 2, gamma=np.array([0.0, -1.5, 1.0]))
    return cases


def _layer_norm_cases(rng):
    cases = []

    def add(group, shape, normalized_shape, dtype=np.float64, affine=(True, True), x=None):
        if x is None:
            x = (rng.uniform(-2, 2) + rng.uniform(0.5, 3) * rng.standard_normal(shape)).astype(
                dtype
            )
        weight = rng.standard_normal(normalized_shape).astype(dtype) if affine[0] else None
        bias = rng.standard_normal(normalized_shape).astype(dtype) if affine[1] else None
        args = {"x": x, "normalized_shape": normalized_shape, "weight": weight, "bias": bias}
        cases.append(Case(group, args | {"eps": 1e-5}))

    for _ in range(2):
        n, d = int(rng.integers(2, 7)), int(rng.integers(3, 8))
        add("(N, D) with weight and bias, float64", (n, d), (d,))
    add("no weight, no bias", (4, 5), (5,), affine=(False, False))
    add("float32", (3, 6), (6,), dtype=np.float32)
    add("(N, T, D): normalize over the last dimension", (2, 3, 4), (4,))
    add("normalize over the last two dimensions", (2, 3, 4), (3, 4))
    add("a batch of one", (1, 6), (6,))
    x = rng.standard_normal((3, 4))
    x[1] = 2.5
    add("a constant row", (3, 4), (4,), x=x)
    return cases


def _noise_cases(rng):
    cases = [
        Case(
            "batch sizes and momenta",
            {
                "batch_size": int(rng.choice([4, 16, 32, 128])),
                "momentum": float(rng.choice([0.01, 0.05, 0.1, 0.3])),
                "std": float(rng.uniform(0.5, 3.0)),
            },
        )
        for _ in range(4)
    ]
    cases += [
        Case(
            "momentum 1: the last batch mean alone",
            {
                "batch_size": int(rng.choice([4, 8, 16])),
                "momentum": 1.0,
                "std": float(rng.uniform(0.5, 3.0)),
            },
        ),
        Case(
            "a batch of two, small momentum",
            {"batch_size": 2, "momentum": 0.02, "std": float(rng.uniform(0.5, 3.0))},
        ),
    ]
    return cases


# --- known mistakes -------------------------------------------------------------------


def _transform_unbiased(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0) + eps) + beta


def _transform_divide_by_variance(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / (x.var(0, correction=0) + eps) + beta


def _transform_eps_outside(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / (x.std(0, correction=0) + eps) + beta


def _transform_over_features(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(1, keepdim=True), x.var(1, correction=0, keepdim=True)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def _transform_mean_of_squares(x, gamma, beta, eps=1e-5):
    mu = x.mean(0)
    var = (x**2).mean(0) - mu**2
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def _backward_constant_statistics(dy, cache):
    x_hat, gamma, inv_std = cache
    return dy * gamma * inv_std, (dy * x_hat).sum(0), dy.sum(0)


def _backward_no_variance_path(dy, cache):
    x_hat, gamma, inv_std = cache
    return gamma * inv_std * (dy - dy.mean(0)), (dy * x_hat).sum(0), dy.sum(0)


def _backward_mean_over_batch(dy, cache):
    dx, dgamma, dbeta = batchnorm.batchnorm_backward(dy, cache)
    return dx, dgamma / dy.shape[0], dbeta / dy.shape[0]


def _running_biased(running_mean, running_var, x, momentum=0.1):
    var, mean = torch.var_mean(x, dim=0, correction=0)
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + (
        momentum * var
    )


def _running_swapped(running_mean, running_var, x, momentum=0.1):
    return batchnorm.update_running_stats(running_mean, running_var, x, 1 - momentum)


def _running_smooth_std(running_mean, running_var, x, momentum=0.1):
    mean, _ = batchnorm.update_running_stats(running_mean, running_var, x, momentum)
    std = (1 - momentum) * running_var.sqrt() + momentum * x.std(0)
    return mean, std**2


def _fold_bias_not_scaled(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    w, _ = batchnorm.fold_batchnorm_params(
        weight, bias, gamma, beta, running_mean, running_var, eps
    )
    scale = gamma / torch.sqrt(running_var + eps)
    return w, bias - scale * running_mean + beta


def _fold_variance(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / (running_var + eps)
    return scale[:, None] * weight, scale * (bias - running_mean) + beta


def _layer_norm_over_batch(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    mu, var = x.mean(0, keepdim=True), x.var(0, correction=0, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


def _layer_norm_unbiased(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(normalized_shape), 0))
    mu, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


def _layer_norm_last_dim_only(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    return batchnorm.layer_norm(x, tuple(normalized_shape[-1:]), None, None, eps) * (
        1 if weight is None else weight
    ) + (0 if bias is None else bias)


def _noise_no_batch_size(batch_size, momentum, std):
    return std * math.sqrt(momentum / (2 - momentum))


def _noise_variance(batch_size, momentum, std):
    return std**2 * momentum / ((2 - momentum) * batch_size)


def _noise_batch_mean(batch_size, momentum, std):
    return std / math.sqrt(batch_size)


def _noise_linear_weights(batch_size, momentum, std):
    # sum of the weights m (1 - m)^j instead of the sum of their squares
    return std / math.sqrt(batch_size) * math.sqrt(momentum)


register(
    Exercise(
        id="04.batchnorm_transform",
        name="batchnorm_transform",
        title="The batch normalizing transform (training mode)",
        points=2,
        reference=batchnorm.batchnorm_transform,
        cases=_transform_cases,
        forbidden=NORMALIZATIONS,
        mistakes=(
            Mistake(
                "x.var(0) divides by N - 1 (the unbiased variance); the normalization uses the "
                "batch's own variance, divided by N: x.var(0, correction=0)",
                _transform_unbiased,
            ),
            Mistake(
                "you divided by the variance: divide by the standard deviation, sqrt(var + eps)",
                _transform_divide_by_variance,
            ),
            Mistake(
                "eps goes inside the square root: (x - mu) / sqrt(var + eps), not / (std + eps)",
                _transform_eps_outside,
            ),
            Mistake(
                "you normalized each example over its features (that is layer normalization): "
                "batch normalization averages each feature over the batch, dim=0",
                _transform_over_features,
            ),
            Mistake(
                "mean(x^2) - mean(x)^2 loses every digit when the mean is large compared with "
                "the spread: compute the variance as the mean of (x - mu)^2",
                _transform_mean_of_squares,
            ),
        ),
    ),
    Exercise(
        id="04.batchnorm_backward",
        name="batchnorm_backward",
        title="The backward pass of batch normalization, by hand",
        points=3,
        reference=batchnorm.batchnorm_backward,
        cases=_backward_cases,
        n_outputs=3,
        rtol=1e-6,
        atol=1e-9,
        forbidden=(*AUTOGRAD, *NORMALIZATIONS),
        mistakes=(
            Mistake(
                "dx treats the batch mean and variance as constants: they depend on every x_i, "
                "so dx gets two more terms, through mu and through var",
                _backward_constant_statistics,
            ),
            Mistake(
                "dx includes the path through mu but not the one through the variance "
                "(the term with x_hat * sum(dy * x_hat))",
                _backward_no_variance_path,
            ),
            Mistake(
                "gamma and beta are shared by every example of the batch: their gradients are "
                "sums over the batch, not means",
                _backward_mean_over_batch,
            ),
        ),
    ),
    Exercise(
        id="04.update_running_stats",
        name="update_running_stats",
        title="Updating the running mean and variance",
        points=2,
        reference=batchnorm.update_running_stats,
        cases=_running_cases,
        n_outputs=2,
        forbidden=NORMALIZATIONS,
        mistakes=(
            Mistake(
                "the running variance averages the unbiased batch variance, N/(N-1) times the "
                "biased one: x.var(0) (correction=1)",
                _running_biased,
            ),
            Mistake(
                "momentum is the weight of the new batch in PyTorch: "
                "(1 - momentum) * running + momentum * batch",
                _running_swapped,
            ),
            Mistake(
                "you smoothed the standard deviation and squared it; PyTorch smooths the "
                "variance itself, and the two differ",
                _running_smooth_std,
            ),
        ),
    ),
    Exercise(
        id="04.fold_batchnorm_params",
        name="fold_batchnorm_params",
        title="Folding batch normalization into the preceding linear layer",
        points=2,
        reference=batchnorm.fold_batchnorm_params,
        cases=_fold_cases,
        n_outputs=2,
        forbidden=(*NORMALIZATIONS, *FUSION),
        mistakes=(
            Mistake(
                "the bias of the linear layer passes through BN too: it is scaled by "
                "gamma / sqrt(var + eps) like the rest of z",
                _fold_bias_not_scaled,
            ),
            Mistake(
                "the scale is gamma / sqrt(running_var + eps): you divided by the variance",
                _fold_variance,
            ),
        ),
    ),
    Exercise(
        id="04.layer_norm",
        name="layer_norm",
        title="Layer normalization, forward",
        points=2,
        reference=batchnorm.layer_norm,
        cases=_layer_norm_cases,
        forbidden=NORMALIZATIONS,
        mistakes=(
            Mistake(
                "you normalized each feature over the batch (that is batch normalization): "
                "layer normalization normalizes each example over its last dimensions",
                _layer_norm_over_batch,
            ),
            Mistake(
                "x.var divides by D - 1; layer normalization uses the biased variance "
                "(correction=0)",
                _layer_norm_unbiased,
            ),
            Mistake(
                "normalize over all the dimensions in normalized_shape (the last "
                "len(normalized_shape) of x), not only the last one",
                _layer_norm_last_dim_only,
            ),
        ),
    ),
    Exercise(
        id="04.running_mean_std",
        name="running_mean_std",
        title="Prediction: how noisy is the running mean?",
        points=2,
        reference=batchnorm.running_mean_std,
        cases=_noise_cases,
        mistakes=(
            Mistake(
                "a batch mean of N values has variance sigma^2 / N: the batch size belongs in "
                "the answer",
                _noise_no_batch_size,
            ),
            Mistake("that is the variance: return the standard deviation", _noise_variance),
            Mistake(
                "that is the noise of one batch mean; the running mean averages many of them",
                _noise_batch_mean,
            ),
            Mistake(
                "the variance of a weighted sum of independent terms is the sum of the "
                "*squared* weights times their variance",
                _noise_linear_weights,
            ),
        ),
    ),
)
