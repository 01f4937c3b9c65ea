r"""Lecture 05 explorer: weight decay and hidden width against the decision boundary.

The compute function ``train_mixture_mlps`` trains one-hidden-layer ReLU networks on the
2-D Gaussian mixture (``data.gaussian_mixture``) for every pair (width, weight decay), all
at once: the networks of one width are stacked along a leading model axis and trained
together with batched matrix products, with the gradients written out (no autograd).
That is what makes a grid of some fifty networks cheap enough to train when the
explorer is built; the tests check that it takes the same steps as ``torch.optim.SGD``
with ``weight_decay`` on each network alone.
"""

from dataclasses import dataclass

import contourpy
import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.path import Path
from matplotlib.ticker import PercentFormatter

from course_utils import _validate, data, plotting
from course_utils.widgets.explorer import Explorer, one_thread, slider

__all__ = [
    "EXPLORER_WEIGHT_DECAYS",
    "EXPLORER_WIDTHS",
    "MixtureRuns",
    "WeightDecayExplorer",
    "train_mixture_mlps",
    "weight_decay_explorer",
]

# The explorer's grid: weight decays 1e-4 ... 1e-1 in steps of 10^0.5, and 0 for reference.
EXPLORER_WEIGHT_DECAYS = (0.0, *(float(10.0**e) for e in np.arange(-4.0, -0.9, 0.5)))
EXPLORER_WIDTHS = (3, 10, 50)


@dataclass(frozen=True)
class MixtureRuns:
    """What ``train_mixture_mlps`` returns: for width i and weight decay j (axes 0 and 1)."""

    weight_decays: tuple[float, ...]
    widths: tuple[int, ...]
    steps: np.ndarray  # (R,): the steps after which the metrics were recorded (the last = all)
    train_acc: np.ndarray  # (widths, weight decays, R) accuracy on the training set
    val_acc: np.ndarray  # (widths, weight decays, R) accuracy on the validation set
    train_loss: np.ndarray  # (widths, weight decays, R) mean binary cross-entropy
    val_loss: np.ndarray  # (widths, weight decays, R)
    X: np.ndarray  # (res, res) grid for contour plots
    Y: np.ndarray
    scores: np.ndarray  # (widths, weight decays, res, res): the final logits on the grid
    x_train: torch.Tensor  # (n_train, 2)
    y_train: torch.Tensor  # (n_train,)
    bayes_val_acc: float  # accuracy of the Bayes classifier on the validation set
    weight_norms: np.ndarray  # (widths, weight decays): sqrt(l2_penalty) of the final weights
    params: dict  # width -> [W1 (M, 2, H), b1 (M, 1, H), W2 (M, H, 1), b2 (M, 1, 1)], final

    def index(self, width: int, weight_decay: float) -> tuple[int, int]:
        """The grid position of (width, weight_decay); the weight decay is the nearest on a
        log scale (0 only when asked for exactly)."""
        if width not in self.widths:
            raise ValueError(f"width must be one of {self.widths}, got {width}")
        decays = np.array(self.weight_decays)
        if weight_decay == 0:
            if 0.0 not in self.weight_decays:
                raise ValueError("weight_decay 0 was not trained")
            return self.widths.index(width), self.weight_decays.index(0.0)
        positive = np.flatnonzero(decays > 0)
        nearest = positive[np.argmin(np.abs(np.log10(decays[positive]) - np.log10(weight_decay)))]
        return self.widths.index(width), int(nearest)

    def score(self, width: int, weight_decay: float):
        """The trained network (width, weight_decay) as a function points (m, 2) -> logits (m,),
        e.g. for ``plotting.plot_decision_boundary``."""
        _, j = self.index(width, weight_decay)
        W1, b1, W2, b2 = (p[j : j + 1] for p in self.params[width])

        def logits(points):
            return _forward(points, W1, b1, W2, b2)[0][0]

        return logits


def _forward(x, W1, b1, W2, b2):
    """Logits of M stacked networks: x (B, 2), W1 (M, 2, H), b1 (M, 1, H), W2 (M, H, 1),
    b2 (M, 1, 1). Returns the logits (M, B) and what the backward pass needs."""
    z1 = torch.baddbmm(b1, x.expand(len(W1), -1, -1), W1)  # (M, B, H) pre-activations
    h = z1.clamp(min=0)  # ReLU
    return torch.baddbmm(b2, h, W2).squeeze(-1), h


