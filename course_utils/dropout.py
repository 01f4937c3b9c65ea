r"""Dropout for lecture 06: inverted dropout, DropConnect, the ensemble of subnetworks, MC dropout.

Convention (PyTorch's): ``p`` is the probability of DROPPING a unit; a unit is kept with
probability 1 - p. Every mask entry is drawn independently, for every example at every
training step.

* ``dropout(x, p, training)``: inverted dropout, y = m * x / (1 - p) with m ~ Bernoulli(1 - p),
  the identity in eval mode; ``Dropout(p)`` is the module. Same statistics as
  ``torch.nn.functional.dropout`` (which cannot take a generator; ours can).
* ``dropout_from_noise`` (the rule with the uniform noise given), ``dropout_backward``
  (the gradient through a given mask), ``weight_scaled_layer`` (the test-time layer of
  *standard*, non-inverted dropout).
* ``dropconnect_linear`` and ``DropConnectLinear``: drop weights instead of units
  (Wan et al., 2013).
* ``subnetwork_masks`` and ``ensemble_means``: the 2^n subnetworks of n droppable units,
  their probabilities, and the arithmetic and normalized geometric mean of their predictions.
* ``mc_dropout_softmax`` and ``mc_dropout_predict``: Monte Carlo dropout, the mean and
  spread of T stochastic passes; ``variance_shift``: what dropout does to the variance a
  following BatchNorm layer sees (Li et al., 2019).
"""

import torch

from course_utils import _validate

__all__ = [
    "DropConnectLinear",
    "Dropout",
    "dropconnect_linear",
    "dropout",
    "dropout_backward",
    "dropout_from_noise",
    "ensemble_means",
    "mc_dropout_predict",
    "mc_dropout_softmax",
    "subnetwork_masks",
    "variance_shift",
    "weight_scaled_layer",
]


def _check_p(p) -> float:
    """A drop probability in [0, 1): at p = 1 nothing is kept and 1 / (1 - p) is undefined."""
    return _validate.number(p, "p", low=0.0, high=1.0, high_open=True)


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")


def _check_training(training) -> None:
    if not isinstance(training, bool):
        raise TypeError(f"training must be True or False, got {training!r}")


def _uniform(shape, like: torch.Tensor, generator) -> torch.Tensor:
    """U[0, 1) noise of this shape in like's dtype, drawn on the CPU (where a CPU generator
    lives) and moved to like's device."""
    return torch.rand(shape, generator=generator, dtype=like.dtype).to(like.device)


def dropout_from_noise(x: torch.Tensor, noise: torch.Tensor, p: float) -> torch.Tensor:
    r"""Inverted dropout with the uniform noise given: keep x_i where noise_i >= p.

        y_i = [noise_i >= p] * x_i / (1 - p),    noise_i ~ U[0, 1)

    so P(keep) = P(noise_i >= p) = 1 - p and E[y_i] = x_i. (Keeping where noise_i < p,
    as one source deck does, keeps with probability p: right only for p = 0.5.)
    x, noise: same shape. Returns y of x's shape and dtype.
    """
    _validate.tensor(x, "x", floating=True)
    _validate.tensor(noise, "noise", floating=True)
    _validate.same_shape(x, noise, "x", "noise")
    p = _check_p(p)
    keep = noise >= p
    return x * keep / (1 - p)


