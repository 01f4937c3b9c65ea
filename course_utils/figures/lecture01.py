"""Lecture 01 figures: losses against metrics, losses and their derivatives, line fits,
gradient magnitudes. Each returns the Axes it drew on, or the Figure when it has several
panels.
"""

import matplotlib.pyplot as plt
import numpy as np

from course_utils.plotting import as_array

__all__ = [
    "plot_gradient_magnitudes",
    "plot_line_fits",
    "plot_loss_and_metric",
    "plot_losses_and_derivatives",
]


def plot_loss_and_metric(
    param, loss, metric, *, param_label, loss_label="loss", metric_label="accuracy", marks=None
):
    """A loss (smooth) above a metric (piecewise constant) as one parameter varies.

    param, loss, metric: 1-D, the same length. marks: optional {label: x positions}, drawn
    as ticks along the bottom of the metric panel (e.g. where the data points are).
    Returns the figure.
    """
    fig, (ax_loss, ax_metric) = plt.subplots(
        2, 1, figsize=(8, 4.6), sharex=True, layout="constrained"
    )
    param = as_array(param)
    ax_loss.plot(param, as_array(loss), color="tab:blue")
    ax_loss.set_ylabel(loss_label)
    ax_loss.set_title(f"{loss_label}: smooth, a useful gradient everywhere")
    ax_metric.plot(param, as_array(metric), color="tab:orange", drawstyle="steps-mid")
    ax_metric.set(xlabel=param_label, ylabel=metric_label)
    ax_metric.set_title(f"{metric_label}: flat between jumps, gradient 0 or undefined")
    bottom = ax_metric.get_ylim()[0]
    for i, (label, positions) in enumerate((marks or {}).items()):
        positions = as_array(positions)
        ax_metric.plot(
            positions,
            np.full(len(positions), bottom),
            "|",
            color=f"C{i + 3}",
            markersize=14,
            markeredgewidth=2,
            label=label,
            clip_on=False,
        )
    if marks:
        ax_metric.legend(loc="upper right", fontsize="small")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    return fig


def plot_losses_and_derivatives(r, curves, *, xlabel="residual $r = \\hat y - y$"):
    """Left: each loss as a function of r; right: its derivative.

    curves: {label: (loss values, derivative values)} or {label: (loss, derivative, fmt)},
    each 1-D like r; fmt is a matplotlib line format ("--" draws a curve dashed, so that one
    lying on another stays visible). Returns the figure.
    """
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    r = as_array(r)
    for label, (loss, grad, *fmt) in curves.items():
        (line,) = ax_loss.plot(r, as_array(loss), *fmt, label=label, linewidth=2)
        ax_grad.plot(r, as_array(grad), *fmt, label=label, color=line.get_color(), linewidth=2)
    ax_loss.set(xlabel=xlabel, ylabel="loss $\\ell(r)$", title="loss")
    ax_grad.set(xlabel=xlabel, ylabel="$d\\ell / dr$", title="derivative: how hard it pulls")
    ax_loss.legend()
    for ax in (ax_loss, ax_grad):
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
    return fig


def plot_line_fits(x, y, lines, *, outliers=None, true_line=None, ax=None):
    """Data points, the outliers among them, and one fitted line per entry of ``lines``.

    lines: {label: (slope, intercept)}. outliers: optional boolean mask over the points,
    drawn as red crosses. true_line: optional (slope, intercept), drawn dashed.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    x, y = as_array(x), as_array(y)
    mask = np.zeros(len(x), dtype=bool) if outliers is None else as_array(outliers).astype(bool)
    ax.scatter(x[~mask], y[~mask], s=18, color="gray", label="data")
    if mask.any():
        ax.scatter(x[mask], y[mask], s=40, color="tab:red", marker="x", label="outliers")
    ends = np.array([x.min(), x.max()])
    if true_line is not None:
        ax.plot(ends, true_line[0] * ends + true_line[1], "k--", linewidth=1, label="true line")
    for label, (slope, intercept) in lines.items():
        ax.plot(ends, float(slope) * ends + float(intercept), linewidth=2, label=label)
    ax.set(xlabel="x", ylabel="y")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_gradient_magnitudes(z, panels, *, xlabel="logit $z$", shade=None, shade_label=None):
    """|gradient| against a logit on a log scale, one panel per entry of ``panels``.

    panels: {title: {label: gradient values}}, each 1-D like z. shade: optional (low, high)
    range of z to shade in every panel (e.g. where the prediction is confidently wrong).
    Returns the figure.
    """
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.8), sharey=True, layout="constrained"
    )
    axes = np.atleast_1d(axes)
    z = as_array(z)
    for ax, (title, curves) in zip(axes, panels.items(), strict=True):
        if shade is not None:
            ax.axvspan(*shade, color="tab:red", alpha=0.08, label=shade_label)
        for label, grad in curves.items():
            ax.semilogy(z, np.abs(as_array(grad)), label=label)
        ax.set(xlabel=xlabel, title=title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("$|\\partial L / \\partial z|$")
    axes[0].legend(fontsize="small")
    return fig
