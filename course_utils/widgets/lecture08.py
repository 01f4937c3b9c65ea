"""Lecture 08 explorer: gradient descent on a cliff, with and without clipping."""

import functools
import math
from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import _validate, clipping, data
from course_utils.widgets.explorer import Explorer, slider

__all__ = [
    "CLIFF_LEVELS",
    "CLIFF_START",
    "CLIFF_VIEW",
    "CLIP_MODES",
    "CliffPath",
    "ClippingExplorer",
    "clip_gradient",
    "clipped_descent",
    "clipping_explorer",
]

CLIP_MODES = {
    "none": "no clipping",
    "value": "by value (each coordinate to [-c, c])",
    "per tensor": "per tensor (x and y as two tensors)",
    "norm": "by norm (||g|| at most c)",
}
MODE_NAMES = {"value": "by value", "per tensor": "per tensor", "norm": "by norm"}
CLIFF_START = (-2.0, -1.5)  # on the terrace above the cliff
CLIFF_VIEW = {"xlim": (-3.0, 3.0), "ylim": (-2.5, 2.5)}
# contour levels of data.cliff: the bowl below the cliff, then the terrace 20 higher
CLIFF_LEVELS = tuple(np.geomspace(0.01, 19.0, 14)) + tuple(20.0 + np.geomspace(0.05, 10.0, 8))


def clip_gradient(grad: torch.Tensor, mode: str, threshold: float) -> torch.Tensor:
    """The gradient (2,) of a point after clipping it with ``mode`` (one of CLIP_MODES).

    "value" clamps each coordinate to [-c, c]; "per tensor" treats x and y as two
    parameters of one entry each, so each is scaled to at most c in absolute value (which
    for a one-entry tensor is clipping by value, up to torch's 1e-6); "norm" scales the
    whole gradient to norm at most c. The functions are course_utils.clipping's.
    """
    if mode == "none":
        return grad
    if mode == "value":
        (clipped,) = clipping.clip_by_value((grad,), threshold)
        return clipped
    if mode == "per tensor":
        return torch.cat(clipping.clip_by_tensor_norm((grad[:1], grad[1:]), threshold))
    if mode == "norm":
        clipped, _ = clipping.clip_by_global_norm((grad,), threshold)
        return clipped
    raise ValueError(f"mode must be one of {list(CLIP_MODES)}, got {mode!r}")


@dataclass(frozen=True)
class CliffPath:
    """Gradient descent on ``data.cliff``: the points, f there, and the gradients' norms."""

    points: np.ndarray  # (T + 1, 2): the start, then the point after each step
    values: np.ndarray  # (T + 1,): f at each point (its minimum is 0)
    grad_norms: np.ndarray  # (T,): ||gradient|| at each step, before clipping
    clipped: np.ndarray  # (T,) bool: whether clipping changed that step's gradient

    @property
    def longest_step(self) -> float:
        """The length of the longest step, ||p_{t+1} - p_t|| = lr ||g_t||."""
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).max(initial=0.0))

    @property
    def farthest(self) -> float:
        """The largest distance from the minimum (cos a, sin a) along the path."""
        minimum = np.array([math.cos(data.CLIFF_ANGLE), math.sin(data.CLIFF_ANGLE)])
        return float(np.linalg.norm(self.points - minimum, axis=1).max())


def clipped_descent(mode: str, threshold: float, lr: float, steps: int = 100) -> CliffPath:
    """``steps`` steps of gradient descent on ``data.cliff`` from CLIFF_START, in float64:

        g_t = clip(grad f(p_t)),    p_{t+1} = p_t - lr g_t

    with ``clip_gradient(·, mode, threshold)``. The gradient is ``data.cliff_grad``, the
    same as autograd's.
    """
    _validate.number(threshold, "threshold", low=0.0, low_open=True)
    _validate.number(lr, "lr", low=0.0, low_open=True)
    _validate.integer(steps, "steps", low=0)
    if mode not in CLIP_MODES:
        raise ValueError(f"mode must be one of {list(CLIP_MODES)}, got {mode!r}")
    p = torch.tensor(CLIFF_START, dtype=torch.float64)
    points, grads, used = [p], [], []
    for _ in range(steps):
        grad = data.cliff_grad(p)
        step = clip_gradient(grad, mode, threshold)
        p = p - lr * step
        points.append(p)
        grads.append(grad)
        used.append(step)
    points = torch.stack(points)
    grads = torch.stack(grads) if grads else torch.zeros(0, 2, dtype=torch.float64)
    used = torch.stack(used) if used else grads
    return CliffPath(
        points.numpy(),
        data.cliff(points).numpy(),
        torch.linalg.vector_norm(grads, dim=1).numpy(),
        (used != grads).any(dim=1).numpy(),
    )


# The explorer remembers the paths it has computed: moving a slider back costs nothing.
_remembered_descent = functools.lru_cache(maxsize=1024)(clipped_descent)


