"""Lecture 07 figures: histograms of logit gaps, reliability diagrams, and penultimate-layer
activations projected onto the plane of three class templates (Mueller et al., 2019).
Each returns its Figure."""

import matplotlib.pyplot as plt
import numpy as np

from course_utils.plotting import as_array

__all__ = ["plot_gap_histograms", "plot_reliability_diagrams", "plot_template_projections"]


def plot_reliability_diagrams(panels, *, ncols=None, figsize=None):
    """One reliability diagram per entry: accuracy against confidence, bin by bin.

    panels: {title: CalibrationBins} (see ``label_smoothing.calibration_bins``). In each
    panel the bars are the accuracy of the examples in each confidence bin, drawn over the
    bin's width, and the dots sit at (mean confidence, accuracy) of each bin; on the
    dashed diagonal a model is calibrated. A dot below the diagonal is an overconfident
    bin, above it an underconfident one. The grey steps give the fraction of the examples
    in each bin, i.e. how much the bin weighs in the ECE. Empty bins are left out.
    Returns the figure.
    """
    ncols = ncols or len(panels)
    nrows = -(-len(panels) // ncols)
    figsize = figsize or (3.2 * ncols, 3.4 * nrows + 0.4)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, sharex=True, sharey=True, layout="constrained", squeeze=False
    )
    for ax, (title, bins) in zip(axes.flat, panels.items(), strict=False):
        edges, count = as_array(bins.edges), as_array(bins.count)
        accuracy, confidence = as_array(bins.accuracy), as_array(bins.confidence)
        filled = count > 0
        ax.bar(
            edges[:-1][filled],
            accuracy[filled],
            width=np.diff(edges)[filled],
            align="edge",
            color="tab:blue",
            alpha=0.75,
            edgecolor="white",
            label="accuracy in the bin",
        )
        ax.plot(
            confidence[filled],
            accuracy[filled],
            "o",
            color="tab:orange",
            markersize=4,
            label="(mean confidence, accuracy) of the bin",
        )
        ax.stairs(
            count / count.sum(),
            edges,
            color="black",
            linewidth=1.5,
            label="fraction of the examples",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
        ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
        ax.set_aspect("equal")
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    for ax in axes[-1]:
        ax.set_xlabel("confidence")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    return fig


def plot_template_projections(
    panels, *, ncols=2, figsize=None, class_names=None, xlabel=None, ylabel=None
):
    """Scatter plots of 2-D points coloured by class, one panel per entry.

    panels: {title: (points (n, 2), labels (n,))}, e.g. penultimate-layer activations
    projected onto the plane through three classes' templates (the rows of the last
    layer's weight for those classes). Each panel keeps its own scale. Returns the figure.
    """
    nrows = -(-len(panels) // ncols)
    figsize = figsize or (4.2 * ncols, 3.6 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", squeeze=False)
    for ax, (title, (points, labels)) in zip(axes.flat, panels.items(), strict=False):
        points, labels = as_array(points), as_array(labels)
        for i, c in enumerate(np.unique(labels)):
            name = class_names[c] if class_names is not None else f"class {c}"
            xy = points[labels == c]
            ax.scatter(xy[:, 0], xy[:, 1], s=7, color=f"C{i}", label=name)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="best", fontsize="small", markerscale=2)
    return fig


def plot_gap_histograms(panels, *, bins=30, figsize=None):
    """Histograms of per-example logit gaps, one panel per entry, with the optimal gap dotted.

    panels: {title: (gaps (n,), optimal gap)}; an infinite optimal gap (no smoothing) is
    not drawn. Each panel has its own bins and x range, so that a narrow peak shows its
    width. Returns the figure.
    """
    figsize = figsize or (3.2 * len(panels), 2.9)
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, layout="constrained", squeeze=False)
    for i, (ax, (title, (gaps, d_star))) in enumerate(zip(axes[0], panels.items(), strict=True)):
        gaps = as_array(gaps)
        ax.hist(gaps, bins=bins, color=f"C{i}")
        if np.isfinite(d_star):
            ax.axvline(d_star, color="black", linestyle=":", label=f"$d^*$ = {d_star:.2f}")
        else:
            ax.plot([], [], " ", label="$d^* = \\infty$")
        ax.legend(loc="upper right", fontsize="small", handlelength=1.2)
        ax.set(title=title, xlabel="logit gap of a training example")
    axes[0, 0].set_ylabel("examples")
    return fig
