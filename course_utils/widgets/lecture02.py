"""Lecture 02 explorer: optimizers on 2-D surfaces, their paths and their loss curves."""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import _validate, data, optim
from course_utils.widgets.explorer import Explorer, slider

__all__ = [
    "OPTIMIZER_NAMES",
    "SURFACES",
    "OptimizerExplorer",
    "Surface",
    "Trajectory",
    "make_optimizer",
    "optimizer_explorer",
    "optimizer_trajectory",
]


@dataclass(frozen=True)
class Surface:
    """A 2-D test function for the optimizer explorer, with the view that suits it."""

    label: str
    f: Callable[[torch.Tensor], torch.Tensor]  # points (..., 2) -> values (...)
    grad: Callable[[torch.Tensor], torch.Tensor]  # a point (2,) -> the gradient of f there (2,)
    start: tuple[float, float]
    minimum: float  # the smallest value of f, so that f - minimum >= 0 can go on a log axis
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    levels: tuple[float, ...]  # contour levels of f - minimum
    minima: tuple[tuple[float, float], ...]  # where f = minimum, marked with a star


# The gradients are written out in course_utils.data (tests compare them with autograd): a
# step then costs a few tensor operations instead of a backward pass, which makes an update
# 3 times faster.
SURFACES = {
    "bowl": Surface(
        "ill-conditioned bowl, κ = 10",
        functools.partial(data.quadratic, condition_number=10.0, angle=math.pi / 6),
        functools.partial(data.quadratic_grad, condition_number=10.0, angle=math.pi / 6),
        start=(-1.8, 1.0),
        minimum=0.0,
        xlim=(-2.0, 2.0),
        ylim=(-1.5, 1.5),
        levels=tuple(np.geomspace(0.01, 20.0, 12)),
        minima=((0.0, 0.0),),
    ),
    "axis bowl": Surface(
        "axis-aligned bowl, κ = 10",
        functools.partial(data.quadratic, condition_number=10.0),
        functools.partial(data.quadratic_grad, condition_number=10.0),
        start=(-1.8, 1.0),
        minimum=0.0,
        xlim=(-2.0, 2.0),
        ylim=(-1.5, 1.5),
        levels=tuple(np.geomspace(0.01, 20.0, 12)),
        minima=((0.0, 0.0),),
    ),
    "rosenbrock": Surface(
        "Rosenbrock valley",
        data.rosenbrock,
        data.rosenbrock_grad,
        start=(-1.2, 1.0),
        minimum=0.0,
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        levels=tuple(np.geomspace(0.1, 1000.0, 13)),
        minima=((1.0, 1.0),),
    ),
    "saddle": Surface(
        "saddle between two minima",
        data.saddle,
        data.saddle_grad,
        start=(-1.5, 0.02),
        minimum=-0.25,
        xlim=(-2.0, 2.0),
        ylim=(-1.6, 1.6),
        levels=tuple(np.geomspace(0.01, 5.0, 12)),
        minima=((0.0, -1.0), (0.0, 1.0)),
    ),
}

OPTIMIZER_NAMES = ("SGD", "Nesterov", "Adagrad", "RMSprop", "Adam")


@dataclass(frozen=True)
class Trajectory:
    """What the optimizer explorer shows: the points visited and f - f* at each of them."""

    points: np.ndarray  # (T + 1, 2): the start, then the point after each step
    gaps: np.ndarray  # (T + 1,): f(point) - minimum of f
    diverged_at: int | None  # the step after which the iterate left the finite range, if any


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, betas=(0.9, 0.999)):
    """A ``course_utils.optim`` optimizer by name, from the explorer's controls.

    SGD and Nesterov use ``momentum`` (Nesterov with momentum 0 is plain SGD); Adam uses
    ``betas``; RMSprop uses betas[1] as its averaging constant alpha; Adagrad uses neither.
    """
    if name == "SGD":
        return optim.SGD(params, lr=lr, momentum=momentum)
    if name == "Nesterov":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "Adagrad":
        return optim.Adagrad(params, lr=lr)
    if name == "RMSprop":
        return optim.RMSprop(params, lr=lr, alpha=betas[1])
    if name == "Adam":
        return optim.Adam(params, lr=lr, betas=tuple(betas))
    raise ValueError(f"optimizer must be one of {OPTIMIZER_NAMES}, got {name!r}")