class ClippingExplorer(Explorer):
    """Clipping mode, threshold c and learning rate -> the path on the cliff and f per step.

    The unclipped path at the same learning rate is drawn in grey for comparison. Contours,
    axes, labels and the legend are drawn once and kept as the background; an update
    redraws only the paths, the curves and the titles on top (the framework's blitting).
    Paths already computed are remembered (up to 1024 of them).
    """

    floor = 1e-8  # f below this is drawn at it (a log axis cannot show 0)

    def __init__(self, mode: str = "none", threshold: float = 1.0, lr: float = 0.3, steps=100):
        self.steps = _validate.integer(steps, "steps", low=1)
        controls = {
            "mode": ipw.Dropdown(
                options=[(v, k) for k, v in CLIP_MODES.items()], value=mode, description="clipping"
            ),
            "threshold": slider("threshold c", threshold, 0.1, 100.0, log=True),
            "lr": slider("learning rate", lr, 0.01, 1.0, log=True),
        }
        for control in controls.values():
            control.style.description_width = "90px"

        with plt.ioff():
            fig, (ax_path, ax_f) = plt.subplots(
                1, 2, figsize=(9.0, 3.8), layout="constrained", width_ratios=(1.15, 1)
            )
        plt.close(fig)
        xs = torch.linspace(*CLIFF_VIEW["xlim"], 160, dtype=torch.float64)
        ys = torch.linspace(*CLIFF_VIEW["ylim"], 140, dtype=torch.float64)
        X, Y = torch.meshgrid(xs, ys, indexing="xy")
        Z = data.cliff(torch.stack([X, Y], dim=-1))
        ax_path.contour(
            X.numpy(),
            Y.numpy(),
            Z.numpy(),
            levels=CLIFF_LEVELS,
            cmap="viridis",
            linewidths=0.7,
            alpha=0.7,
        )
        minimum = (math.cos(data.CLIFF_ANGLE), math.sin(data.CLIFF_ANGLE))
        ax_path.plot(*minimum, "*", color="black", markersize=11, alpha=0.6)
        ax_path.plot(*CLIFF_START, "o", color="black", markersize=5)
        ax_path.text(-2.85, -0.35, "terrace\n(f + 20)", fontsize="small", color="0.3")
        ax_path.text(1.9, 1.7, "bowl", fontsize="small", color="0.3")
        ax_path.set(xlabel="x", ylabel="y", aspect="equal", **CLIFF_VIEW)
        (self.reference_line,) = ax_path.plot([], [], "--", color="0.45", lw=1, label="no clipping")
        (self.path_line,) = ax_path.plot([], [], ".-", color="tab:red", ms=3, lw=1.2)
        (self.clipped_marks,) = ax_path.plot(
            [], [], "o", mfc="none", mec="tab:red", ms=6, label="clipped step"
        )
        ax_path.legend(loc="upper left", fontsize="small")  # no path crosses the upper left

        (self.reference_curve,) = ax_f.semilogy([], [], "--", color="0.45", lw=1)
        (self.f_curve,) = ax_f.semilogy([], [], color="tab:red", lw=1.3)
        ax_f.set(xlim=(0, self.steps), ylim=(self.floor, 1e2), xlabel="step", ylabel="f")
        ax_f.grid(alpha=0.3)
        self.ax_path, self.ax_f = ax_path, ax_f
        self.title = fig.suptitle("")
        animated = (
            self.reference_line,
            self.path_line,
            self.clipped_marks,
            self.reference_curve,
            self.f_curve,
            ax_path.title,
            ax_f.title,
            self.title,
        )
        super().__init__(controls, fig, columns=3, animated=animated)

    def draw(self, mode, threshold, lr):
        self.controls["threshold"].disabled = mode == "none"
        path = _remembered_descent(mode, threshold, lr, self.steps)
        reference = _remembered_descent("none", 1.0, lr, self.steps)  # the threshold is unused
        self.path = path
        steps = np.arange(self.steps + 1)
        self.reference_line.set_data(reference.points[:, 0], reference.points[:, 1])
        self.reference_line.set_visible(mode != "none")
        self.reference_curve.set_data(steps, np.maximum(reference.values, self.floor))
        self.reference_curve.set_visible(mode != "none")
        self.path_line.set_data(path.points[:, 0], path.points[:, 1])
        marks = path.points[:-1][path.clipped]
        self.clipped_marks.set_data(marks[:, 0], marks[:, 1])
        self.f_curve.set_data(steps, np.maximum(path.values, self.floor))
        unclipped = "" if mode == "none" else f" (unclipped: {reference.longest_step:.3g})"
        self.ax_path.set_title(
            f"longest step {path.longest_step:.3g}{unclipped}", fontsize="medium"
        )
        unclipped = "" if mode == "none" else f" (unclipped: {reference.values[-1]:.2g})"
        self.ax_f.set_title(
            f"final f {path.values[-1]:.2g}{unclipped}\n"
            f"gradient clipped on {path.clipped.sum()} of {self.steps} steps",
            fontsize="medium",
        )
        setting = (
            "no clipping" if mode == "none" else f"clipping {MODE_NAMES[mode]}, c = {threshold:.2g}"
        )
        self.title.set_text(f"gradient descent, learning rate {lr:.2g}, {setting}")


def clipping_explorer(**values) -> ClippingExplorer:
    """The lecture 08 explorer: display ``clipping_explorer().widget`` in a notebook.

    Keyword arguments set the initial controls (mode, threshold, lr) and the number of steps.
    """
    return ClippingExplorer(**values)
