"""Matplotlib primitives that several lectures use; one lecture's own pictures live in
``course_utils.figures``.

Each helper draws into ``ax`` if given (else a new figure) and returns the Axes; helpers
with several panels return their Figure. None calls ``plt.show()``; the notebooks do that.

* ``plot_contour``: level curves of f(x, y) with optimizer trajectories on top.
* ``plot_paths_and_losses``: optimizer paths on contours, next to their loss curves.
* ``plot_losses``: loss curves from one or several ``training.fit`` histories.
* ``plot_panels``: named curves in one or several panels (measurements against theory).
* ``comparison_grid``: one small plot per (row value, column value) pair.
* ``plot_lr_schedule``: learning rate against epoch.
* ``plot_decision_boundary``: two-class 2-D data with classifiers' decision boundaries
  (and the Bayes boundary of ``data.gaussian_mixture``), on a ``decision_grid``.

Notebook output:

* ``png``: a figure as a compact (palette) PNG, about 4 times smaller than matplotlib's.
* ``compact_inline_figures``: make a notebook's inline figures such PNGs.
* ``as_array``: tensors, lists and arrays as one NumPy array (for figure helpers).
"""

import io

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.figure import Figure

__all__ = [
    "as_array",
    "compact_inline_figures",
    "compact_png",
    "comparison_grid",
    "decision_grid",
    "plot_contour",
    "plot_decision_boundary",
    "plot_losses",
    "plot_lr_schedule",
    "plot_panels",
    "plot_paths_and_losses",
    "png",
]


def compact_png(image: PIL.Image.Image, colors: int = 128) -> bytes:
    """An image as a palette PNG of at most ``colors`` colors.

    Plots are flat colors plus anti-aliased edges, so 128 colors look the same as the
    16 million of a true-color PNG, and the file is about 4 times smaller. That keeps
    the executed notebooks (which store every figure) small in git. The fast octree
    quantizer costs about 10 ms for a notebook-sized figure.
    """
    buffer = io.BytesIO()
    palette = image.convert("RGB").quantize(colors=colors, method=PIL.Image.Quantize.FASTOCTREE)
    palette.save(buffer, format="PNG")
    return buffer.getvalue()


def png(fig: Figure, dpi: int = 100, bbox_inches=None) -> bytes:
    """A figure rendered at ``dpi`` as a compact PNG (see ``compact_png``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches=bbox_inches)
    return compact_png(PIL.Image.open(buffer))


def compact_inline_figures() -> None:
    """Show this notebook's matplotlib figures as compact PNGs (call after %matplotlib inline)."""
    from IPython import get_ipython

    def inline_png(fig):
        # like the inline backend: trim to the drawn area unless a layout engine did so
        return png(fig, bbox_inches=None if fig.get_layout_engine() else "tight")

    get_ipython().display_formatter.formatters["image/png"].for_type(Figure, inline_png)


