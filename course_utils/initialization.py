r"""Weight initialization for lecture 03: LeCun, Xavier (Glorot) and He (Kaiming).

Each scheme draws the weights of a layer with fan_in inputs and fan_out outputs from a
zero-mean distribution whose variance keeps the activations (forward) or the gradients
(backward) at a constant scale through depth:

    scheme           variance Var(w)                 normal             uniform on [-a, a]
    LeCun            gain^2 / fan_in                 lecun_normal_
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

(Keras' ``lecun_normal`` draws from a normal truncated at two standard deviations; ours,
like PyTorch's, does not truncate.)
"""

import math

import torch

from course_utils import _validate

__all__ = [
    "fan_in_and_fan_out",
    "he_normal_",
    "he_uniform_",
    "lecun_normal_",
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
