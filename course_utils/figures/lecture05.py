"""Lecture 05 figures: decision boundaries side by side, penalty paths on a quadratic loss,
weight histograms, per-pixel maps of a digits model, an early-stopping curve. Each returns
the Figure (several panels) or the Axes it drew on.
"""

import matplotlib.pyplot as plt
import numpy as np

from course_utils import plotting
from course_utils.plotting import as_array

__all__ = [
    "plot_boundary_panels",
    "plot_early_stopping",
    "plot_penalty_paths",
    "plot_pixel_maps",
    "plot_weight_histograms",
]


def plot_boundary_panels(x, y, scores, *, ncols=4, resolution=150, panel_size=(3.1, 2.9)):
    """One ``plotting.plot_decision_boundary`` panel per classifier, the Bayes boundary in each.

    scores: {title: score}, a score maps points (m, 2) to logits (m,) (positive: class 1).
    The legend (classes, "network", "Bayes boundary") is drawn once, below the panels.
    Returns the figure; ``fig.axes`` are the panels in the order of ``scores``.
    """
    n = len(scores)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.4),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, (title, score) in zip(axes.flat, scores.items(), strict=False):
        plotting.plot_decision_boundary(x, y, {"network": score}, ax=ax, resolution=resolution)
        ax.set_title(title, fontsize="medium")
        legend = ax.get_legend()
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        legend.remove()
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes.flat:
        if not ax.get_subplotspec().is_last_row():
            ax.set_xlabel("")
        if not ax.get_subplotspec().is_first_col():
            ax.set_ylabel("")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    return fig


def plot_penalty_paths(H, w_star, paths, *, marks=None, lim=(-0.5, 2.5), ax=None):
    """Contours of the quadratic loss 1/2 (w - w*)^T H (w - w*) with penalized solutions.

    paths: {label: (k, 2) points}, e.g. the minimiser of loss + lam * penalty for growing lam.
    marks: {label: (point, norm)}: a solution and the unit ball of its penalty scaled to pass
    through it (norm "l1": a diamond, "l2": a circle), to show where the ball touches a
    contour. Returns the Axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.8), layout="constrained")
    H, w_star = np.asarray(H, dtype=float), np.asarray(w_star, dtype=float)
    grid = np.linspace(*lim, 200)
    W1, W2 = np.meshgrid(grid, grid)
    D = np.stack([W1 - w_star[0], W2 - w_star[1]], axis=-1)
    loss = 0.5 * np.einsum("...i,ij,...j->...", D, H, D)
    ax.contour(W1, W2, loss, levels=np.geomspace(0.02, 5, 10), colors="grey", linewidths=0.7)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    for i, (label, points) in enumerate(paths.items()):
        points = as_array(points)
        ax.plot(points[:, 0], points[:, 1], "-", color=f"C{i}", lw=2, label=label)
    t = np.linspace(0, 2 * np.pi, 400)
    for i, (label, (point, norm)) in enumerate((marks or {}).items()):
        point = np.asarray(as_array(point), dtype=float)
        if norm == "l1":
            r = np.abs(point).sum()
            ball = np.array([[r, 0], [0, r], [-r, 0], [0, -r], [r, 0]])
        else:
            r = np.sqrt((point**2).sum())
            ball = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
        color = f"C{i}"
        ax.plot(ball[:, 0], ball[:, 1], "--", color=color, lw=1)
        ax.plot(*point, "o", color=color, ms=7, label=label)
    ax.plot(*w_star, "k*", ms=12, label="$w^*$ (no penalty)")
    ax.set(xlim=lim, ylim=lim, xlabel="$w_1$", ylabel="$w_2$", aspect="equal")
    ax.legend(fontsize="small", loc="upper left")
    return ax


def plot_weight_histograms(weights, *, bins=41, limit=None):
    """One histogram per set of weights, with the fraction that is exactly 0 in its title.

    weights: {label: tensor or array}. The bars span [-limit, limit] (default: the
    largest |w| over all sets); exact zeros are counted in the middle bar, drawn dark.
    Returns the figure.
    """
    arrays = {label: as_array(w).ravel() for label, w in weights.items()}
    if limit is None:
        limit = max(np.abs(a).max() for a in arrays.values())
    edges = np.linspace(-limit, limit, bins + 1)
    fig, axes = plt.subplots(
        1, len(arrays), figsize=(3.0 * len(arrays), 2.8), sharey=True, layout="constrained"
    )
    for ax, (label, a) in zip(np.atleast_1d(axes), arrays.items(), strict=True):
        _, _, bars = ax.hist(a, bins=edges, color="tab:blue")
        zero = np.searchsorted(edges, 0.0, side="right") - 1
        bars[zero].set_color("tab:red")
        ax.set_yscale("log")
        ax.set_title(f"{label}\nexactly 0: {np.mean(a == 0):.0%}", fontsize="medium")
        ax.set_xlabel("weight")
    np.atleast_1d(axes)[0].set_ylabel("count (log scale)")
    return fig


def plot_pixel_maps(maps, *, cmap="viridis"):
    """8x8 digit-pixel maps side by side, each with its own colour bar.

    maps: {title: (8, 8) array or (64,) vector}, e.g. the mean ink of each pixel, or how
    many classes use each pixel. Returns the figure.
    """
    images = {title: as_array(m).reshape(8, 8) for title, m in maps.items()}
    fig, axes = plt.subplots(1, len(images), figsize=(3.3 * len(images), 3.0), layout="constrained")
    for ax, (title, image) in zip(np.atleast_1d(axes), images.items(), strict=True):
        shown = ax.imshow(image, vmin=0, cmap=cmap)
        ax.set_title(title, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(shown, ax=ax, shrink=0.85)
    return fig


def plot_early_stopping(history, best_epoch, stop_epoch, *, other=None):
    """Loss and accuracy curves of a ``training.fit`` history with the stopping points marked.

    best_epoch, stop_epoch: epochs counted from 0, as ``fit`` and ``EarlyStopping`` count
    them; the x axis counts epochs trained (from 1, like ``plotting.plot_losses``), so epoch
    k is drawn, and labelled, as "after k + 1 epochs". other: optional {label: epoch} for
    more vertical lines (another criterion). Returns the figure (loss panel, accuracy panel).
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    plotting.plot_losses(history, ax=ax_loss)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    for key, style in (("train_acc", "-"), ("val_acc", "--")):
        if key in history:
            ax_acc.plot(epochs, history[key], style, color="C0", label=key.replace("_", " "))
    ax_acc.set(xlabel="epochs trained", ylabel="accuracy")
    ax_loss.set_xlabel("epochs trained")
    lines = {"best (restored)": (best_epoch, "tab:green"), "stopped": (stop_epoch, "tab:red")}
    lines |= {label: (epoch, f"C{i + 4}") for i, (label, epoch) in enumerate((other or {}).items())}
    for ax in (ax_loss, ax_acc):
        for label, (epoch, color) in lines.items():
            trained = int(epoch) + 1
            ax.axvline(trained, color=color, ls=":", lw=1.5, label=f"{label}: {trained} epochs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig
