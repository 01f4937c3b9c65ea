r"""Weight initialization for lecture 03, and the tools to see what it does to a deep network.

**Schemes.** Each draws the weights of a layer with fan_in inputs and fan_out outputs from a
zero-mean distribution whose variance keeps the activations (forward) or the gradients
(backward) at a constant scale through depth:

    scheme           variance Var(w)                 normal             uniform on [-a, a]
    fixed scale      gain^2                          standard_normal_
    "standard" (old) gain^2 / (3 fan_in)                                fan_in_uniform_
    LeCun            gain^2 / fan_in                 lecun_normal_      lecun_uniform_
    Xavier/Glorot    gain^2 * 2 / (fan_in + fan_out) xavier_normal_     xavier_uniform_
    He/Kaiming       gain^2 * 2 / fan_in             he_normal_         he_uniform_

A uniform distribution on [-a, a] has variance a^2 / 3, so a = sqrt(3 Var(w)): for
Xavier a = gain * sqrt(6 / (fan_in + fan_out)), for He a = gain * sqrt(6 / fan_in).

All functions fill ``tensor`` in place (without recording it for autograd) and return
it, with the signature ``(tensor, *, gain=1.0, generator=None)``; fan_in and fan_out
are computed as torch.nn.init does (``fan_in_and_fan_out``). With the same generator
they give the same values as their torch.nn.init twins:

    xavier_uniform_(w, gain=g)  ==  torch.nn.init.xavier_uniform_(w, gain=g)
    xavier_normal_(w, gain=g)   ==  torch.nn.init.xavier_normal_(w, gain=g)
    he_normal_(w)               ==  torch.nn.init.kaiming_normal_(w, nonlinearity="relu")
    he_uniform_(w)              ==  torch.nn.init.kaiming_uniform_(w, nonlinearity="relu")
    lecun_normal_(w)            ==  torch.nn.init.kaiming_normal_(w, nonlinearity="linear")
    lecun_uniform_(w)           ==  torch.nn.init.kaiming_uniform_(w, nonlinearity="linear")
    fan_in_uniform_(w)          ==  torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    standard_normal_(w, gain=s) ==  torch.nn.init.normal_(w, 0.0, s)

(Keras' ``lecun_normal`` draws from a normal truncated at two standard deviations; ours,
like PyTorch's, does not truncate. ``fan_in_uniform_`` is how PyTorch's ``nn.Linear``
initializes its weights by default.)

**Deep networks and their statistics.** ``deep_mlp`` builds a stack of equal-width layers
with a chosen activation and scheme; ``layer_statistics`` runs one batch forward and
backward through any model and reports, per ``nn.Linear`` layer, the mean and standard
deviation of its pre-activations, activations and back-propagated gradients, and the
fraction of saturated (tanh, sigmoid) or dead (ReLU) units. ``initial_loss`` and
``update_to_data_ratios`` are the other checks worth making before training for long.
"""

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from course_utils import _validate

__all__ = [
    "ACTIVATIONS",
    "INIT_SCHEMES",
    "LayerStats",
    "ScaledTanh",
    "activation_stds",
    "dead_fraction",
    "deep_mlp",
    "fan_in_and_fan_out",
    "fan_in_uniform_",
    "he_normal_",
    "he_uniform_",
    "initial_loss",
    "layer_statistics",
    "leaky_relu_gain",
    "lecun_normal_",
    "lecun_uniform_",
    "mlp_from_weights",
    "relu_activation_std",
    "saturated_fraction",
    "standard_normal_",
    "update_to_data_ratio",
    "update_to_data_ratios",
    "xavier_normal_",
    "xavier_uniform_",
]