def _metrics(x, y, params):
    """Accuracy and mean binary cross-entropy of each stacked network on (x, y)."""
    logits, _ = _forward(x, *params)
    accuracy = ((logits > 0).long() == y).double().mean(dim=1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, y.float().expand_as(logits), reduction="none"
    ).mean(dim=1)
    return accuracy.numpy(), loss.double().numpy()


def train_mixture_mlps(
    weight_decays=EXPLORER_WEIGHT_DECAYS,
    widths=EXPLORER_WIDTHS,
    *,
    n_train: int = 200,
    n_val: int = 10_000,
    steps: int = 2000,
    lr: float = 0.1,
    momentum: float = 0.9,
    seed: int = 0,
    records: int = 12,
    resolution: int = 100,
) -> MixtureRuns:
    r"""Train a 2 -> width -> 1 ReLU network for every (width, weight decay) on the mixture.

    Data: ``data.gaussian_mixture(n_train, seed=0)`` to train on and
    ``gaussian_mixture(n_val, seed=1)`` to validate on. Every network of one width starts
    from the same weights (``torch.manual_seed(seed)``, then ``nn.Linear(2, width)`` and
    ``nn.Linear(width, 1)``), so within a width only the weight decay differs. Each of
    the ``steps`` steps is full-batch gradient descent with momentum on the mean binary
    cross-entropy L plus the L2 penalty of the weights (not the biases), exactly what
    ``torch.optim.SGD(weight_decay_groups(params, wd), lr, momentum)`` does:

        g_W = dL/dW + wd * W,   g_b = dL/db,   v <- momentum v + g,   theta <- theta - lr v

    with the gradients of the two layers written out: for logits o = relu(x W1 + b1) W2 + b2,
    dL/do = (sigmoid(o) - y) / n, dL/dW2 = h^T dL/do, dL/dh = dL/do W2^T, dL/dz1 = dL/dh * [z1 > 0],
    dL/dW1 = x^T dL/dz1. Accuracies and losses are recorded after about ``records`` steps
    spaced evenly on a log scale from step 10 to the last (``MixtureRuns.steps``), and the
    final logits on a ``plotting.decision_grid`` of the given resolution. Runs on one thread
    (see ``one_thread``).
    """
    weight_decays = tuple(
        float(_validate.number(w, "weight_decays", low=0.0)) for w in weight_decays
    )
    widths = tuple(_validate.integer(w, "widths", low=1) for w in widths)
    _validate.integer(steps, "steps", low=1)
    _validate.integer(records, "records", low=1)
    x, y = data.gaussian_mixture(n_train, seed=0)
    x_val, y_val = data.gaussian_mixture(n_val, seed=1)
    X, Y, grid = plotting.decision_grid(resolution=resolution)
    recorded = sorted(
        {*np.geomspace(min(10, steps), steps, records).round().astype(int).tolist(), steps}
    )
    target = y.float()[:, None]  # (n, 1)
    wd = torch.tensor(weight_decays).view(-1, 1, 1)
    shape = (len(widths), len(weight_decays), len(recorded))
    metrics = {key: np.zeros(shape) for key in ("train_acc", "val_acc", "train_loss", "val_loss")}
    scores = np.zeros((len(widths), len(weight_decays), resolution, resolution), dtype=np.float32)
    norms = np.zeros((len(widths), len(weight_decays)))
    final = {}
    with torch.no_grad(), one_thread():
        for i, width in enumerate(widths):
            torch.manual_seed(seed)
            first, second = torch.nn.Linear(2, width), torch.nn.Linear(width, 1)
            m = len(weight_decays)
            params = [
                first.weight.T.repeat(m, 1, 1),  # W1 (M, 2, H)
                first.bias.repeat(m, 1, 1),  # b1 (M, 1, H)
                second.weight.T.repeat(m, 1, 1),  # W2 (M, H, 1)
                second.bias.repeat(m, 1, 1),  # b2 (M, 1, 1)
            ]
            velocities = [torch.zeros_like(p) for p in params]
            W1, b1, W2, b2 = params
            r = 0
            for step in range(1, steps + 1):
                logits, h = _forward(x, W1, b1, W2, b2)
                d_out = (torch.sigmoid(logits).unsqueeze(-1) - target) / len(x)  # (M, n, 1)
                # dL/dz1 = dL/dh * [z1 > 0], and [z1 > 0] = sign(h) for h = relu(z1) >= 0
                d_z1 = torch.bmm(d_out, W2.transpose(1, 2)).mul_(h.sign())
                grads = [
                    torch.matmul(x.T, d_z1).add_(wd * W1),  # dL/dW1 + wd W1
                    d_z1.sum(dim=1, keepdim=True),
                    torch.bmm(h.transpose(1, 2), d_out).add_(wd * W2),  # dL/dW2 + wd W2
                    d_out.sum(dim=1, keepdim=True),
                ]
                for p, v, g in zip(params, velocities, grads, strict=True):
                    v.mul_(momentum).add_(g)
                    p.sub_(lr * v)
                if step == recorded[r]:
                    for split, (xs, ys) in (("train", (x, y)), ("val", (x_val, y_val))):
                        acc, loss = _metrics(xs, ys, params)
                        metrics[f"{split}_acc"][i, :, r] = acc
                        metrics[f"{split}_loss"][i, :, r] = loss
                    r += 1
            grid_logits, _ = _forward(grid, *params)
            scores[i] = grid_logits.reshape(m, resolution, resolution).numpy()
            norms[i] = ((W1**2).sum(dim=(1, 2)) + (W2**2).sum(dim=(1, 2))).sqrt().numpy()
            final[width] = params
    bayes = (data.gaussian_mixture_bayes(x_val) == y_val).double().mean().item()
    return MixtureRuns(
        weight_decays,
        widths,
        np.array(recorded),
        **metrics,
        X=X,
        Y=Y,
        scores=scores,
        x_train=x,
        y_train=y,
        bayes_val_acc=bayes,
        weight_norms=norms,
        params=final,
    )