def optimizer_trajectory(
    surface: str,
    optimizer: str,
    lr: float,
    momentum: float = 0.0,
    betas=(0.9, 0.999),
    steps: int = 100,
) -> Trajectory:
    """Run ``steps`` steps of an optimizer on one of ``SURFACES`` from its start, in float64.

    Each step evaluates f at the current point, sets the point's ``.grad`` to the gradient
    of f there (``Surface.grad``, the same as autograd's) and calls the optimizer's
    ``step()``. The run stops early (``diverged_at`` set) once the point or f stops being
    finite or the point leaves a box 1000 times wider than the view.
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {list(SURFACES)}, got {surface!r}")
    _validate.number(lr, "lr", low=0.0, low_open=True)
    _validate.integer(steps, "steps", low=0)
    s = SURFACES[surface]
    xy = torch.tensor(s.start, dtype=torch.float64)
    opt = make_optimizer(optimizer, [xy], lr, momentum, betas)
    bound = 1000.0 * max(abs(v) for v in (*s.xlim, *s.ylim))
    points, values, diverged_at = [], [], None
    for step in range(steps + 1):
        value = s.f(xy)
        if not (torch.isfinite(value) and xy.abs().max() < bound):
            diverged_at = step
            break
        points.append(xy.clone())
        values.append(value.item())
        if step == steps:
            break
        xy.grad = s.grad(xy)
        opt.step()
    gaps = np.maximum(np.array(values) - s.minimum, 0.0)
    return Trajectory(torch.stack(points).numpy(), gaps, diverged_at)


class OptimizerExplorer(Explorer):
    """An optimizer, its learning rate, momentum and betas, a surface; the path and f - f*.

    Only the path, the loss curve and two titles change from one update to the next, so
    the rest of the figure (contours, axes, ticks) is drawn once per surface and kept as
    a background: an update restores it and draws the changing artists on top (what
    matplotlib calls blitting). That makes an update cost a few tens of milliseconds
    instead of a full redraw.
    """

    gap_limits = (1e-12, 1e4)  # y range of the f - f* panel, the same for every surface

    def __init__(
        self,
        optimizer: str = "SGD",
        surface: str = "bowl",
        lr: float = 0.05,
        momentum: float = 0.0,
        beta1: float = 0.9,
        beta2: float = 0.999,
        steps: int = 100,
    ):
        self.steps = _validate.integer(steps, "steps", low=1)
        controls = {
            "optimizer": ipw.Dropdown(options=OPTIMIZER_NAMES, value=optimizer),
            "surface": ipw.Dropdown(
                options=[(s.label, key) for key, s in SURFACES.items()], value=surface
            ),
            "lr": slider("learning rate", lr, 1e-4, 10**0.5, log=True),
            "momentum": slider("momentum μ", momentum, 0.0, 0.99, 0.01),
            "beta1": slider("β1 (Adam)", beta1, 0.0, 0.99, 0.01),
            "beta2": slider("β2 (RMSprop: α)", beta2, 0.5, 0.999, 0.001, readout_format=".3f"),
        }
        controls["optimizer"].description = "optimizer"
        controls["surface"].description = "surface"
        for control in controls.values():
            control.style.description_width = "110px"

        with plt.ioff():
            fig, (ax_path, ax_gap) = plt.subplots(1, 2, figsize=(8.0, 3.3), layout="constrained")
        plt.close(fig)
        self.contours, self.minima = {}, {}
        for key, s in SURFACES.items():
            xs = torch.linspace(*s.xlim, 80, dtype=torch.float64)
            ys = torch.linspace(*s.ylim, 80, dtype=torch.float64)
            X, Y = torch.meshgrid(xs, ys, indexing="xy")
            with torch.no_grad():
                Z = s.f(torch.stack([X, Y], dim=-1)) - s.minimum
            self.contours[key] = ax_path.contour(
                X.numpy(),
                Y.numpy(),
                Z.numpy(),
                levels=s.levels,
                cmap="viridis",
                linewidths=0.7,
                alpha=0.6,
            )
            (self.minima[key],) = ax_path.plot(
                *np.array(s.minima).T, "*", color="black", markersize=10, alpha=0.5
            )
        (self.path_line,) = ax_path.plot([], [], ".-", color="tab:red", markersize=3, lw=1)
        (self.start_marker,) = ax_path.plot([], [], "o", color="tab:red")
        (self.end_marker,) = ax_path.plot([], [], "x", color="black", markersize=9, mew=2)
        ax_path.set(xlabel="x", ylabel="y")
        (self.gap_line,) = ax_gap.semilogy([], [], color="tab:red")
        ax_gap.set(xlim=(0, self.steps), ylim=self.gap_limits, xlabel="step")
        ax_gap.set_ylabel("$f - f^*$")
        ax_gap.grid(alpha=0.3)
        self.ax_path, self.ax_gap = ax_path, ax_gap
        self.title = fig.suptitle("")
        animated = (
            self.path_line,
            self.start_marker,
            self.end_marker,
            self.gap_line,
            self.ax_gap.title,
            self.title,
        )
        super().__init__(controls, fig, animated=animated)
        for key in SURFACES:  # draw every surface's background now, not on the first switch
            self.update(surface=key)
        self.update(surface=surface)

    def background_key(self):
        return self.controls["surface"].value  # the contours, limits and title of the surface

    def _show_surface(self, surface):
        s = SURFACES[surface]
        for key, contour in self.contours.items():
            contour.set_visible(key == surface)
            self.minima[key].set_visible(key == surface)
        self.ax_path.set(xlim=s.xlim, ylim=s.ylim)
        self.ax_path.set_title(s.label, fontsize="medium")

    def draw(self, optimizer, surface, lr, momentum, beta1, beta2):
        self.controls["momentum"].disabled = optimizer not in ("SGD", "Nesterov")
        self.controls["beta1"].disabled = optimizer != "Adam"
        self.controls["beta2"].disabled = optimizer not in ("Adam", "RMSprop")
        t = optimizer_trajectory(surface, optimizer, lr, momentum, (beta1, beta2), self.steps)
        self.trajectory = t
        self._show_surface(surface)
        self.path_line.set_data(t.points[:, 0], t.points[:, 1])
        self.start_marker.set_data(t.points[:1, 0], t.points[:1, 1])
        self.end_marker.set_data(t.points[-1:, 0], t.points[-1:, 1])
        low, high = self.gap_limits
        self.gap_line.set_data(np.arange(len(t.gaps)), np.clip(t.gaps, low, high))
        if t.diverged_at is not None:
            verdict = f"diverged at step {t.diverged_at}"
        else:
            verdict = f"after {self.steps} steps: $f - f^*$ = {t.gaps[-1]:.2g}"
        self.ax_gap.set_title(verdict, fontsize="medium")
        settings = {
            "SGD": f", momentum {momentum:g}",
            "Nesterov": f", momentum {momentum:g}",
            "RMSprop": f", α = {beta2:g}",
            "Adam": f", β1 = {beta1:g}, β2 = {beta2:g}",
        }
        self.title.set_text(f"{optimizer}, learning rate {lr:.2g}{settings.get(optimizer, '')}")


def optimizer_explorer(**values) -> OptimizerExplorer:
    """The lecture 02 explorer: display ``optimizer_explorer().widget`` in a notebook.

    Keyword arguments set the initial controls (optimizer, surface, lr, momentum, beta1,
    beta2) and the number of steps.
    """
    return OptimizerExplorer(**values)