def fan_in_and_fan_out(shape) -> tuple[int, int]:
    r"""fan_in and fan_out of a weight of this shape, as torch.nn.init computes them.

        shape (out, in)              fan_in = in,          fan_out = out          (nn.Linear)
        shape (out, in, k1, k2, ..)  fan_in = in * k1 k2.., fan_out = out * k1 k2..  (conv)

    A weight needs at least 2 dimensions.
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"tensor must have at least 2 dimensions (out, in, ...) for fan_in and fan_out, "
            f"got shape {shape}"
        )
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _check(tensor, gain, generator) -> tuple[int, int]:
    _validate.tensor(tensor, "tensor", floating=True)
    _validate.number(gain, "gain", low=0.0, low_open=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")
    return fan_in_and_fan_out(tensor.shape)


def _normal_(tensor, std, generator):
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _uniform_(tensor, bound, generator):
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def lecun_normal_(tensor, *, gain=1.0, generator=None):
    r"""LeCun (1998): w ~ N(0, gain^2 / fan_in). Keeps Var(z) = Var(x) for linear units."""
    fan_in, _ = _check(tensor, gain, generator)
    return _normal_(tensor, gain / math.sqrt(fan_in), generator)


def xavier_normal_(tensor, *, gain=1.0, generator=None):
    r"""Glorot & Bengio (2010): w ~ N(0, gain^2 * 2 / (fan_in + fan_out)).

    The compromise between the forward condition Var(w) = 1/fan_in and the backward
    condition Var(w) = 1/fan_out.
    """
    fan_in, fan_out = _check(tensor, gain, generator)
    return _normal_(tensor, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def xavier_uniform_(tensor, *, gain=1.0, generator=None):
    r"""Glorot & Bengio (2010): w ~ U[-a, a] with a = gain * sqrt(6 / (fan_in + fan_out)).

    Variance a^2 / 3 = gain^2 * 2 / (fan_in + fan_out), as ``xavier_normal_``.
    """
    fan_in, fan_out = _check(tensor, gain, generator)
    return _uniform_(tensor, gain * math.sqrt(6.0 / (fan_in + fan_out)), generator)


def he_normal_(tensor, *, gain=1.0, generator=None):
    r"""He et al. (2015): w ~ N(0, gain^2 * 2 / fan_in).

    A ReLU zeroes half of a symmetric pre-activation, halving its second moment; the
    factor 2 makes up for it, so Var(z) stays constant through ReLU layers.
    """
    fan_in, _ = _check(tensor, gain, generator)
    return _normal_(tensor, gain * math.sqrt(2.0 / fan_in), generator)


def he_uniform_(tensor, *, gain=1.0, generator=None):
    r"""He et al. (2015), uniform: w ~ U[-a, a] with a = gain * sqrt(6 / fan_in)."""
    fan_in, _ = _check(tensor, gain, generator)
    return _uniform_(tensor, gain * math.sqrt(6.0 / fan_in), generator)


def lecun_uniform_(tensor, *, gain=1.0, generator=None):
    r"""LeCun's variance in uniform form: w ~ U[-a, a], a = gain * sqrt(3 / fan_in).

    Variance a^2 / 3 = gain^2 / fan_in. This is Caffe's "xavier" filler with its default
    ``variance_norm: FAN_IN`` (and Keras' ``lecun_uniform``).
    """
    fan_in, _ = _check(tensor, gain, generator)
    return _uniform_(tensor, gain * math.sqrt(3.0 / fan_in), generator)


def fan_in_uniform_(tensor, *, gain=1.0, generator=None):
    r"""The old heuristic w ~ U[-a, a], a = gain / sqrt(fan_in): variance gain^2 / (3 fan_in).

    Glorot & Bengio (2010) call it the "standard" initialization and compare their
    normalized one with it. It is also PyTorch's default for ``nn.Linear`` weights
    (``kaiming_uniform_`` with ``a = sqrt(5)``): its variance is a third of LeCun's.
    """
    fan_in, _ = _check(tensor, gain, generator)
    return _uniform_(tensor, gain / math.sqrt(fan_in), generator)


def standard_normal_(tensor, *, gain=1.0, generator=None):
    r"""A fixed scale, whatever the layer's size: w ~ N(0, gain^2) (std = gain).

    ``standard_normal_(w, gain=0.01)`` is the "small random numbers" of early practice;
    the notebook uses it to show what a scale that ignores fan_in does to a deep network.
    """
    _check(tensor, gain, generator)
    return _normal_(tensor, gain, generator)


# name -> function (tensor, *, gain, generator); deep_mlp and the explorer choose by name.
INIT_SCHEMES: dict[str, Callable] = {
    "standard_normal": standard_normal_,
    "fan_in_uniform": fan_in_uniform_,
    "lecun_normal": lecun_normal_,
    "lecun_uniform": lecun_uniform_,
    "xavier_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_,
    "he_normal": he_normal_,
    "he_uniform": he_uniform_,
}


def leaky_relu_gain(negative_slope) -> float:
    r"""The gain that keeps E[z^2] constant through leaky-ReLU layers: sqrt(2 / (1 + alpha^2)).

    For z symmetric around 0, E[leaky_relu(z)^2] = (1 + alpha^2) / 2 * E[z^2] (the positive
    half passes unchanged, the negative half is scaled by alpha), so the weights need
    Var(w) = gain^2 / fan_in with gain^2 = 2 / (1 + alpha^2): 2 for a ReLU (alpha = 0, He),
    1 for the identity (alpha = 1, LeCun). Equals ``torch.nn.init.calculate_gain("leaky_relu",
    alpha)``.
    """
    alpha = _validate.number(negative_slope, "negative_slope")
    return math.sqrt(2.0 / (1.0 + alpha**2))


def relu_activation_std(depth, mult, input_second_moment=1.0) -> torch.Tensor:
    r"""Predicted std of the activations of layers 1..depth of a ReLU MLP with He-with-mult weights.

    Weights w ~ N(0, mult * 2 / fan_in), biases 0, inputs with E[x_i^2] = q. For a layer
    z = W a (a the previous layer's output, independent of W), E[z^2] = fan_in Var(w) E[a^2];
    z is symmetric, so a ReLU keeps half of its second moment, E[relu(z)^2] = E[z^2] / 2.
    Hence E[a_k^2] = mult E[a_{k-1}^2] = q mult^k. With z Gaussian (exact for infinitely
    wide layers), E[relu(z)] = std(z) / sqrt(2 pi), so

        std(a_k) = sqrt(q mult^k (1 - 1/pi)),   k = 1, ..., depth,

    a straight line of slope log(mult) / 2 in log std against k. Returns a float64 tensor
    of shape (depth,).
    """
    _validate.integer(depth, "depth", low=1)
    _validate.number(mult, "mult", low=0.0, low_open=True)
    q = _validate.number(input_second_moment, "input_second_moment", low=0.0, low_open=True)
    k = torch.arange(1, depth + 1, dtype=torch.float64)
    return torch.sqrt(q * (1.0 - 1.0 / math.pi) * mult**k)


# --- deep networks -----------------------------------------------------------------------


class ScaledTanh(nn.Module):
    r"""LeCun's scaled tanh, f(x) = 1.7159 tanh(2x / 3) (LeCun et al., 1998): f(+-1) = +-1."""

    def forward(self, x):
        return 1.7159 * torch.tanh(2.0 * x / 3.0)


# name -> module factory. "saturating" ones have a saturated fraction, "relu" a dead one.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "scaled_tanh": ScaledTanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # negative slope 0.01
    "prelu": nn.PReLU,  # one learned slope, 0.25 at the start
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,  # Swish with beta = 1
    "mish": nn.Mish,
}


def _activation_module(activation: str) -> nn.Module:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]()


