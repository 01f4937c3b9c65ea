"""Interactive explorers for the notebooks, built so they can be tested without a browser.

Every explorer follows one pattern (copy it for a new lecture):

1. a pure compute function: numbers in, numbers out (``softmax_quantities`` here), which
   the tests compare with ``course_utils.losses`` and torch;
2. an ``Explorer`` subclass that makes its controls and ONE matplotlib figure in
   ``__init__`` (created under ``plt.ioff()`` and closed, so the inline backend does not
   show it a second time), and a ``draw(**values)`` that calls the compute function and
   changes the figure's artists in place (``set_height``, ``set_text``, ...). Rendering a
   PNG takes a few tenths of a second, so sliders get ``continuous_update=False``: the
   figure redraws when a slider is released, not at every pixel it moves;
3. a builder function (``softmax_explorer()``) that returns the explorer.

In the notebook, ``explorer.widget`` is displayed. Moving a control calls
``explorer.update()``, which redraws and assigns the rendered PNG to an ``Output`` widget's
``outputs`` directly. Not capturing output with ``with out:`` keeps the stored notebook
reproducible under nbval, and it lets a test call ``update(temperature=2.0)`` and inspect
``explorer.fig`` and ``explorer.out.outputs`` headless.
"""

import base64
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from course_utils import _validate, data, losses, optim, plotting

__all__ = [
    "OPTIMIZER_NAMES",
    "SURFACES",
    "Explorer",
    "OptimizerExplorer",
    "SoftmaxExplorer",
    "SoftmaxQuantities",
    "Surface",
    "Trajectory",
    "figure_png",
    "make_optimizer",
    "optimizer_explorer",
    "optimizer_trajectory",
    "softmax_explorer",
    "softmax_quantities",
]


def figure_png(fig, dpi: int = 100) -> str:
    """A figure as a compact PNG, base64-encoded (what an ``image/png`` output holds)."""
    return base64.b64encode(plotting.png(fig, dpi=dpi)).decode("ascii")


