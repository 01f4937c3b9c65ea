"""Lecture 07 explorer: alpha and K -> the smoothed target, and the loss against the logit gap
with its minimum."""

import base64
import math
from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch

from course_utils import _validate, plotting
from course_utils import label_smoothing as ls
from course_utils.widgets.explorer import Explorer

__all__ = [
    "LabelSmoothingExplorer",
    "LabelSmoothingQuantities",
    "label_smoothing_explorer",
    "label_smoothing_quantities",
]

GAPS = np.linspace(-2.0, 12.0, 281)  # the logit gaps the explorer plots
MAX_CLASSES = 20


@dataclass(frozen=True)
class LabelSmoothingQuantities:
    """What the explorer shows for K classes and smoothing alpha (true class 0)."""

    target: np.ndarray  # g = smooth_labels(0, K, alpha), shape (K,)
    gaps: np.ndarray  # logit gaps d, shape (G,)
    loss: np.ndarray  # L(d): smoothed cross-entropy of logits (d, 0, ..., 0), shape (G,)
    one_hot_loss: np.ndarray  # the same with alpha = 0, shape (G,)
    optimal_gap: float  # d* = log(g_y / (alpha / K)); inf for alpha = 0
    floor: float  # L(d*) = H(g), the smallest loss; 0 for alpha = 0 (reached only as d -> inf)


def label_smoothing_quantities(num_classes: int, alpha: float, gaps=GAPS):
    """The smoothed target, L(d) for each gap d, its minimiser and minimum, in float64.

        g = (1 - alpha) onehot(0) + alpha / K,    L(d) = log(e^d + K - 1) - g_0 d,
        d* = log(g_0 / (alpha / K)),               L(d*) = H(g)

    num_classes K in [2, 1000]; alpha in [0, 1]; gaps: a 1-D sequence of gaps d.
    """
    num_classes = _validate.integer(num_classes, "num_classes", low=2)
    if num_classes > 1000:
        raise ValueError(f"num_classes must be <= 1000, got {num_classes}")
    alpha = _validate.number(alpha, "alpha", low=0.0, high=1.0)
    d = torch.as_tensor(np.asarray(gaps, dtype=np.float64))
    if d.dim() != 1:
        raise ValueError(f"gaps must be a 1-D sequence of numbers, got shape {tuple(d.shape)}")
    target = ls.smooth_labels(torch.tensor(0), num_classes, alpha, dtype=torch.float64)
    return LabelSmoothingQuantities(
        target=target.numpy(),
        gaps=d.numpy(),
        loss=ls.smoothed_loss_at_gap(d, num_classes, alpha).numpy(),
        one_hot_loss=ls.smoothed_loss_at_gap(d, num_classes, 0.0).numpy(),
        optimal_gap=ls.optimal_logit_gap(num_classes, alpha),
        floor=ls.smoothed_loss_floor(num_classes, alpha),
    )