def _boundary_segments(X, Y, scores) -> list[np.ndarray]:
    """The zero level of ``scores`` on the grid (X, Y), as a list of (k, 2) polylines."""
    return list(contourpy.contour_generator(X, Y, scores).lines(0.0))


def _positive_region(X, Y, scores) -> list[Path]:
    """Where ``scores`` > 0 on the grid (X, Y), as closed paths (holes included)."""
    generator = contourpy.contour_generator(X, Y, scores, fill_type="OuterCode")
    return [
        Path(points, codes) for points, codes in zip(*generator.filled(0.0, np.inf), strict=True)
    ]


class WeightDecayExplorer(Explorer):
    """A weight decay and a hidden width; the decision boundary and train/val accuracy.

    Left: the 200 training points, the Bayes boundary (dashed) and the trained network's
    boundary, with the region it assigns to class 1 shaded. Right: training and
    validation accuracy against the weight decay for the chosen width, the chosen one
    marked, and the same accuracies without decay (dotted). Every network is trained when
    the explorer is built (``train_mixture_mlps``), every boundary and region is traced
    then too, so an update only swaps data and draws the changing (``animated``) artists
    onto the kept background (blitting, see ``Explorer``).
    """

    def __init__(self, runs: MixtureRuns | None = None, weight_decay=1e-3, width=50):
        self.runs = runs = runs if runs is not None else train_mixture_mlps()
        decays = np.array(runs.weight_decays)
        self.positive = [j for j, wd in enumerate(runs.weight_decays) if wd > 0]
        if not self.positive:
            raise ValueError("runs must include positive weight decays")
        exponents = np.log10(decays[self.positive])
        controls = {
            "weight_decay": slider(
                "weight decay λ",
                weight_decay,
                float(decays[self.positive].min()),
                float(decays[self.positive].max()),
                step=float(np.diff(exponents).min()) if len(exponents) > 1 else 1.0,
                log=True,
                readout_format=".0e",
            ),
            "width": ipw.Dropdown(
                options=[(f"{w} units", w) for w in runs.widths],
                value=width,
                description="hidden width",
            ),
        }
        for control in controls.values():
            control.style.description_width = "110px"
        grid = [(i, j) for i in range(len(runs.widths)) for j in range(len(runs.weight_decays))]
        self.segments = {k: _boundary_segments(runs.X, runs.Y, runs.scores[k]) for k in grid}
        self.regions = {k: _positive_region(runs.X, runs.Y, runs.scores[k]) for k in grid}

        with plt.ioff():
            fig, (ax_map, ax_acc) = plt.subplots(
                1, 2, figsize=(9.0, 3.8), width_ratios=(1, 1.2), layout="constrained"
            )
        plt.close(fig)
        extent = (runs.X.min(), runs.X.max(), runs.Y.min(), runs.Y.max())
        ax_map.set_facecolor("#dbe9f6")  # class 0's region; class 1's is filled on top
        self.fill = PathCollection([], facecolors="#fde0c5", edgecolors="none")
        ax_map.add_collection(self.fill)
        x, y = plotting.as_array(runs.x_train), plotting.as_array(runs.y_train)
        self.points = [
            ax_map.scatter(*x[y == label].T, s=10, color=color, edgecolor="white", linewidth=0.3)
            for label, color in ((0, "tab:blue"), (1, "tab:orange"))
        ]
        bayes = data.gaussian_mixture_log_odds(torch.from_numpy(np.stack([runs.X, runs.Y], -1)))
        self.bayes = ax_map.contour(
            runs.X, runs.Y, bayes.numpy(), levels=[0.0], colors="black", linestyles="--"
        )
        self.boundary = LineCollection([], colors="tab:green", linewidths=2.0)
        ax_map.add_collection(self.boundary)
        ax_map.set(xlim=extent[:2], ylim=extent[2:], xlabel="$x_1$", ylabel="$x_2$")
        ax_map.set_title("network boundary (green), Bayes (dashed)", fontsize="medium")

        final = np.concatenate([runs.train_acc[..., -1].ravel(), runs.val_acc[..., -1].ravel()])
        low = max(np.floor(final.min() * 50) / 50 - 0.01, 0.0)
        high = min(np.ceil(max(final.max(), runs.bayes_val_acc) * 50) / 50 + 0.01, 1.0)
        wd_axis = decays[self.positive]
        (self.train_line,) = ax_acc.semilogx(wd_axis, wd_axis * 0, "o-", ms=3, label="train")
        (self.val_line,) = ax_acc.semilogx(wd_axis, wd_axis * 0, "s-", ms=3, label="validation")
        self.train_zero = ax_acc.axhline(0, color="tab:blue", ls=":", lw=1, label="train, λ = 0")
        self.val_zero = ax_acc.axhline(0, color="tab:orange", ls=":", lw=1, label="val, λ = 0")
        ax_acc.axhline(runs.bayes_val_acc, color="black", ls="--", lw=1, label="Bayes, val")
        (self.marker,) = ax_acc.plot([], [], "o", ms=11, mfc="none", mec="tab:red", mew=2)
        ax_acc.set(xlabel="weight decay λ", ylabel="accuracy", ylim=(low, high))
        ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax_acc.grid(alpha=0.3)
        ax_acc.legend(loc="lower left", fontsize="small", ncols=3)
        if 0.0 not in runs.weight_decays:
            self.train_zero.set_visible(False)
            self.val_zero.set_visible(False)
        self.ax_map, self.ax_acc = ax_map, ax_acc
        # Redrawn on every update, in this order (sorted by zorder): the shading first, then
        # the points and the Bayes boundary that lie on top of it, then what changes.
        self.fill.set_zorder(0.5)
        animated = (
            self.fill,
            *self.points,
            self.bayes,
            self.boundary,
            self.train_line,
            self.val_line,
            self.train_zero,
            self.val_zero,
            self.marker,
            ax_acc.title,
        )
        super().__init__(controls, fig, columns=2, animated=animated)

    def draw(self, weight_decay, width):
        runs = self.runs
        i, j = runs.index(width, weight_decay)
        self.selected = (i, j)
        self.fill.set_paths(self.regions[i, j])
        self.boundary.set_segments(self.segments[i, j])
        self.train_line.set_ydata(runs.train_acc[i, self.positive, -1])
        self.val_line.set_ydata(runs.val_acc[i, self.positive, -1])
        if 0.0 in runs.weight_decays:
            zero = runs.weight_decays.index(0.0)
            self.train_zero.set_ydata([runs.train_acc[i, zero, -1]] * 2)
            self.val_zero.set_ydata([runs.val_acc[i, zero, -1]] * 2)
        self.marker.set_data([runs.weight_decays[j]], [runs.val_acc[i, j, -1]])
        self.ax_acc.set_title(
            f"width {width}, λ = {runs.weight_decays[j]:.0e}: "
            f"train {runs.train_acc[i, j, -1]:.1%}, val {runs.val_acc[i, j, -1]:.1%}",
            fontsize="medium",
        )


def weight_decay_explorer(runs: MixtureRuns | None = None, **values) -> WeightDecayExplorer:
    """The lecture 05 explorer: display ``weight_decay_explorer().widget`` in a notebook.

    runs: the networks to show, from ``train_mixture_mlps`` (trained here when not given).
    Keyword arguments set the initial controls (weight_decay, width).
    """
    return WeightDecayExplorer(runs, **values)