def dropout(
    x: torch.Tensor, p: float, training: bool = True, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Inverted dropout (Srivastava et al., 2014): drop each entry with probability p.

    Training:
        m_i ~ Bernoulli(1 - p) independently for every entry,   y_i = m_i x_i / (1 - p)
    so E[y_i] = x_i: the expected output is the input, and nothing changes at test time.
    Eval (training=False) or p = 0: y = x (x itself is returned, as torch does).

    x: any shape, floating point; every entry (every unit of every example) gets its own
    mask bit, drawn from ``generator`` (the global generator if None) as U[0, 1) noise and
    kept where noise >= p (``dropout_from_noise``). p must be in [0, 1); torch accepts
    p = 1 and returns zeros, which no 1 / (1 - p) scaling can describe.
    Same distribution as ``torch.nn.functional.dropout(x, p, training)``.
    """
    _validate.tensor(x, "x", floating=True)
    p = _check_p(p)
    _check_training(training)
    _check_generator(generator)
    if not training or p == 0.0:
        return x
    return dropout_from_noise(x, _uniform(x.shape, x, generator), p)


def dropout_backward(grad_output: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    r"""The gradient of a loss through inverted dropout with the keep mask m that was used.

        y = m * x / (1 - p)   =>   dL/dx = m * dL/dy / (1 - p)

    The gradient reaches only the kept units, scaled like the forward pass.
    grad_output: dL/dy; mask: boolean (True = kept) or 0/1, same shape.
    """
    _validate.tensor(grad_output, "grad_output", floating=True)
    _validate.tensor(mask, "mask")
    _validate.same_shape(grad_output, mask, "grad_output", "mask")
    p = _check_p(p)
    return grad_output * mask.to(grad_output.dtype) / (1 - p)


def weight_scaled_layer(weight: torch.Tensor, bias: torch.Tensor, p: float):
    r"""Test-time weights of a layer trained with *standard* (non-inverted) dropout on its input.

    Training (standard dropout, no rescaling):  z = W (m * x) + b,   m_j ~ Bernoulli(1 - p)
    Expected pre-activation:                    E[z] = (1 - p) W x + b
    So the test-time layer, without dropout, uses W_test = (1 - p) W and b_test = b (the
    bias is never dropped). With inverted dropout the trained W, b are used as they are.
    weight: (out, in), bias: (out,). Returns (W_test, b_test), new tensors.
    """
    _validate.tensor(weight, "weight", floating=True, min_dim=2)
    _validate.tensor(bias, "bias", floating=True, min_dim=1)
    p = _check_p(p)
    return (1 - p) * weight, bias.clone()


class Dropout(torch.nn.Module):
    r"""Inverted dropout as a module: ``dropout(x, p, self.training, generator=generator)``.

    Like ``torch.nn.Dropout(p)``: active in train mode, the identity after ``.eval()``.
    generator: where the masks come from (None: torch's global generator).
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__()
        self.p = _check_p(p)
        _check_generator(generator)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def dropconnect_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    p: float,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""A linear layer with DropConnect (Wan et al., 2013): drop weights, not units.

    Training, for every example n its own mask M^(n) of the weights' shape:
        M^(n)_ij ~ Bernoulli(1 - p),   y_n = (M^(n) * W) x_n / (1 - p) + b
    so E[y_n] = W x_n + b (inverted scaling, as in ``dropout``). The bias is not dropped.
    Dropout on the layer's input is the special case M^(n)_ij = m^(n)_j (a whole column
    of W dropped with its input unit).
    Eval (training=False) or p = 0: y = x W^T + b.

    x: (N, in) or (..., in); weight: (out, in); bias: (out,) or None. Returns (..., out).
    Memory: one mask of N * out * in entries per call.
    """
    _validate.tensor(x, "x", floating=True, min_dim=1)
    _validate.tensor(weight, "weight", floating=True, min_dim=2)
    if weight.dim() != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"weight must have shape (out, in) with in = x.shape[-1] = {x.shape[-1]}, "
            f"got {tuple(weight.shape)}"
        )
    if bias is not None:
        _validate.tensor(bias, "bias", floating=True)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    p = _check_p(p)
    _check_training(training)
    _check_generator(generator)
    if not training or p == 0.0:
        return torch.nn.functional.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])  # (N, in)
    noise = _uniform((flat.shape[0], *weight.shape), weight, generator)  # (N, out, in)
    masked = (noise >= p) * weight / (1 - p)  # M^(n) * W / (1 - p)
    y = torch.einsum("noi,ni->no", masked, flat)
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


class DropConnectLinear(torch.nn.Linear):
    r"""``torch.nn.Linear`` with DropConnect on its weights in train mode (``dropconnect_linear``).

    Initialised like ``nn.Linear(in_features, out_features, bias)``; in eval mode it is
    that plain linear layer.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__(in_features, out_features, bias=bias)
        self.p = _check_p(p)
        _check_generator(generator)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropconnect_linear(
            x, self.weight, self.bias, self.p, self.training, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def subnetwork_masks(n: int, p: float, dtype=torch.float64):
    r"""All 2^n keep masks of n droppable units and the probability of each under dropout.

        P(m) = (1 - p)^{|m|} p^{n - |m|},   |m| = number of kept units,   sum_m P(m) = 1

    (for p = 0.5 every one of the 2^n subnetworks has probability 2^-n).
    Returns masks (2^n, n) of 0/1 (row k: the binary digits of k) and probs (2^n,).
    """
    _validate.integer(n, "n", low=1)
    if n > 20:
        raise ValueError(f"n must be at most 20 (2^n masks are enumerated), got {n}")
    p = _check_p(p)
    k = torch.arange(2**n)
    masks = ((k[:, None] >> torch.arange(n)) & 1).to(dtype)
    kept = masks.sum(dim=1)
    return masks, (1 - p) ** kept * p ** (n - kept)


def ensemble_means(log_probs: torch.Tensor, weights: torch.Tensor):
    r"""The arithmetic and the normalized geometric mean of an ensemble's class probabilities.

        arithmetic:  A_c = sum_k w_k P_k(c)
        geometric:   G_c = prod_k P_k(c)^{w_k} / sum_c' prod_k P_k(c')^{w_k}
                         = softmax_c( sum_k w_k log P_k(c) )

    log_probs: (K, ..., C) log-probabilities of K members (e.g. the 2^n subnetworks);
    weights: (K,), non-negative, summing to 1 (e.g. ``subnetwork_masks``' probabilities).
    Returns (A, G), each (..., C).
    """
    _validate.tensor(log_probs, "log_probs", floating=True, min_dim=2)
    _validate.tensor(weights, "weights", floating=True, min_dim=1)
    if weights.shape != log_probs.shape[:1]:
        raise ValueError(
            f"weights must have shape ({log_probs.shape[0]},), one per member, "
            f"got {tuple(weights.shape)}"
        )
    if (weights < 0).any() or not torch.isclose(weights.sum(), weights.new_tensor(1.0)):
        raise ValueError("weights must be non-negative and sum to 1")
    w = weights.to(log_probs.dtype).reshape(-1, *([1] * (log_probs.dim() - 1)))
    arithmetic = (w * log_probs.exp()).sum(dim=0)
    geometric = torch.softmax((w * log_probs).sum(dim=0), dim=-1)
    return arithmetic, geometric


def _mean_and_spread(passes: torch.Tensor):
    """Mean and sample standard deviation (divisor T - 1) over the T passes of dim 0."""
    return passes.mean(dim=0), passes.std(dim=0)


def mc_dropout_softmax(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    p: float,
    samples: int,
    *,
    generator: torch.Generator | None = None,
):
    r"""MC dropout for a softmax layer with inverted dropout on its input: mean and spread.

    For t = 1..T (T = ``samples``), with a fresh mask for every pass and every example:
        P_t = softmax( W (m_t * h) / (1 - p) + b ),    m_t ~ Bernoulli(1 - p)
        mean = (1/T) sum_t P_t,   std = sqrt( sum_t (P_t - mean)^2 / (T - 1) )

    The mean estimates the arithmetic mean of the subnetworks' probabilities (not the
    softmax of the mean logits); the std is the spread of the passes.
    h: (N, H) inputs of the layer (e.g. the last hidden layer); weight: (C, H); bias: (C,).
    Returns (mean, std), each (N, C). samples >= 2.
    """
    _validate.tensor(h, "h", floating=True, min_dim=2)
    _validate.integer(samples, "samples", low=2)
    passes = dropout(h.expand(samples, *h.shape), p, generator=generator)  # (T, N, H)
    probs = torch.softmax(torch.nn.functional.linear(passes, weight, bias), dim=-1)
    return _mean_and_spread(probs)


DROPOUT_MODULES = (
    Dropout,
    DropConnectLinear,
    torch.nn.Dropout,
    torch.nn.Dropout1d,
    torch.nn.Dropout2d,
    torch.nn.Dropout3d,
    torch.nn.AlphaDropout,
    torch.nn.FeatureAlphaDropout,
)


MC_ROWS = 8192  # rows per forward call of mc_dropout_predict


def mc_dropout_predict(model: torch.nn.Module, x: torch.Tensor, samples: int = 100):
    r"""Monte Carlo dropout (Gal & Ghahramani, 2016): mean and spread of T stochastic passes.

        P_t = softmax(model(x)) with dropout active,  t = 1..T
        mean = (1/T) sum_t P_t,   std = sample standard deviation of the P_t (divisor T - 1)

    Only the dropout layers (``DROPOUT_MODULES``) are put in train mode; every other layer
    (BatchNorm, ...) stays in eval mode. The model's modes are restored afterwards; no
    gradients are recorded. The masks come from each dropout layer's generator (torch's
    global one for torch.nn.Dropout). model(x): logits (N, C). Returns (mean, std), (N, C).

    For speed, several passes run as one forward call on stacked copies of x (at most
    ``MC_ROWS`` rows): every row gets its own masks, so this is T independent passes, for
    any model whose eval-mode output for one example does not depend on the others.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _validate.tensor(x, "x", floating=True)
    _validate.integer(samples, "samples", low=2)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for module in model.modules():
        if isinstance(module, DROPOUT_MODULES):
            module.train()
    n = x.shape[0]
    per_call = max(1, MC_ROWS // max(n, 1))  # passes per forward call
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, samples, per_call):
                t = min(per_call, samples - start)
                logits = model(x.repeat(t, *([1] * (x.dim() - 1))))  # t passes, stacked
                chunks.append(torch.softmax(logits, dim=-1).reshape(t, n, -1))
    finally:
        for module, mode in modes.items():
            module.training = mode
    return _mean_and_spread(torch.cat(chunks))


def variance_shift(mean: torch.Tensor, var: torch.Tensor, p: float) -> torch.Tensor:
    r"""How much larger a unit's variance is after inverted dropout in training than at test.

    A unit x with mean mu and variance sigma^2 over the data; y = m x / (1 - p):
        training:  E[y] = mu,   E[y^2] = (sigma^2 + mu^2) / (1 - p),
                   Var_train(y) = (sigma^2 + mu^2) / (1 - p) - mu^2
        test:      y = x,       Var_test(y) = sigma^2
        ratio      Var_train / Var_test = (1 + p mu^2 / sigma^2) / (1 - p)   (>= 1)

    A BatchNorm layer after dropout estimates its running variance in training, so at test
    time it divides by a variance that is this ratio too large (Li et al., 2019).
    mean, var: tensors of the same shape (var > 0). Returns the ratio, same shape.
    """
    _validate.tensor(mean, "mean", floating=True)
    _validate.tensor(var, "var", floating=True)
    _validate.same_shape(mean, var, "mean", "var")
    if (var <= 0).any():
        raise ValueError("var must be positive")
    p = _check_p(p)
    return ((var + mean**2) / (1 - p) - mean**2) / var