class LabelSmoothingExplorer(Explorer):
    """K and alpha on sliders; bars of the target, the loss curve L(d) and its minimum.

    Both panels keep fixed axes, so only the bars, curves and texts change: they are drawn
    over a saved background (blitting) instead of redrawing the whole figure. The changing
    texts avoid mathtext, whose parsing would cost a third of an update.
    """

    loss_limits = (-0.15, 5.2)  # L(-2) = log(e^-2 + K - 1) + 2 g_y is below 5 for K <= 20

    def __init__(self, num_classes: int = 10, alpha: float = 0.1):
        controls = {
            "num_classes": ipw.IntSlider(
                value=num_classes,
                min=2,
                max=MAX_CLASSES,
                description="classes K",
                continuous_update=False,
            ),
            "alpha": ipw.FloatSlider(
                value=alpha,
                min=0.0,
                max=1.0,
                step=0.01,
                description="smoothing α",
                continuous_update=False,
            ),
        }
        for control in controls.values():
            control.style.description_width = "90px"

        with plt.ioff():
            fig, (ax_g, ax_loss) = plt.subplots(
                1, 2, figsize=(9.5, 3.6), layout="constrained", width_ratios=(1, 1.3)
            )
        plt.close(fig)
        self.ax_g, self.ax_loss = ax_g, ax_loss
        box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0}

        # K bars side by side across [0, 1], whatever K is, so the axes never change
        colors = ["tab:orange"] + ["tab:blue"] * (MAX_CLASSES - 1)
        self.bars = ax_g.bar(np.zeros(MAX_CLASSES), np.zeros(MAX_CLASSES), color=colors)
        (self.uniform_line,) = ax_g.plot([0, 1], [0, 0], color="gray", linestyle=":")
        self.g_text = ax_g.text(
            0.97, 0.97, "", transform=ax_g.transAxes, ha="right", va="top", bbox=box
        )
        self.g_title = ax_g.text(0.5, 1.02, "", transform=ax_g.transAxes, ha="center")
        ax_g.set(xlim=(0, 1), ylim=(0, 1.45), yticks=np.linspace(0, 1, 6), xticks=[])
        ax_g.set_ylabel("target $g_c$")
        ax_g.set_xlabel("the K classes (true class y first, orange)")

        (self.one_hot_line,) = ax_loss.plot(
            GAPS, np.zeros_like(GAPS), color="gray", linestyle="--", label="one-hot (α = 0)"
        )
        (self.loss_line,) = ax_loss.plot(
            GAPS, np.zeros_like(GAPS), color="tab:blue", label="smoothed (α of the slider)"
        )
        (self.optimum_line,) = ax_loss.plot([0, 0], self.loss_limits, "r:")
        (self.optimum_marker,) = ax_loss.plot([], [], "o", color="tab:red", label="minimum")
        self.optimum_text = ax_loss.text(
            0.4, 0.97, "", transform=ax_loss.transAxes, ha="center", va="top", bbox=box
        )
        ax_loss.set(
            xlim=(GAPS[0], GAPS[-1]),
            ylim=self.loss_limits,
            xlabel="logit gap $d = z_y - z_c$ (all other logits equal)",
            ylabel="loss $L(d)$ of the logits $(d, 0, \\ldots, 0)$",
        )
        ax_loss.axhline(0.0, color="black", linewidth=0.6)
        ax_loss.grid(alpha=0.3)
        # above the axes: no place inside stays free of the curves for every K and alpha
        ax_loss.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize="small")
        self._changing = [
            *self.bars,
            self.uniform_line,
            self.g_text,
            self.g_title,
            self.one_hot_line,
            self.loss_line,
            self.optimum_line,
            self.optimum_marker,
            self.optimum_text,
        ]
        self._background = None
        super().__init__(controls, fig)

    def draw(self, num_classes, alpha):
        q = label_smoothing_quantities(num_classes, alpha)
        self.quantities = q
        width = 1 / num_classes
        for c, bar in enumerate(self.bars):
            bar.set_visible(c < num_classes)
            bar.set(x=(c + 0.1) * width, width=0.8 * width)
            bar.set_height(q.target[c] if c < num_classes else 0.0)
        self.uniform_line.set_ydata([width] * 2)
        g_y, g_c = q.target[0], q.target[1]
        self.g_text.set_text(
            f"true class (orange): 1 - α + α/K = {g_y:.3f}\n"
            f"each other class: α/K = {g_c:.3f}\n"
            f"uniform (dotted): 1/K = {width:.3f}"
        )
        self.g_title.set_text(f"smoothed target, K = {num_classes}, α = {alpha:.2f}")

        self.loss_line.set_ydata(q.loss)
        self.one_hot_line.set_ydata(q.one_hot_loss)
        if math.isfinite(q.optimal_gap):
            self.optimum_line.set(xdata=[q.optimal_gap] * 2, visible=True)
            self.optimum_marker.set_data([q.optimal_gap], [q.floor])
            self.optimum_text.set_text(
                f"minimum at d* = {q.optimal_gap:.2f}:  L(d*) = H(g) = {q.floor:.3f},\n"
                f"where softmax gives the true class {g_y:.3f}, its target"
            )
        else:
            self.optimum_line.set_visible(False)
            self.optimum_marker.set_data([], [])
            self.optimum_text.set_text("α = 0: no minimum,\nL(d) falls for ever as d grows")

    def render(self) -> str:
        canvas = self.fig.canvas
        if self._background is None:  # the first render: the fixed parts, drawn once
            for artist in self._changing:
                artist.set_animated(True)  # a full draw leaves animated artists out
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        for artist in self._changing:
            self.fig.draw_artist(artist)
        image = PIL.Image.fromarray(np.asarray(canvas.buffer_rgba()))
        return base64.b64encode(plotting.compact_png(image)).decode("ascii")


def label_smoothing_explorer(num_classes: int = 10, alpha: float = 0.1) -> LabelSmoothingExplorer:
    """The lecture 07 explorer: display ``label_smoothing_explorer().widget`` in a notebook."""
    return LabelSmoothingExplorer(num_classes, alpha)