def _init_function(init):
    if callable(init):
        return init
    if init not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {list(INIT_SCHEMES)} or a function, got {init!r}")
    return INIT_SCHEMES[init]


def deep_mlp(
    depth,
    width,
    activation,
    init,
    *,
    gain=1.0,
    in_features=None,
    out_features=None,
    generator=None,
    dtype=torch.float32,
) -> nn.Sequential:
    r"""An MLP of ``depth`` hidden layers of ``width`` units, every weight drawn by ``init``.

        x (in_features) -> [Linear(width) -> activation] x depth -> Linear(out_features)

    activation: a name in ``ACTIVATIONS`` ("tanh", "relu", "sigmoid", ...).
    init: a name in ``INIT_SCHEMES`` ("xavier_normal", "he_normal", ...) or a function
        ``init(weight, *, gain, generator)`` that fills a weight in place. Every Linear
        weight (the output layer's too) is drawn by it with this ``gain``; biases are 0.
    in_features: the input size, ``width`` by default. out_features: the size of a final
        linear layer (e.g. 10 logits); None leaves it out, so the network ends with the
        last hidden layer's activation.
    generator: the source of every weight, drawn layer by layer from the input up; the
        global random state is not touched.
    """
    _validate.integer(depth, "depth", low=1)
    _validate.integer(width, "width", low=1)
    in_features = (
        width if in_features is None else _validate.integer(in_features, "in_features", low=1)
    )
    if out_features is not None:
        _validate.integer(out_features, "out_features", low=1)
    _activation_module(activation)  # refuse an unknown name before building anything
    fill = _init_function(init)
    sizes = [in_features] + [width] * depth
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [_linear(fan_in, fan_out, fill, gain, generator, dtype)]
        layers += [_activation_module(activation).to(dtype)]
    if out_features is not None:
        layers.append(_linear(width, out_features, fill, gain, generator, dtype))
    return nn.Sequential(*layers)


