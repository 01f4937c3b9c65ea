"""Lecture 04 figures: covariate shift, the drift of hidden pre-activations during training,
and the Jacobian of a layer over a batch. Each returns the Axes it drew on, or the Figure
when it has several panels.
"""

import matplotlib.pyplot as plt
import numpy as np

from course_utils.plotting import as_array

__all__ = ["plot_activation_drift", "plot_batch_jacobians", "plot_covariate_shift"]


def plot_covariate_shift(x, truth, densities, fits, *, ax=None):
    """A function, where two distributions put their inputs, and models fitted to each.

    x: (n,) grid; truth: (n,) the true function on it; densities: {label: (n,) density of
    the inputs}, drawn as shaded areas on a second y axis (right); fits: {label: (n,)
    predictions of a model}, drawn as lines in the colors of the densities they belong to
    (in order). Returns the main Axes; the densities' Axes is ``ax.right``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    x = as_array(x)
    right = ax.twinx()
    for i, (label, density) in enumerate(densities.items()):
        right.fill_between(x, as_array(density), color=f"C{i}", alpha=0.2, lw=0, label=label)
    right.set_ylim(0, 2.5 * max(as_array(d).max() for d in densities.values()))
    right.set_ylabel("input density")
    ax.plot(x, as_array(truth), color="black", lw=2, label="true function")
    for i, (label, values) in enumerate(fits.items()):
        ax.plot(x, as_array(values), color=f"C{i}", lw=2, ls="--", label=label)
    ax.set(xlabel="input x", ylabel="output y", xlim=(x[0], x[-1]))
    ax.set_zorder(right.get_zorder() + 1)  # lines above the shaded densities
    ax.patch.set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=3, fontsize="small"
    )
    ax.right = right
    return ax


def plot_activation_drift(panels, *, percentiles=(15, 50, 85), ylabel="pre-activation"):
    """How the distribution of a few hidden units' inputs moves during training.

    panels: {title: (steps, values)} with steps (T,) and values (T, units, 3): for each step
    and unit the ``percentiles`` of that unit's input over the batch (low, median, high).
    Each unit gets a color; its median is a line and the band between the other two is
    shaded, as in Ioffe & Szegedy's figure 1. The panels share their y axis.
    Returns the figure.
    """
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.8 * len(panels), 3.6), sharey=True, layout="constrained"
    )
    axes = np.atleast_1d(axes)
    low, _, high = percentiles
    for ax, (title, (steps, values)) in zip(axes, panels.items(), strict=True):
        steps, values = as_array(steps), as_array(values)
        for unit in range(values.shape[1]):
            color = f"C{unit}"
            ax.fill_between(steps, values[:, unit, 0], values[:, unit, 2], color=color, alpha=0.2)
            ax.plot(steps, values[:, unit, 1], color=color, lw=1.5, label=f"unit {unit}")
        ax.set(title=title, xlabel="training step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{ylabel}\n(median, {low}th-{high}th percentile)")
    axes[0].legend(fontsize="small", loc="best")
    return fig


def plot_batch_jacobians(jacobians, *, batch_size, features):
    """Jacobians d vec(y) / d vec(x) of layers applied to a batch, as images.

    jacobians: {title: (N*F_out, N*F_in) matrix}, rows and columns ordered example by example
    (all features of example 1, then of example 2, ...), so that blocks of the grid lines
    drawn every ``features`` entries are example-to-example blocks: a layer that treats the
    examples independently has non-zero blocks only on the diagonal. Zero entries are
    white; the color scale is symmetric. Returns the figure.
    """
    fig, axes = plt.subplots(
        1, len(jacobians), figsize=(3.9 * len(jacobians), 3.9), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    size = batch_size * features
    for ax, (title, jac) in zip(axes, jacobians.items(), strict=True):
        jac = as_array(jac)
        if jac.shape != (size, size):
            raise ValueError(
                f"each Jacobian must have shape ({size}, {size}) for batch_size={batch_size} "
                f"and features={features}, got {jac.shape}"
            )
        bound = np.abs(jac).max() or 1.0
        image = ax.imshow(jac, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
        for k in range(1, batch_size):
            ax.axhline(k * features - 0.5, color="gray", lw=0.8)
            ax.axvline(k * features - 0.5, color="gray", lw=0.8)
        ticks = np.arange(batch_size) * features + (features - 1) / 2
        labels = [f"ex. {i + 1}" for i in range(batch_size)]
        ax.set_xticks(ticks, labels, fontsize="small")
        ax.set_yticks(ticks, labels, fontsize="small")
        ax.set(title=title, xlabel="input x (example, feature)", ylabel="output y")
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
