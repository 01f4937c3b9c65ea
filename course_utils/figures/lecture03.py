"""Lecture 03 figures: per-layer histograms, activation functions and their derivatives, and
the activations of each layer during training. Each returns its Figure.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import NullLocator

from course_utils import initialization
from course_utils.plotting import as_array

__all__ = [
    "plot_activation_functions",
    "plot_layer_histograms",
    "plot_training_activations",
]


def plot_layer_histograms(panels, *, value_range, bins=60, xlabel="activation value"):
    """One panel per entry of ``panels = {title: [values of layer 1, layer 2, ...]}``.

    Each layer's values are drawn as a step histogram of the fraction of its values per
    bin (``bins`` equal bins over ``value_range``; values beyond the range are counted in
    the edge bins), on a log scale, coloured from dark (layer 1) to light (last layer).
    Returns the figure; panel i's lines are ``fig.axes[i].lines``, one per layer.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n + 1.0, 3.4), sharey=True, layout="tight")
    axes = np.atleast_1d(axes)
    edges = np.linspace(*value_range, bins + 1)
    for ax, (title, layers) in zip(axes, panels.items(), strict=True):
        colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(layers)))
        for k, (values, color) in enumerate(zip(layers, colors, strict=True), start=1):
            values = np.clip(as_array(values).ravel(), *value_range)
            counts, _ = np.histogram(values, bins=edges)
            fraction = np.append(counts, counts[-1]) / values.size
            ax.step(edges, fraction, where="post", color=color, label=f"layer {k}")
        ax.set(title=title, xlabel=xlabel, yscale="log", ylim=(1e-4, 1.5))
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks double the drawing time
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of values per bin")
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside
    return fig


def _maxout(x, weights=(1.0, -0.5), biases=(0.0, -1.0)):
    r"""Maxout of two scalar pieces, max(z, -0.5 z - 1) (Goodfellow et al., 2013)."""
    x = torch.as_tensor(x)
    pieces = torch.stack([w * x + b for w, b in zip(weights, biases, strict=True)])
    return pieces.amax(dim=0)


_LABELS = {
    "scaled_tanh": "1.7159 tanh(2z/3)",
    "relu": "ReLU",
    "leaky_relu": "leaky ReLU (α = 0.01)",
    "prelu": "PReLU (α = 0.25, its start)",
    "elu": "ELU",
    "gelu": "GELU",
    "silu": "Swish / SiLU",
    "mish": "Mish",
    "maxout": "maxout: max(z, -0.5z - 1)",
}


_STYLES = ("-", "--", "-.", ":")


def plot_activation_functions(groups, x=None):
    """Activation functions (top row) and their derivatives (bottom row), one column per group.

    groups: {column title: [names]}, each name one of ``initialization.ACTIVATIONS`` or
    "maxout" (here max(z, -0.5 z - 1): the maximum of two linear pieces). Derivatives come
    from autograd, in float64, on ``x`` (default: 801 points on [-5, 5]). Returns the
    figure; ``fig.axes`` lists the top row (functions), then the bottom row (derivatives).
    """
    x = torch.linspace(-5, 5, 801, dtype=torch.float64) if x is None else torch.as_tensor(x)
    fig, axes = plt.subplots(
        2, len(groups), figsize=(3.7 * len(groups), 5.6), sharex=True, layout="tight",
        squeeze=False,
    )  # fmt: skip
    for col, (title, names) in enumerate(groups.items()):
        ax_f, ax_d = axes[0, col], axes[1, col]
        for i, name in enumerate(names):
            z = x.detach().clone().requires_grad_()
            f = _maxout if name == "maxout" else initialization.ACTIVATIONS[name]().double()
            y = f(z)
            (slope,) = torch.autograd.grad(y.sum(), z)
            label = _LABELS.get(name, name)
            # Where curves coincide (ReLU and leaky ReLU, derivatives of 1), the earlier ones
            # are wider and the later ones dashed, so every curve stays visible.
            style = {"linestyle": _STYLES[i % len(_STYLES)], "linewidth": 3.2 - 0.6 * i}
            (line,) = ax_f.plot(x, y.detach(), label=label, **style)
            ax_d.plot(x, slope, color=line.get_color(), label=label, **style)
        ax_f.set(title=title)
        ax_d.set(xlabel="$z$")
        for ax in (ax_f, ax_d):
            ax.axhline(0, color="black", linewidth=0.6)
            ax.axvline(0, color="black", linewidth=0.6)
            ax.grid(alpha=0.3)
        ax_f.legend(fontsize="x-small", loc="upper left")
    axes[0, 0].set_ylabel("$f(z)$")
    axes[1, 0].set_ylabel("$f'(z)$")
    return fig


def plot_training_activations(runs, *, ylabel="activation value"):
    """Mean and spread of each layer's activations during training, one panel per run.

    runs: {title: (steps (T,), means (T, L), stds (T, L))}: at each recorded step, the
    mean and the std of layer l's activations on a fixed batch. Each layer is a line (its
    mean) in a band (mean +- std). Returns the figure; panel i is ``fig.axes[i]``.
    """
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.5), sharey=True, layout="tight")
    axes = np.atleast_1d(axes)
    for ax, (title, (steps, means, stds)) in zip(axes, runs.items(), strict=True):
        steps, means, stds = as_array(steps), as_array(means), as_array(stds)
        for layer in range(means.shape[1]):
            (line,) = ax.plot(steps, means[:, layer], label=f"layer {layer + 1}")
            low, high = means[:, layer] - stds[:, layer], means[:, layer] + stds[:, layer]
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set(title=title, xlabel="training step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize="small", loc="best")
    return fig
