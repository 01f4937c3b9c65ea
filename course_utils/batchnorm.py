r"""Batch normalization for lecture 04: the forward pass, its backward pass by hand, running
statistics for inference, and folding into the preceding linear layer.

Training mode (Ioffe & Szegedy, 2015, Algorithm 1). For a batch x of shape (N, C), N
examples of C features, each feature j is normalized with the statistics of the batch:

    mu_j     = 1/N sum_i x_ij                          batch mean
    var_j    = 1/N sum_i (x_ij - mu_j)^2               batch variance (biased: divides by N)
    x_hat_ij = (x_ij - mu_j) / sqrt(var_j + eps)       normalized: mean 0, variance ~1
    y_ij     = gamma_j x_hat_ij + beta_j               scaled and shifted (learned gamma, beta)

Backward (``batchnorm_backward``), for a loss L with dy = dL/dy, in the compact form:

    dbeta_j  = sum_i dy_ij
    dgamma_j = sum_i dy_ij x_hat_ij
    dx_ij    = gamma_j / sqrt(var_j + eps) * (dy_ij - dbeta_j / N - x_hat_ij dgamma_j / N)

Running statistics (PyTorch's convention, ``update_running_stats``), after each training
batch, with the *unbiased* batch variance:

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum N/(N-1) var

PyTorch's momentum is the weight of the new batch, i.e. 1 - delta for a smoothing constant
delta. With momentum=None, ``BatchNorm1d`` keeps the plain average over all batches seen
(weight 1/k for batch k).

Eval mode uses the running statistics, which makes batch normalization an affine map of
each feature,

    y = gamma / sqrt(running_var + eps) * x + (beta - gamma running_mean / sqrt(running_var + eps)),

that ``fold_batchnorm`` merges into the preceding ``nn.Linear``.

``layer_norm`` (Ba, Kiros & Hinton, 2016) normalizes each example over its features
instead, the same in training and at test time; it equals torch.nn.functional.layer_norm.
"""

import math

import torch
from torch import nn

from course_utils import _validate

__all__ = [
    "BatchNorm1d",
    "batchnorm_backward",
    "batchnorm_forward",
    "batchnorm_transform",
    "fold_batchnorm",
    "fold_batchnorm_params",
    "layer_norm",
    "running_mean_std",
    "update_running_stats",
]


# --- argument checks --------------------------------------------------------------------


def _check_batch(x, name="x") -> torch.Tensor:
    _validate.tensor(x, name, floating=True)
    if x.dim() != 2:
        raise ValueError(
            f"{name} must have shape (N, C): N examples of C features, got shape {tuple(x.shape)}"
        )
    if x.shape[0] < 2:
        raise ValueError(
            f"{name} must hold at least 2 examples to compute a batch variance, got shape "
            f"{tuple(x.shape)} (with one example every x_hat would be 0)"
        )
    return x


def _check_features(t, name, x, x_name="x") -> torch.Tensor:
    """A (C,) tensor of x's dtype, C = x.shape[-1]."""
    _validate.tensor(t, name, floating=True)
    if t.shape != (x.shape[-1],):
        raise ValueError(
            f"{name} must have shape ({x.shape[-1]},), one value per feature of {x_name}, "
            f"got {tuple(t.shape)}"
        )
    if t.dtype != x.dtype:
        raise TypeError(f"{name} must have the dtype of {x_name} ({x.dtype}), got {t.dtype}")
    return t


def _check_eps(eps) -> float:
    return _validate.number(eps, "eps", low=0.0, low_open=True)


def _check_momentum(momentum) -> float:
    return _validate.number(momentum, "momentum", low=0.0, high=1.0)


