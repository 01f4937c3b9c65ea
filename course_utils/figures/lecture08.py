"""Lecture 08 figures: what each kind of clipping does to a gradient."""

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import clipping
from course_utils.plotting import as_array

__all__ = ["plot_clipping_modes"]


def _arrow(ax, end, color, label):
    ax.annotate(
        "",
        xy=tuple(end),
        xytext=(0.0, 0.0),
        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2, "shrinkA": 0, "shrinkB": 0},
    )
    ax.plot([], [], color=color, lw=2, label=label)  # a legend entry for the arrow


def plot_clipping_modes(
    grad,
    grads,
    threshold,
    *,
    clip_by_value=clipping.clip_by_value,
    clip_by_global_norm=clipping.clip_by_global_norm,
    clip_by_tensor_norm=clipping.clip_by_tensor_norm,
):
    """Three panels: a 2-D gradient clipped by value and by norm, and several tensors'
    norms before and after global and per-tensor clipping.

    grad: a gradient of 2 entries, drawn as an arrow from the origin with its clipped
        versions: by value (inside the square [-c, c]^2) and by norm (inside the circle of
        radius c), c = threshold.
    grads: a tuple of gradient tensors; the bars are their 2-norms before clipping, after
        clipping by the global norm and after clipping each by its own norm.
    clip_by_value, clip_by_global_norm, clip_by_tensor_norm: the functions used (the
        course_utils.clipping ones by default; the notebook passes the student's).
    The arrows are ``ax.texts`` (their ends are ``annotation.xy``): the gradient, then the
    clipped one. Returns the figure.
    """
    grad = torch.as_tensor(as_array(grad), dtype=torch.float64).reshape(2)
    grads = tuple(torch.as_tensor(as_array(g), dtype=torch.float64) for g in grads)
    c = float(threshold)
    fig, (ax_value, ax_norm, ax_bars) = plt.subplots(
        1, 3, figsize=(12, 3.9), layout="constrained", width_ratios=(1, 1, 1.3)
    )
    (by_value,) = clip_by_value((grad,), c)
    by_norm, _ = clip_by_global_norm((grad,), c)
    limit = 1.15 * max(float(grad.abs().max()), c)
    for ax, clipped, title in (
        (ax_value, by_value, "by value: each entry into [-c, c]"),
        (ax_norm, by_norm, "by norm: scaled to length c"),
    ):
        if ax is ax_value:
            ax.add_patch(plt.Rectangle((-c, -c), 2 * c, 2 * c, fill=False, ls="--", color="0.5"))
        else:
            ax.add_patch(plt.Circle((0, 0), c, fill=False, ls="--", color="0.5"))
        _arrow(ax, grad.numpy(), "0.35", "gradient g")
        _arrow(ax, clipped.numpy(), "tab:red", "clipped")
        cosine = float(grad @ clipped / (grad.norm() * clipped.norm()))
        angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
        ax.set_title(f"{title}\nturns g by {angle:.0f}°", fontsize="medium")
        ax.set(xlim=(-0.3 * limit, limit), ylim=(-0.3 * limit, limit), aspect="equal")
        ax.set(xlabel="$g_1$", ylabel="$g_2$")
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.legend(loc="upper left", fontsize="small")

    *global_clipped, total = clip_by_global_norm(grads, c)
    per_tensor = clip_by_tensor_norm(grads, c)
    x = np.arange(len(grads))
    tallest = 0.0
    for offset, tensors, label, color in (
        (-0.27, grads, "before", "0.6"),
        (0.0, global_clipped, "global norm clipped", "tab:blue"),
        (0.27, per_tensor, "each tensor clipped", "tab:orange"),
    ):
        norms = [float(torch.linalg.vector_norm(g)) for g in tensors]
        ax_bars.bar(x + offset, norms, width=0.27, color=color, label=label)
        tallest = max(tallest, *norms)
    ax_bars.axhline(c, color="black", ls="--", lw=1, label="threshold c")
    ax_bars.set_xticks(x, [f"tensor {i + 1}" for i in x])
    ax_bars.set(ylabel="2-norm of the tensor", ylim=(0, 1.45 * max(tallest, c)))
    ax_bars.set_title(f"{len(grads)} tensors, global norm {float(total):.3g}", fontsize="medium")
    ax_bars.legend(fontsize="small", loc="upper center", ncols=2)
    return fig