class Explorer:
    """Controls + one figure, redrawn in place whenever a control moves.

    A subclass sets ``self.controls`` (name -> ipywidgets control) and ``self.fig`` and
    implements ``draw(**values)``, then calls ``super().__init__()``.
    """

    controls: dict[str, ipw.ValueWidget]
    fig: plt.Figure
    columns = 2  # the controls are laid out in a grid above the figure, this many per row

    def __init__(self) -> None:
        # Closing a figure leaves it a bare canvas, and savefig would then make a new Agg
        # canvas, renderer and text-size cache for every PNG. A canvas of its own keeps them.
        FigureCanvasAgg(self.fig)
        self.out = ipw.Output()
        self._syncing = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        grid = ipw.GridBox(
            list(self.controls.values()),
            layout=ipw.Layout(grid_template_columns=f"repeat({self.columns}, max-content)"),
        )
        self.widget = ipw.VBox([grid, self.out])
        if self.fig.get_layout_engine() is not None:
            # Lay the figure out once, with real content, then keep that layout: running the
            # layout engine on every render would double the cost of an update.
            self.draw(**self.values())
            self.fig.draw_without_rendering()
            self.fig.set_layout_engine(None)
        self.update()

    def draw(self, **values) -> None:
        """Update the figure's artists for these control values."""
        raise NotImplementedError

    def values(self) -> dict:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **values) -> None:
        """Set the given controls (the others keep their values), redraw, show the new PNG."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise TypeError(
                f"update() got unknown control(s) {sorted(unknown)}; "
                f"the controls are {list(self.controls)}"
            )
        self._syncing = True  # setting a control below must not trigger a second redraw
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._syncing = False
        self.draw(**self.values())
        self.out.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": self.render(), "text/plain": "<explorer figure>"},
                "metadata": {},
            },
        )

    def render(self) -> str:
        """The figure as a base64 PNG (a subclass may render faster, e.g. by blitting)."""
        return figure_png(self.fig)

    def _on_change(self, change) -> None:
        if not self._syncing:
            self.update()


# --- lecture 01: softmax, temperature, cross-entropy and its gradient ---------------------


@dataclass(frozen=True)
class SoftmaxQuantities:
    """What the softmax explorer shows, for logits z, temperature T and gold class y."""

    probs: np.ndarray  # p = softmax(z / T), shape (C,)
    loss: float  # cross-entropy -log p_y
    grad: np.ndarray  # dloss/dz = (p - onehot(y)) / T, shape (C,)


def softmax_quantities(logits, temperature: float = 1.0, target: int = 0) -> SoftmaxQuantities:
    """Probabilities, cross-entropy loss and its gradient for one example, in float64.

        p = softmax(z / T),    loss = -log p_y,    dloss/dz = (p - onehot(y)) / T

    The gradient is with respect to the logits z themselves (what the sliders move);
    dividing by T is the chain rule through z / T.

    logits: a sequence of C >= 2 finite numbers; temperature > 0; target in [0, C).
    """
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    if z.dim() != 1 or z.numel() < 2:
        raise ValueError(f"logits must be a 1-D sequence of at least 2 numbers, got {logits!r}")
    temperature = _validate.number(temperature, "temperature", low=0.0, low_open=True)
    target = _validate.integer(target, "target", low=0)
    if target >= z.numel():
        raise ValueError(f"target must be a class index in [0, {z.numel()}), got {target}")
    scaled = z / temperature
    y = torch.tensor(target)
    loss = losses.cross_entropy(scaled, y)
    grad = losses.cross_entropy_grad(scaled, y) / temperature
    return SoftmaxQuantities(losses.softmax(scaled).numpy(), loss.item(), grad.numpy())


class SoftmaxExplorer(Explorer):
    """Logits and a temperature on sliders, a gold class; bars of p and of dloss/dz."""

    def __init__(self, logits=(2.0, 1.0, 0.5, -1.0), temperature: float = 1.0, target: int = 0):
        n = len(logits)
        self.num_classes = n
        slider = {"min": -6.0, "max": 6.0, "step": 0.1, "continuous_update": False}
        self.controls = {
            f"z{c}": ipw.FloatSlider(value=float(v), description=f"logit z{c}", **slider)
            for c, v in enumerate(logits)
        }
        self.controls["temperature"] = ipw.FloatSlider(
            value=temperature,
            min=0.5,
            max=3.0,
            step=0.05,
            description="temperature T",
            continuous_update=False,
        )
        self.controls["target"] = ipw.Dropdown(
            options=[(f"class {c}", c) for c in range(n)], value=target, description="gold class"
        )
        for control in self.controls.values():
            control.style.description_width = "100px"

        with plt.ioff():
            fig, (ax_p, ax_g) = plt.subplots(1, 2, figsize=(8.5, 3.4), layout="constrained")
        plt.close(fig)
        classes = np.arange(n)
        self.prob_bars = ax_p.bar(classes, np.zeros(n), color="tab:blue")
        self.prob_labels = [ax_p.text(c, 0.0, "", ha="center", va="bottom") for c in classes]
        ax_p.set(ylim=(0, 1.12), xticks=classes, xlabel="class c", ylabel="$p_c$")
        ax_p.set_title("probabilities $p = \\mathrm{softmax}(z / T)$")
        self.grad_bars = ax_g.bar(classes, np.zeros(n), color="tab:blue")
        # a white box keeps a label readable where it crosses a dotted bound line
        box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0}
        self.grad_labels = [ax_g.text(c, 0.0, "", ha="center", bbox=box) for c in classes]
        ax_g.axhline(0.0, color="black", linewidth=0.8)
        # |p_c - g_c| <= 1, so |dL/dz_c| <= 1/T: these two lines move with T
        self.grad_bounds = [
            ax_g.axhline(s, color="gray", linestyle=":", label=label)
            for s, label in ((-1.0, r"$\pm 1/T$ (largest possible)"), (1.0, None))
        ]
        ax_g.legend(loc="upper right", fontsize="small")
        ax_g.set(
            ylim=(-2.3, 2.3), xticks=classes, xlabel="class c", ylabel=r"$\partial L/\partial z_c$"
        )
        ax_g.set_title(r"gradient $\partial L/\partial z = (p - g)\,/\,T$")
        self.fig = fig
        super().__init__()

    def draw(self, temperature, target, **logits):
        z = [logits[f"z{c}"] for c in range(self.num_classes)]
        q = softmax_quantities(z, temperature, target)
        self.quantities = q
        colors = ["tab:orange" if c == target else "tab:blue" for c in range(self.num_classes)]
        for c in range(self.num_classes):
            p, g = q.probs[c], q.grad[c]
            self.prob_bars[c].set_height(p)
            self.prob_bars[c].set_color(colors[c])
            self.prob_labels[c].set(position=(c, p + 0.01), text=f"{p:.2f}")
            self.grad_bars[c].set_height(g)
            self.grad_bars[c].set_color(colors[c])
            offset = 0.06 if g >= 0 else -0.06
            self.grad_labels[c].set(
                position=(c, g + offset), text=f"{g:+.2f}", va="bottom" if g >= 0 else "top"
            )
        for line, sign in zip(self.grad_bounds, (-1.0, 1.0), strict=True):
            line.set_ydata([sign / temperature] * 2)
        self.fig.suptitle(
            f"gold class {target} (orange):  loss $L = -\\log p_{target}$ = {q.loss:.3f}"
        )


def softmax_explorer(
    logits=(2.0, 1.0, 0.5, -1.0), temperature: float = 1.0, target: int = 0
) -> SoftmaxExplorer:
    """The lecture 01 explorer: display ``softmax_explorer().widget`` in a notebook."""
    return SoftmaxExplorer(logits, temperature, target)


# --- lecture 02: optimizers on 2-D surfaces -----------------------------------------------


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


def _quadratic_grad(xy, condition_number=10.0, angle=0.0):
    """Gradient of ``data.quadratic``: u (cos, sin) + condition_number * v (-sin, cos)."""
    c, s = math.cos(angle), math.sin(angle)
    u = c * xy[0] + s * xy[1]
    v = -s * xy[0] + c * xy[1]
    return torch.stack([c * u - condition_number * s * v, s * u + condition_number * c * v])


def _rosenbrock_grad(xy, a=1.0, b=100.0):
    """Gradient of ``data.rosenbrock``: (-2 (a - x) - 4 b x (y - x^2), 2 b (y - x^2))."""
    x, y = xy[0], xy[1]
    return torch.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)])


def _saddle_grad(xy):
    """Gradient of ``data.saddle``: (2 x, y^3 - y)."""
    return torch.stack([2 * xy[0], xy[1] ** 3 - xy[1]])


# The gradients are written out (tests compare them with autograd): a step then costs a
# few tensor operations instead of a backward pass, which makes an update 3 times faster.
SURFACES = {
    "bowl": Surface(
        "ill-conditioned bowl, κ = 10",
        functools.partial(data.quadratic, condition_number=10.0, angle=math.pi / 6),
        functools.partial(_quadratic_grad, condition_number=10.0, angle=math.pi / 6),
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
        functools.partial(_quadratic_grad, condition_number=10.0),
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
        _rosenbrock_grad,
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
        _saddle_grad,
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

    columns = 3
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
        self.controls = {
            "optimizer": ipw.Dropdown(options=OPTIMIZER_NAMES, value=optimizer),
            "surface": ipw.Dropdown(
                options=[(s.label, key) for key, s in SURFACES.items()], value=surface
            ),
            "lr": ipw.FloatLogSlider(
                value=lr, base=10, min=-4, max=0.5, step=0.05, readout_format=".2g"
            ),
            "momentum": ipw.FloatSlider(value=momentum, min=0.0, max=0.99, step=0.01),
            "beta1": ipw.FloatSlider(value=beta1, min=0.0, max=0.99, step=0.01),
            "beta2": ipw.FloatSlider(
                value=beta2, min=0.5, max=0.999, step=0.001, readout_format=".3f"
            ),
        }
        descriptions = {
            "optimizer": "optimizer",
            "surface": "surface",
            "lr": "learning rate",
            "momentum": "momentum μ",
            "beta1": "β1 (Adam)",
            "beta2": "β2 (RMSprop: α)",
        }
        for name, control in self.controls.items():
            control.description = descriptions[name]
            control.style.description_width = "110px"
            if hasattr(control, "continuous_update"):
                control.continuous_update = False

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
        self.fig = fig
        self._backgrounds = {}  # surface -> the figure without its changing artists
        super().__init__()

    def _changing_artists(self):
        return (
            self.path_line,
            self.start_marker,
            self.end_marker,
            self.gap_line,
            self.ax_gap.title,
            self.title,
        )

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

    def render(self) -> str:
        canvas = self.fig.canvas
        changing = self._changing_artists()
        surface = self.controls["surface"].value
        if not self._backgrounds:  # the first render: draw every surface's background once
            for artist in changing:
                artist.set_animated(True)  # a full draw leaves animated artists out
            for key in SURFACES:
                self._show_surface(key)
                canvas.draw()
                self._backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
            self._show_surface(surface)
        canvas.restore_region(self._backgrounds[surface])
        for artist in changing:
            self.fig.draw_artist(artist)
        image = PIL.Image.fromarray(np.asarray(canvas.buffer_rgba()))
        return base64.b64encode(plotting.compact_png(image)).decode("ascii")


def optimizer_explorer(**values) -> OptimizerExplorer:
    """The lecture 02 explorer: display ``optimizer_explorer().widget`` in a notebook.

    Keyword arguments set the initial controls (optimizer, surface, lr, momentum, beta1,
    beta2) and the number of steps.
    """
    return OptimizerExplorer(**values)