def _linear(fan_in, fan_out, fill, gain, generator, dtype) -> nn.Linear:
    # skip_init: no default initialization (which would draw from the global RNG) first
    layer = nn.utils.skip_init(nn.Linear, fan_in, fan_out, dtype=dtype)
    fill(layer.weight, gain=gain, generator=generator)
    with torch.no_grad():
        layer.bias.zero_()
    return layer


def mlp_from_weights(weights, biases, activation) -> nn.Sequential:
    r"""``Linear -> activation`` for each (W, b) pair, with these exact weights (copied).

    weights: tensors of shapes (n_1, n_0), (n_2, n_1), ...; biases: (n_1,), (n_2,), ....
    The activation follows every layer, the last one included.
    """
    if len(weights) != len(biases) or len(weights) == 0:
        raise ValueError(
            f"weights and biases must be non-empty and of the same length, got "
            f"{len(weights)} and {len(biases)}"
        )
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        _validate.tensor(w, f"weights[{i}]", floating=True)
        if w.dim() != 2 or b.shape != (w.shape[0],):
            raise ValueError(
                f"weights[{i}] must be (out, in) and biases[{i}] (out,), got "
                f"{tuple(w.shape)} and {tuple(b.shape)}"
            )
        if i > 0 and w.shape[1] != weights[i - 1].shape[0]:
            raise ValueError(
                f"weights[{i}] takes {w.shape[1]} inputs but layer {i - 1} has "
                f"{weights[i - 1].shape[0]} outputs"
            )
        layer = nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        layers += [layer, _activation_module(activation).to(w.dtype)]
    return nn.Sequential(*layers)


# --- statistics of a forward and backward pass ------------------------------------------

SATURATION = 0.99  # tanh: |a| > 0.99; sigmoid: a outside [0.01, 0.99]
_ACTIVATION_NAMES = {
    nn.Identity: "identity",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    ScaledTanh: "scaled_tanh",
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Mish: "mish",
}


def saturated_fraction(a, activation) -> torch.Tensor:
    r"""The fraction of entries of ``a`` (outputs of ``activation``) in its flat tails.

        tanh:        |a| > 0.99                 (|z| > 2.65, where tanh'(z) < 0.02)
        scaled_tanh: |a| > 0.99 * 1.7159        (the inner tanh saturated)
        sigmoid:     a < 0.01 or a > 0.99       (|z| > 4.6, where sigmoid'(z) < 0.01)

    Returns a 0-d tensor of a's dtype.
    """
    _validate.tensor(a, "a", floating=True)
    if activation == "tanh":
        flat = a.abs() > SATURATION
    elif activation == "scaled_tanh":
        flat = a.abs() > SATURATION * 1.7159
    elif activation == "sigmoid":
        flat = (a < 1 - SATURATION) | (a > SATURATION)
    else:
        raise ValueError(
            f"activation must be 'tanh', 'scaled_tanh' or 'sigmoid' (the saturating ones), "
            f"got {activation!r}"
        )
    return flat.to(a.dtype).mean()


def dead_fraction(z) -> torch.Tensor:
    r"""The fraction of ReLU units that are dead on this batch of pre-activations z (N, units).

    A unit is dead on the batch when z <= 0 for every example: its ReLU outputs 0 for all
    of them and passes back no gradient (PyTorch's ReLU has derivative 0 at z = 0), so its
    incoming weights get no gradient from this batch. Returns a 0-d tensor of z's dtype.
    """
    _validate.tensor(z, "z", floating=True)
    if z.dim() != 2 or z.shape[0] == 0:
        raise ValueError(f"z must have shape (N, units) with N >= 1, got {tuple(z.shape)}")
    alive = (z > 0).any(dim=0)
    return (~alive).to(z.dtype).mean()