# --- training mode: forward and backward ------------------------------------------------


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    r"""Batch normalization in training mode; returns ``(y, cache)`` for the backward pass.

        mu = mean_i x_i,  var = mean_i (x_i - mu)^2,  inv_std = 1 / sqrt(var + eps)
        x_hat = (x - mu) * inv_std,  y = gamma * x_hat + beta

    x: (N, C) with N >= 2; gamma, beta: (C,), the dtype of x; eps > 0.
    cache = (x_hat, gamma, inv_std): x_hat (N, C), gamma (C,), inv_std (C,), all that
    ``batchnorm_backward`` needs. y equals torch.nn.functional.batch_norm(x, None, None,
    gamma, beta, training=True, eps=eps).
    """
    _check_batch(x)
    _check_features(gamma, "gamma", x)
    _check_features(beta, "beta", x)
    eps = _check_eps(eps)
    mu = x.mean(dim=0)
    centered = x - mu
    var = (centered * centered).mean(dim=0)
    inv_std = torch.rsqrt(var + eps)
    x_hat = centered * inv_std
    y = gamma * x_hat + beta
    return y, (x_hat, gamma, inv_std)


def batchnorm_transform(x, gamma, beta, eps=1e-5):
    r"""The batch normalizing transform y = gamma * (x - mu) / sqrt(var + eps) + beta alone.

    The y of ``batchnorm_forward`` (batch statistics, biased variance), without the cache.
    """
    return batchnorm_forward(x, gamma, beta, eps)[0]


def batchnorm_backward(dy, cache):
    r"""The gradients of batch normalization in training mode, without autograd.

    With cache = (x_hat, gamma, inv_std) from ``batchnorm_forward`` and dy = dL/dy (N, C):

        dbeta  = sum_i dy_i                       (C,)
        dgamma = sum_i dy_i * x_hat_i             (C,)
        dx     = gamma * inv_std * (dy - dbeta / N - x_hat * dgamma / N)   (N, C)

    This is the chain rule through mu and var collapsed into one line: since
    dx_hat = gamma * dy, the two sums over the batch that backpropagating through the mean
    and the variance produce are gamma * dbeta and gamma * dgamma.
    Returns ``(dx, dgamma, dbeta)``.
    """
    if not (isinstance(cache, tuple) and len(cache) == 3):
        raise TypeError(
            "cache must be the tuple (x_hat, gamma, inv_std) returned by batchnorm_forward, "
            f"got {type(cache).__name__}"
            + (f" of length {len(cache)}" if isinstance(cache, tuple) else "")
        )
    x_hat, gamma, inv_std = cache
    _validate.tensor(x_hat, "cache[0] (x_hat)", floating=True)
    if x_hat.dim() != 2:
        raise ValueError(f"cache[0] (x_hat) must have shape (N, C), got {tuple(x_hat.shape)}")
    _check_features(gamma, "cache[1] (gamma)", x_hat, "x_hat")
    _check_features(inv_std, "cache[2] (inv_std)", x_hat, "x_hat")
    _validate.tensor(dy, "dy", floating=True)
    _validate.same_shape(dy, x_hat, "dy", "cache[0] (x_hat)")
    if dy.dtype != x_hat.dtype:
        raise TypeError(f"dy must have the dtype of x_hat ({x_hat.dtype}), got {dy.dtype}")

    n = dy.shape[0]
    dbeta = dy.sum(dim=0)
    dgamma = (dy * x_hat).sum(dim=0)
    dx = gamma * inv_std * (dy - dbeta / n - x_hat * (dgamma / n))
    return dx, dgamma, dbeta


# --- running statistics -----------------------------------------------------------------


def update_running_stats(running_mean, running_var, x, momentum=0.1):
    r"""The running mean and variance after one training batch x, as torch.nn.BatchNorm1d.

        running_mean <- (1 - momentum) * running_mean + momentum * mean_i x_i
        running_var  <- (1 - momentum) * running_var  + momentum * N/(N-1) var_i x_i

    The batch variance here is the unbiased one (divided by N - 1), although the
    normalization itself uses the biased one. momentum in [0, 1] is the weight of the
    new batch (PyTorch's convention; a smoothing constant delta is 1 - momentum).
    x: (N, C) with N >= 2; running_mean, running_var: (C,), the dtype of x.
    Returns new tensors ``(running_mean, running_var)``; the arguments are not changed.
    """
    _check_batch(x)
    _check_features(running_mean, "running_mean", x)
    _check_features(running_var, "running_var", x)
    momentum = _check_momentum(momentum)
    mean = x.mean(dim=0)
    centered = x - mean
    var = (centered * centered).sum(dim=0) / (x.shape[0] - 1)
    return (
        (1 - momentum) * running_mean + momentum * mean,
        (1 - momentum) * running_var + momentum * var,
    )