def as_array(values) -> np.ndarray:
    """Tensors (on any device, with or without grad), lists and arrays -> a NumPy array."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _points(trajectory):
    """A trajectory (tensor (T, 2), array, or list of points) as a (T, 2) NumPy array."""
    return torch.stack([torch.as_tensor(p) for p in trajectory]).detach().cpu().numpy()


def plot_contour(
    f,
    trajectories=None,
    *,
    xlim=(-2.0, 2.0),
    ylim=(-2.0, 2.0),
    levels=30,
    resolution=200,
    ax=None,
    xlabel="x",
    ylabel="y",
    minima=None,
):
    """Contour lines of a 2-D function, with one or several optimizer trajectories.

    f: maps a tensor of points (..., 2) to values (...), like ``data.rosenbrock``;
        it is evaluated on a resolution x resolution grid over xlim x ylim.
    trajectories: dict label -> points visited, shape (T, 2) (a tensor, an
        array, or a list of T points). Each is drawn as a line through its
        points, with a circle at the start and a cross at the end, in one color
        (3 lines per trajectory).
    levels: number of contour levels, or their values: for functions with a
        huge range, like Rosenbrock, use e.g. ``numpy.logspace(-1, 3, 15)``.
    xlabel, ylabel: the axis labels (name the parameters, e.g. "$w_1$", "$w_2$").
    minima: optional points, shape (m, 2), marked with black stars; they are drawn
        after the trajectories, so ``ax.lines[-1]`` holds them.
    """
    if ax is None:
        _, ax = plt.subplots()
    xs = torch.linspace(xlim[0], xlim[1], resolution, dtype=torch.float64)
    ys = torch.linspace(ylim[0], ylim[1], resolution, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        Z = f(torch.stack([X, Y], dim=-1))
    ax.contour(
        X.numpy(), Y.numpy(), Z.numpy(), levels=levels, cmap="viridis", linewidths=0.7, alpha=0.6
    )

    for label, trajectory in (trajectories or {}).items():
        points = _points(trajectory)
        (line,) = ax.plot(points[:, 0], points[:, 1], ".-", markersize=3, label=label)
        ax.plot(*points[0], "o", color=line.get_color())
        ax.plot(*points[-1], "x", color=line.get_color(), markersize=9, markeredgewidth=2)
    if minima is not None:
        stars = as_array(minima).reshape(-1, 2)
        ax.plot(stars[:, 0], stars[:, 1], "*", color="black", markersize=11, label="_minima")
    if any(label for label in trajectories or {}):
        ax.legend()
    ax.set(xlim=xlim, ylim=ylim, xlabel=xlabel, ylabel=ylabel)
    return ax


def plot_losses(histories, *, keys=("train_loss", "val_loss"), log_scale=False, ax=None):
    """Curves of ``keys`` against epoch for one history or a dict of named histories.

    histories: a ``training.fit`` history (dict key -> list, one entry per
        epoch), or a dict name -> history to compare runs. Each run gets one
        color; each key a line style (solid, dashed, dotted). Keys missing from
        a history are skipped. Epochs are numbered from 1 (the value after the
        first epoch).
    log_scale: logarithmic y axis, to see small losses keep decreasing.
    """
    if ax is None:
        _, ax = plt.subplots()
    if all(isinstance(values, list) for values in histories.values()):  # a single history
        histories = {"": histories}
    styles = ["-", "--", ":", "-."]
    for i, (name, history) in enumerate(histories.items()):
        for key, style in zip(keys, styles, strict=False):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                label = f"{name} {key.replace('_', ' ')}".strip()
                ax.plot(epochs, history[key], style, color=f"C{i}", label=label)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log" if log_scale else "linear")
    ax.legend()
    return ax


def comparison_grid(rows, cols, plot_fn, *, row_name="lr", col_name="batch size", figsize=None):
    """A grid of small plots: ``plot_fn(ax, row_value, col_value)`` fills each cell.

    E.g. rows = learning rates, cols = batch sizes, and plot_fn trains with that
    pair and draws its loss curve. Cells share their axes, so they compare at a
    glance, and each is titled "row_name=row_value, col_name=col_value".
    Returns the Figure; ``fig.axes`` lists the cells row by row.
    """
    if figsize is None:
        figsize = (3.2 * len(cols), 2.6 * len(rows))
    fig, axes = plt.subplots(
        len(rows),
        len(cols),
        figsize=figsize,
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for i, row_value in enumerate(rows):
        for j, col_value in enumerate(cols):
            plot_fn(axes[i, j], row_value, col_value)
            axes[i, j].set_title(
                f"{row_name}={row_value}, {col_name}={col_value}", fontsize="small"
            )
    return fig


def plot_lr_schedule(schedules, epochs, *, log_scale=False, ax=None):
    """Learning rate against epoch for one schedule or a dict of named schedules.

    schedules: a function epoch -> lr (e.g. a ``functools.partial`` of a
        ``course_utils.schedules`` function), or a dict name -> such function.
    Each is drawn as a staircase over epochs 0..epochs-1 (the rate is constant
    during an epoch).
    """
    if ax is None:
        _, ax = plt.subplots()
    if callable(schedules):
        schedules = {"": schedules}
    for name, schedule in schedules.items():
        lrs = [schedule(epoch) for epoch in range(epochs)]
        ax.plot(range(epochs), lrs, drawstyle="steps-post", label=name or None)
    ax.set(xlabel="epoch", ylabel="learning rate", yscale="log" if log_scale else "linear")
    if any(schedules):
        ax.legend()
    return ax


# The figures below use the "tight" layout engine: for plain rows of panels it looks the same
# as "constrained" and costs about a quarter less per draw (lecture 02 draws many figures).


def plot_paths_and_losses(
    f,
    paths,
    *,
    f_min=0.0,
    xlim=(-2.0, 2.0),
    ylim=(-2.0, 2.0),
    levels=30,
    resolution=120,
    floor=1e-16,
    title=None,
    figsize=(10, 3.8),
    xlabel="x",
    ylabel="y",
    minima=None,
):
    """Left: optimizer paths on the contours of f; right: f - f_min against the step, log scale.

    f: maps points (..., 2) to values (...), like ``data.quadratic``. paths: {label: points
    visited, shape (T + 1, 2)}, drawn with ``plot_contour`` on a resolution x resolution
    grid (circle at the start, cross at the end); each path's loss curve has the same color.
    Values of f - f_min below ``floor`` are drawn at ``floor`` (a log axis cannot show 0);
    non-finite values (a diverging run) are left out. xlabel, ylabel and minima go to
    ``plot_contour``. Returns the figure.
    """
    fig, (ax_path, ax_loss) = plt.subplots(1, 2, figsize=figsize, layout="tight")
    plot_contour(
        f,
        paths,
        xlim=xlim,
        ylim=ylim,
        levels=levels,
        resolution=resolution,
        ax=ax_path,
        xlabel=xlabel,
        ylabel=ylabel,
        minima=minima,
    )
    ax_path.legend(fontsize="small", loc="best")
    for i, (label, path) in enumerate(paths.items()):
        points = torch.as_tensor(_points(path), dtype=torch.float64)
        with torch.no_grad():
            gap = (f(points) - f_min).numpy()
        gap = np.where(np.isfinite(gap), np.maximum(gap, floor), np.nan)
        ax_loss.semilogy(gap, color=ax_path.lines[3 * i].get_color(), label=label)
    ax_loss.set(xlabel="step", ylabel="$f - f^*$")
    ax_loss.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_panels(panels, *, xlabel, ylabel=None, logx=False, logy=False, sharey=False, figsize=None):
    """Line plots side by side: ``panels = {title: {label: (x, y) or (x, y, fmt)}}``.

    fmt is a matplotlib format string ("o", "--", "k:", ...), solid lines by default;
    x and y may be tensors, arrays or lists. ylabel: one label, or one per panel.
    Returns the figure; ``fig.axes`` are the panels in order.
    """
    n = len(panels)
    if figsize is None:
        figsize = (4.6 * n, 3.6)
    fig, axes = plt.subplots(1, n, figsize=figsize, sharey=sharey, layout="tight")
    axes = np.atleast_1d(axes)
    ylabels = ylabel if isinstance(ylabel, list | tuple) else [ylabel] * n
    for ax, (title, curves), label_y in zip(axes, panels.items(), ylabels, strict=True):
        for label, curve in curves.items():
            x, y, *fmt = curve
            ax.plot(as_array(x), as_array(y), *fmt, label=label)
        ax.set(xlabel=xlabel, title=title)
        if label_y:
            ax.set_ylabel(label_y)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def decision_grid(xlim=(-4.0, 4.0), ylim=(-3.5, 3.5), resolution: int = 200):
    """A resolution x resolution grid over xlim x ylim: (X, Y, points).

    X, Y: (resolution, resolution) NumPy arrays for ``contour``; points: the same grid as
    a float32 tensor of shape (resolution^2, 2), to feed a model. ``scores.reshape(X.shape)``
    puts a model's scores back on the grid.
    """
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    X, Y = np.meshgrid(xs, ys, indexing="xy")
    points = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], axis=1).astype(np.float32))
    return X, Y, points


def plot_decision_boundary(
    x,
    y,
    boundaries=None,
    *,
    bayes=True,
    xlim=(-4.0, 4.0),
    ylim=(-3.5, 3.5),
    resolution: int = 200,
    ax=None,
):
    """Two-class 2-D data and the decision boundaries of classifiers.

    x: (n, 2) points, y: (n,) labels 0 or 1, drawn as dots of two colours.
    boundaries: {label: score}, ``score`` mapping points (m, 2) float32 -> (m,) whose sign
        is the predicted class (the log-odds, or logit_1 - logit_0), called without
        gradients; each boundary is the zero level of its score on a ``decision_grid``.
    bayes: also draw the Bayes boundary of ``data.gaussian_mixture`` (black, dashed), the
        best any classifier can do on that distribution.
    Returns the Axes; the boundaries are ``ax.collections[2:]`` (after the two classes).
    """
    from course_utils import data  # data imports nothing from here; keep plotting light

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2), layout="constrained")
    x, y = as_array(x), as_array(y)
    for label, color in ((0, "tab:blue"), (1, "tab:orange")):
        ax.scatter(*x[y == label].T, s=12, color=color, alpha=0.7, label=f"class {label}")
    X, Y, points = decision_grid(xlim, ylim, resolution)
    curves = dict(boundaries or {})
    if bayes:
        curves["Bayes boundary"] = data.gaussian_mixture_log_odds
    handles = []
    for i, (label, score) in enumerate(curves.items()):
        with torch.no_grad():
            values = as_array(score(points)).reshape(X.shape)
        is_bayes = bayes and label == "Bayes boundary"
        color, style = ("black", "--") if is_bayes else (f"C{i + 2}", "-")
        ax.contour(X, Y, values, levels=[0.0], colors=[color], linestyles=[style], linewidths=1.8)
        handles.append(plt.Line2D([], [], color=color, linestyle=style, label=label))
    ax.set(xlim=xlim, ylim=ylim, xlabel="$x_1$", ylabel="$x_2$")
    ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, fontsize="small")
    return ax