@dataclass
class LayerStats:
    """One ``nn.Linear`` layer in one forward and backward pass (``layer_statistics``).

    z = the layer's output (the pre-activation), a = the output of the activation that
    follows it (None for a final linear layer), dz = dL/dz, the gradient back-propagated
    to z; std are over all entries (batch and units, ``Tensor.std``).
    """

    activation: str | None  # the activation's name (see ACTIVATIONS), None if none follows
    pre_mean: float
    pre_std: float
    act_mean: float | None
    act_std: float | None
    grad_mean: float
    grad_std: float
    weight_grad_std: float  # std of dL/dW
    saturated: float | None  # tanh, scaled_tanh, sigmoid: ``saturated_fraction``
    dead: float | None  # relu: ``dead_fraction``
    pre: torch.Tensor  # z, detached
    act: torch.Tensor | None  # a, detached
    grad: torch.Tensor  # dz


def _record(model, x, *, backward, y=None, loss_fn=None, generator=None):
    """Run ``model(x)`` (and a backward pass) with hooks on every nn.Linear and activation.

    Returns one dict per Linear call, in execution order: its input "x", its output "z",
    the name and output "act" of the activation applied to z (None if there is none) and,
    after the backward pass, "dz" = dL/dz. Every hook is removed before returning, even
    if the model raises.
    """
    records, handles = [], []

    def linear_hook(module, inputs, output):
        record = {"x": inputs[0].detach(), "z": output.detach(), "act": None, "name": None}
        record["live"] = output  # to recognise the activation applied to this very tensor
        if backward:  # a backward hook on z: receives dL/dz during the backward pass

            def grad_hook(grad, record=record):
                record["dz"] = grad.detach()

            handles.append(output.register_hook(grad_hook))
        records.append(record)

    def activation_hook(module, inputs, output):
        if records and inputs[0] is records[-1]["live"]:
            records[-1]["act"] = output.detach()
            records[-1]["name"] = _ACTIVATION_NAMES[type(module)]

    try:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                handles.append(module.register_forward_hook(linear_hook))
            elif type(module) in _ACTIVATION_NAMES:
                handles.append(module.register_forward_hook(activation_hook))
        if not backward:
            with torch.no_grad():
                model(x)
        else:
            with torch.enable_grad():
                x = x.detach().requires_grad_()  # so that every z requires grad
                output = model(x)
                if y is None:
                    g = torch.randn(output.shape, generator=generator, dtype=output.dtype)
                    loss = (output * g).sum()  # dL/d(output) = g, standard normal entries
                else:
                    loss = loss_fn(output, y)
                torch.autograd.grad(loss, x)  # runs the hooks; leaves every .grad alone
    finally:
        for handle in handles:
            handle.remove()
    if not records:
        raise ValueError("model must contain at least one nn.Linear layer")
    for record in records:
        del record["live"]
    return records