def running_mean_std(batch_size, momentum, std=1.0) -> float:
    r"""The standard deviation of the running mean once it has forgotten its start.

    Batch means of N independent values of standard deviation sigma have variance
    sigma^2 / N. The running mean r_k = (1 - m) r_{k-1} + m mu_k weights the batch mean
    j steps back by m (1 - m)^j, so in the stationary regime

        Var(r) = sum_j m^2 (1 - m)^(2j) sigma^2 / N = m / (2 - m) * sigma^2 / N,

    and this returns sigma * sqrt(m / ((2 - m) N)) as a float.
    """
    _validate.integer(batch_size, "batch_size", low=1)
    momentum = _validate.number(momentum, "momentum", low=0.0, high=1.0)
    std = _validate.number(std, "std", low=0.0)
    return std * math.sqrt(momentum / ((2.0 - momentum) * batch_size))


# --- the module -------------------------------------------------------------------------


class _BatchNormFunction(torch.autograd.Function):
    """Training-mode batch normalization whose backward pass is ``batchnorm_backward``."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        y, cache = batchnorm_forward(x, gamma, beta, eps)
        ctx.save_for_backward(*cache)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        dx, dgamma, dbeta = batchnorm_backward(dy.contiguous(), tuple(ctx.saved_tensors))
        return dx, dgamma, dbeta, None


class BatchNorm1d(nn.Module):
    r"""Batch normalization of (N, C) inputs; the same as torch.nn.BatchNorm1d(num_features).

    Training mode (``model.train()``): normalizes with the batch statistics
    (``batchnorm_forward``; gradients by ``batchnorm_backward``, not autograd), then
    updates the running statistics (``update_running_stats``) and counts the batch in
    ``num_batches_tracked``. momentum=None averages all batches equally instead: weight
    1/k for the k-th batch (Ioffe & Szegedy's population statistics, Algorithm 2).
    Eval mode (``model.eval()``): y = (x - running_mean) / sqrt(running_var + eps) * weight
    + bias, one example at a time if need be.

    Parameters ``weight`` (gamma, ones) and ``bias`` (beta, zeros); buffers
    ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (0, int64):
    the same state_dict keys as torch's, so state dicts load into either.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features = _validate.integer(num_features, "num_features", low=1)
        self.eps = _check_eps(eps)
        self.momentum = None if momentum is None else _check_momentum(momentum)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0."""
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """The running statistics reset, weight = 1 and bias = 0."""
        self.reset_running_stats()
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.zero_()

    def forward(self, input):
        _validate.tensor(input, "input", floating=True)
        if input.dim() != 2 or input.shape[1] != self.num_features:
            raise ValueError(
                f"input must have shape (N, {self.num_features}) for BatchNorm1d"
                f"({self.num_features}), got {tuple(input.shape)}"
            )
        if input.dtype != self.weight.dtype:
            raise TypeError(
                f"input must have the dtype of the module's parameters ({self.weight.dtype}), "
                f"got {input.dtype}: convert one of them (e.g. module.double())"
            )
        if not self.training:
            inv_std = torch.rsqrt(self.running_var + self.eps)
            return (input - self.running_mean) * inv_std * self.weight + self.bias
        if input.shape[0] < 2:
            raise ValueError(
                "BatchNorm1d in training mode needs at least 2 examples per batch to compute "
                f"a batch variance, got input of shape {tuple(input.shape)}; call "
                "model.eval() to predict one example at a time"
            )
        with torch.no_grad():
            self.num_batches_tracked += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
            mean, var = update_running_stats(self.running_mean, self.running_var, input, factor)
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
        return _BatchNormFunction.apply(input, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


# --- inference: folding into the linear layer -------------------------------------------


def fold_batchnorm_params(weight, bias, gamma, beta, running_mean, running_var, eps=1e-5):
    r"""The weight and bias of one linear layer equal to Linear(weight, bias) then BN in eval mode.

    BN in eval mode is y = s * z + (beta - s * running_mean) with s = gamma / sqrt(running_var
    + eps), applied to z = W x + b, so

        W' = s[:, None] * W          (out, in): row j scaled by s_j
        b' = s * (b - running_mean) + beta

    weight: (out, in); bias, gamma, beta, running_mean, running_var: (out,), one dtype.
    Returns ``(W', b')``.
    """
    _validate.tensor(weight, "weight", floating=True)
    if weight.dim() != 2:
        raise ValueError(f"weight must have shape (out, in), got {tuple(weight.shape)}")
    for name, value in (
        ("bias", bias),
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        _validate.tensor(value, name, floating=True)
        if value.shape != weight.shape[:1]:
            raise ValueError(
                f"{name} must have shape ({weight.shape[0]},), one value per output of weight "
                f"(shape {tuple(weight.shape)}), got {tuple(value.shape)}"
            )
        if value.dtype != weight.dtype:
            raise TypeError(
                f"{name} must have the dtype of weight ({weight.dtype}), got {value.dtype}"
            )
    eps = _check_eps(eps)
    scale = gamma * torch.rsqrt(running_var + eps)
    return scale[:, None] * weight, scale * (bias - running_mean) + beta


def fold_batchnorm(linear, bn) -> nn.Linear:
    r"""A new nn.Linear equal to ``linear`` followed by ``bn`` in eval mode (see
    ``fold_batchnorm_params``).

    bn: a ``BatchNorm1d`` of this module or a torch.nn.BatchNorm1d with affine=True and
    track_running_stats=True, whose num_features is linear.out_features. A linear layer
    without bias counts as bias 0. The result has a bias, the dtype and device of
    ``linear``, and no connection to the originals (changing them later does not change it).
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    if not isinstance(bn, BatchNorm1d | nn.BatchNorm1d):
        raise TypeError(
            f"bn must be a course_utils BatchNorm1d or a torch.nn.BatchNorm1d, got "
            f"{type(bn).__name__}"
        )
    if bn.weight is None or bn.running_mean is None:
        raise ValueError(
            "bn must have affine=True and track_running_stats=True (weight and running "
            "statistics) to be folded"
        )
    if bn.num_features != linear.out_features:
        raise ValueError(
            f"bn.num_features ({bn.num_features}) must equal linear.out_features "
            f"({linear.out_features})"
        )
    with torch.no_grad():
        bias = linear.bias if linear.bias is not None else torch.zeros_like(bn.running_mean)
        weight, bias = fold_batchnorm_params(
            linear.weight, bias, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps
        )
        folded = nn.Linear(
            linear.in_features, linear.out_features, device=weight.device, dtype=weight.dtype
        )
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return folded


# --- layer normalization ----------------------------------------------------------------


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    r"""Layer normalization: each example normalized over its last dimensions.

    For normalized_shape = (D,) (or an int D) and x of shape (..., D):

        mu = mean_d x_d,  var = mean_d (x_d - mu)^2,  y = (x - mu) / sqrt(var + eps) * weight + bias

    with one mu and var per example (per leading index), not per feature as in batch
    normalization; a longer normalized_shape normalizes over that many last dimensions.
    weight and bias: None or tensors of shape normalized_shape. Equals
    torch.nn.functional.layer_norm(x, normalized_shape, weight, bias, eps).
    """
    _validate.tensor(x, "x", floating=True)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    if not (
        isinstance(shape, tuple | list | torch.Size)
        and len(shape) >= 1
        and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    ):
        raise TypeError(
            f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}"
        )
    shape = tuple(shape)
    if tuple(x.shape[-len(shape) :]) != shape or x.dim() < len(shape):
        raise ValueError(
            f"normalized_shape {shape} must equal the last dimensions of x, got x of shape "
            f"{tuple(x.shape)}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is None:
            continue
        _validate.tensor(value, name, floating=True)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
        if value.dtype != x.dtype:
            raise TypeError(f"{name} must have the dtype of x ({x.dtype}), got {value.dtype}")
    eps = _check_eps(eps)
    dims = tuple(range(-len(shape), 0))
    var, mu = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
    y = (x - mu) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