def layer_statistics(model, x, y=None, *, loss_fn=None, generator=None) -> list[LayerStats]:
    r"""Per ``nn.Linear`` layer of ``model``: statistics of one forward and backward pass on x.

    Forward hooks record each Linear's output z (the pre-activation) and, when one of the
    ``ACTIVATIONS`` is applied to z, its output a; a backward hook on each z records dL/dz.
    All hooks are removed afterwards, and the model's ``.grad`` fields are not touched
    (the backward pass is ``torch.autograd.grad`` with respect to x).

    The loss: with targets ``y``, ``loss_fn(model(x), y)`` (``losses.cross_entropy`` by
    default); without, the gradient injected at the output is g ~ N(0, 1) drawn from
    ``generator`` (L = <g, model(x)>), which isolates how depth and initialization scale a
    gradient on its way down.

    Also: dL/dW = dz^T x of each layer (its std), the saturated fraction for tanh,
    scaled tanh and sigmoid layers and the dead fraction for ReLU layers (see
    ``saturated_fraction`` and ``dead_fraction``). Returns a list of ``LayerStats``, from
    the input up.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _validate.tensor(x, "x", floating=True, min_dim=1)
    if y is not None and loss_fn is None:
        from course_utils import losses

        loss_fn = losses.cross_entropy
    records = _record(model, x, backward=True, y=y, loss_fn=loss_fn, generator=generator)
    stats = []
    for r in records:
        z, a, dz, name = r["z"], r["act"], r["dz"], r["name"]
        dw = dz.reshape(-1, dz.shape[-1]).T @ r["x"].reshape(-1, r["x"].shape[-1])
        saturated = dead = None
        if name in ("tanh", "scaled_tanh", "sigmoid"):
            saturated = saturated_fraction(a, name).item()
        if name == "relu":
            dead = dead_fraction(z.reshape(-1, z.shape[-1])).item()
        stats.append(
            LayerStats(
                activation=name,
                pre_mean=z.mean().item(),
                pre_std=z.std().item(),
                act_mean=None if a is None else a.mean().item(),
                act_std=None if a is None else a.std().item(),
                grad_mean=dz.mean().item(),
                grad_std=dz.std().item(),
                weight_grad_std=dw.std().item(),
                saturated=saturated,
                dead=dead,
                pre=z,
                act=a,
                grad=dz,
            )
        )
    return stats


def activation_stds(x, weights, biases, activation) -> torch.Tensor:
    r"""The std of each layer's activations when x runs through ``mlp_from_weights(...)``.

        a_0 = x,   a_k = f(W_k a_{k-1} + b_k),   result_k = std(a_k) over all entries

    (``Tensor.std``, batch and units together), recorded by forward hooks on the activation
    modules. x: (N, n_0). Returns a tensor of shape (len(weights),) and x's dtype.
    """
    _validate.tensor(x, "x", floating=True, min_dim=2)
    model = mlp_from_weights(weights, biases, activation)
    records = _record(model, x, backward=False)
    return torch.stack([r["act"].std() for r in records])


# --- diagnostics at the first steps -----------------------------------------------------


def initial_loss(model, x, y) -> tuple[float, float]:
    r"""The mean cross-entropy of an (untrained) classifier on (x, y), and log C.

    A classifier whose C logits start near 0 predicts about 1/C for every class, so its
    first loss is about -log(1/C) = log C (2.30 for 10 classes). A first loss far above
    log C means confidently wrong logits, usually an output layer initialized too large.
    Returns (loss, log C), computed without gradients.
    """
    from course_utils import losses

    with torch.no_grad():
        logits = model(x)
        loss = losses.cross_entropy(logits, y).item()
    return loss, math.log(logits.shape[-1])


def update_to_data_ratio(before, after) -> float:
    r"""||after - before|| / ||before||: how much one step changed a parameter, relatively.

    Frobenius norms, computed in float64. A rough heuristic (Karpathy's CS231n notes) is
    that a healthy learning rate gives about 1e-3 for weight matrices: much less and the
    weights barely move, much more and they are being overwritten.
    """
    _validate.tensor(before, "before", floating=True)
    _validate.tensor(after, "after", floating=True)
    _validate.same_shape(before, after, "before", "after")
    norm = before.double().norm()
    if norm == 0:
        raise ValueError("before must not be all zeros (the ratio divides by its norm)")
    return ((after.double() - before.double()).norm() / norm).item()


def update_to_data_ratios(model, loss_fn, optimizer, batches) -> torch.Tensor:
    r"""Train for one step per (x, y) in ``batches``; return the update-to-data ratio per step.

    Each step: loss = loss_fn(model(x), y), zero_grad, backward, optimizer.step(). For the
    weight of every nn.Linear (in ``model.modules()`` order) it records
    ``update_to_data_ratio(weight before the step, weight after)``. Returns a float64 tensor
    of shape (steps, layers). The model is trained in place.
    """
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    if not weights:
        raise ValueError("model must contain at least one nn.Linear layer")
    ratios = []
    for x, y in batches:
        before = [w.detach().clone() for w in weights]
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ratios.append(
            [update_to_data_ratio(b, w.detach()) for b, w in zip(before, weights, strict=True)]
        )
    return torch.tensor(ratios, dtype=torch.float64)
