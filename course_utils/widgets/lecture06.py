r"""Lecture 06 explorer: the dropout rate of a small network on the Gaussian mixture.

``dropout_networks`` trains one 2-H-H-2 ReLU network per dropout rate on 100 points of
``data.gaussian_mixture`` (dropout on both hidden layers, none on the input or the
output), from the same initial weights, on the same data, for the same number of
full-batch Adam steps. The networks are trained side by side as one batched computation
(``torch.baddbmm`` over a leading network axis): their losses are summed, each network's
parameters get the gradient of its own loss only, and Adam updates every parameter entry
on its own, so this is the same as training them one after another, only faster.

``thinned_network`` draws one subnetwork of a trained network (a keep mask per hidden
layer) and measures it; ``DropoutExplorer`` shows the mask, the network's decision
boundary (dropout off: the weight-scaled network) and the thinned network's.
"""

import functools
import math
from dataclasses import dataclass

import contourpy
import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import _validate, data, plotting
from course_utils import dropout as dropout_module
from course_utils.figures import lecture06 as figures
from course_utils.widgets.explorer import Explorer, one_thread, slider

__all__ = [
    "DropoutExplorer",
    "DropoutNetworks",
    "ThinnedNetwork",
    "dropout_explorer",
    "dropout_networks",
    "thinned_network",
]

RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class DropoutNetworks:
    """Networks trained on the Gaussian mixture, one per dropout rate (float64, eval mode)."""

    rates: tuple[float, ...]
    models: tuple[torch.nn.Sequential, ...]  # Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear
    train: tuple[torch.Tensor, torch.Tensor]  # (x, y) the networks were trained on
    val: tuple[torch.Tensor, torch.Tensor]  # fresh points from the same distribution
    train_acc: tuple[float, ...]
    val_acc: tuple[float, ...]
    val_loss: tuple[float, ...]  # mean cross-entropy on val


def _batched_linear(fan_in, fan_out, copies, generator):
    """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and
    bias, drawn once and repeated for every network: W (K, in, out), b (K, 1, out)."""
    bound = 1 / math.sqrt(fan_in)
    w = (2 * torch.rand(fan_in, fan_out, generator=generator, dtype=torch.float64) - 1) * bound
    b = (2 * torch.rand(1, fan_out, generator=generator, dtype=torch.float64) - 1) * bound
    return [t.expand(copies, *t.shape).clone().requires_grad_() for t in (w, b)]


def _forward(params, x, rates=None, generator=None):
    """Logits (K, N, 2) of the K networks on x (N, 2); inverted dropout on both hidden layers
    with network k's rate when ``rates`` (K,) is given, none otherwise."""
    w1, b1, w2, b2, w3, b3 = params
    h = x.expand(w1.shape[0], *x.shape)
    for w, b in ((w1, b1), (w2, b2)):
        h = torch.relu(torch.baddbmm(b, h, w))
        if rates is not None:  # dropout(h, p_k) for each network k
            noise = torch.rand(h.shape, generator=generator, dtype=h.dtype)
            h = h * (noise >= rates) / (1 - rates)
    return torch.baddbmm(b3, h, w3)


@functools.cache
def dropout_networks(
    rates=RATES, hidden: int = 32, epochs: int = 600, lr: float = 0.01, seed: int = 0
) -> DropoutNetworks:
    """Train one 2-H-H-2 ReLU network per dropout rate on 100 mixture points; cached.

    Data: ``gaussian_mixture(100, seed=1)`` to train, ``gaussian_mixture(2000, seed=2)`` to
    validate. Full-batch Adam (lr) for ``epochs`` steps on the mean cross-entropy; the
    initial weights and the masks come from a generator seeded with ``seed``.
    """
    rates = tuple(_validate.number(r, "rates", low=0.0, high=1.0, high_open=True) for r in rates)
    _validate.integer(hidden, "hidden", low=1)
    _validate.integer(epochs, "epochs", low=0)
    x, y = data.gaussian_mixture(100, seed=1)
    x_val, y_val = data.gaussian_mixture(2000, seed=2)
    x, x_val = x.double(), x_val.double()
    K, n = len(rates), len(y)
    gen = torch.Generator().manual_seed(seed)
    params = [
        *_batched_linear(2, hidden, K, gen),
        *_batched_linear(hidden, hidden, K, gen),
        *_batched_linear(hidden, 2, K, gen),
    ]
    p = torch.tensor(rates, dtype=torch.float64)[:, None, None]
    opt = torch.optim.Adam(params, lr=lr)
    targets = y.repeat(K)
    with one_thread():
        for _ in range(epochs):
            logits = _forward(params, x, p, gen)
            # the sum over networks of each network's mean loss
            loss = torch.nn.functional.cross_entropy(logits.reshape(K * n, 2), targets) * K
            opt.zero_grad()
            loss.backward()
            opt.step()

    models = []
    for k, rate in enumerate(rates):
        model = torch.nn.Sequential(
            torch.nn.Linear(2, hidden),
            torch.nn.ReLU(),
            dropout_module.Dropout(rate),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            dropout_module.Dropout(rate),
            torch.nn.Linear(hidden, 2),
        ).double()
        with torch.no_grad():
            pairs = zip(params[::2], params[1::2], strict=True)
            for layer, (w, b) in zip(model[::3], pairs, strict=True):
                layer.weight.copy_(w[k].T)
                layer.bias.copy_(b[k, 0])
        models.append(model.eval())
    with torch.no_grad():
        train_acc = [(m(x).argmax(1) == y).double().mean().item() for m in models]
        val_logits = [m(x_val) for m in models]
    val_acc = [(z.argmax(1) == y_val).double().mean().item() for z in val_logits]
    val_loss = [torch.nn.functional.cross_entropy(z, y_val).item() for z in val_logits]
    return DropoutNetworks(
        rates,
        tuple(models),
        (x, y),
        (x_val, y_val),
        tuple(train_acc),
        tuple(val_acc),
        tuple(val_loss),
    )


@dataclass(frozen=True)
class ThinnedNetwork:
    """One subnetwork of a trained network: its masks and how well it classifies."""

    keep: tuple[np.ndarray, ...]  # one boolean mask per layer, input to output
    train_acc: float
    val_acc: float
    score: object  # points (m, 2) -> logit_1 - logit_0 of the thinned network (inverted scaling)


def _score(model, keep=None, rate=0.0):
    """x -> logit_1 - logit_0 of ``model`` (eval mode), its hidden layers masked by ``keep``
    (boolean, per hidden layer) and rescaled by 1 / (1 - rate) if given."""
    linears = list(model[::3])

    def score(x):
        h = x.to(torch.float64)
        with torch.no_grad():
            for i, layer in enumerate(linears[:-1]):
                h = torch.relu(layer(h))
                if keep is not None:
                    h = h * torch.from_numpy(keep[i]) / (1 - rate)
            z = linears[-1](h)
        return z[:, 1] - z[:, 0]

    return score


def thinned_network(nets: DropoutNetworks, rate_index: int, mask_seed: int) -> ThinnedNetwork:
    """Draw the hidden-layer keep masks of network ``rate_index`` (each unit kept with
    probability 1 - p, from a generator seeded with ``mask_seed``) and measure that subnetwork.

    Inputs and outputs are never dropped. With p = 0 the thinned network is the network.
    """
    _validate.integer(rate_index, "rate_index", low=0)
    if rate_index >= len(nets.rates):
        raise ValueError(f"rate_index must be < {len(nets.rates)}, got {rate_index}")
    _validate.integer(mask_seed, "mask_seed", low=0)
    model, rate = nets.models[rate_index], nets.rates[rate_index]
    gen = torch.Generator().manual_seed(mask_seed)
    hidden = [layer.out_features for layer in list(model[::3])[:-1]]
    masks = [dropout_module.dropout(torch.ones(n), rate, generator=gen) != 0 for n in hidden]
    keep = tuple(m.numpy() for m in masks)
    score = _score(model, keep, rate)
    accs = [float(((score(x) > 0).long() == y).double().mean()) for x, y in (nets.train, nets.val)]
    sizes = [2, *hidden, 2]
    full = (np.ones(sizes[0], bool), *keep, np.ones(sizes[-1], bool))
    return ThinnedNetwork(full, accs[0], accs[1], score)


def _polyline(lines) -> np.ndarray:
    """Several polylines as one (n, 2) array with NaN rows between them, which a single
    Line2D draws as separate pieces (much faster than one artist per piece)."""
    gap = np.full((1, 2), np.nan)
    return np.concatenate([part for line in lines for part in (line, gap)] or [gap])


def _zero_level(X, Y, values) -> np.ndarray:
    """The curve values = 0 on the grid, as a ``_polyline``."""
    return _polyline(contourpy.contour_generator(X, Y, values).lines(0.0))


class DropoutExplorer(Explorer):
    """Dropout rate and a mask seed; one thinned network drawn, the boundaries and accuracies.

    Left: the network (2 inputs, two hidden layers, 2 outputs) with the units of one random
    mask dropped. Right: the training points, the Bayes boundary (dashed), the trained
    network's boundary with dropout off (solid) and the thinned network's (dotted).
    The networks are trained once (``dropout_networks``); an update draws a mask, scores
    a grid and redraws only what changed on a stored background (blitting).
    """

    def __init__(self, rate: float = 0.5, mask_seed: int = 0, resolution: int = 80):
        self.nets = dropout_networks()
        controls = {
            # one position per trained network: the rates are 0, 0.1, ..., 0.9
            "rate": slider("dropout rate p", rate, RATES[0], RATES[-1], 0.1, readout_format=".1f"),
            "mask_seed": ipw.IntSlider(value=mask_seed, min=0, max=19, description="thinned net #"),
        }
        for control in controls.values():
            control.style.description_width = "110px"

        self.X, self.Y, points = plotting.decision_grid(resolution=resolution)
        self.points = points.double()
        with torch.no_grad(), one_thread():
            self.mean_scores = [
                _score(m)(self.points).numpy().reshape(self.X.shape) for m in self.nets.models
            ]
        with plt.ioff():
            fig, (ax_net, ax_data) = plt.subplots(
                1, 2, figsize=(9.2, 3.7), width_ratios=(1.0, 1.6), layout="constrained"
            )
        plt.close(fig)
        sizes = [2, *[m.out_features for m in list(self.nets.models[0][::3])[:-1]], 2]
        figures.plot_thinned_network(sizes, ax=ax_net, unit_size=28)
        full_edges, self.units = ax_net.collections
        full_edges.remove()  # one Line2D instead: redrawn faster than a LineCollection
        (self.edges,) = ax_net.plot([], [], color="0.45", linewidth=0.6, zorder=1)
        ax_net.set_title("")
        for x, label in zip(range(4), ("input", "hidden 1", "hidden 2", "output"), strict=True):
            ax_net.text(x, -0.06, label, ha="center", va="top", fontsize="small")
        x_train, y_train = self.nets.train
        plotting.plot_decision_boundary(x_train, y_train, ax=ax_data)
        ax_data.get_legend().remove()
        (self.mean_line,) = ax_data.plot([], [], color="tab:green", linewidth=2.0)
        (self.thin_line,) = ax_data.plot([], [], ":", color="tab:purple", linewidth=1.4)
        handles = ax_data.get_legend_handles_labels()[0] + [
            plt.Line2D([], [], color="black", linestyle="--", label="Bayes boundary"),
            plt.Line2D([], [], color="tab:green", lw=2, label="network, dropout off"),
            plt.Line2D([], [], color="tab:purple", linestyle=":", label="this thinned network"),
        ]
        ax_data.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small"
        )
        self.ax_net, self.ax_data = ax_net, ax_data
        animated = (
            self.edges,
            self.units,
            self.mean_line,
            self.thin_line,
            ax_net.title,
            ax_data.title,
        )
        super().__init__(controls, fig, animated=animated)

    def draw(self, rate, mask_seed):
        with one_thread():
            self._draw(rate, mask_seed)

    def _draw(self, rate, mask_seed):
        k = int(np.argmin([abs(rate - r) for r in self.nets.rates]))  # the nearest trained rate
        rate = self.nets.rates[k]
        thin = thinned_network(self.nets, k, int(mask_seed))
        self.thinned = thin
        positions = figures.thinned_network_layout([len(m) for m in thin.keep])
        self.edges.set_data(*_polyline(figures.thinned_network_edges(positions, thin.keep)).T)
        kept = np.concatenate(thin.keep)
        self.units.set_facecolors(
            [figures.KEPT_COLOR if on else figures.DROPPED_COLOR for on in kept]
        )
        n_hidden = sum(len(m) for m in thin.keep[1:-1])
        n_kept = sum(int(m.sum()) for m in thin.keep[1:-1])
        self.ax_net.set_title(
            f"thinned net #{mask_seed}: {n_kept}/{n_hidden} hidden units\n"
            f"train {thin.train_acc:.0%}, val {thin.val_acc:.1%}",
            fontsize="medium",
        )
        self.mean_line.set_data(*_zero_level(self.X, self.Y, self.mean_scores[k]).T)
        with torch.no_grad():
            thin_scores = thin.score(self.points).numpy().reshape(self.X.shape)
        self.thin_line.set_data(*_zero_level(self.X, self.Y, thin_scores).T)
        self.ax_data.set_title(
            f"trained with p = {rate:.1f}, dropout off:\n"
            f"train {self.nets.train_acc[k]:.0%}, val {self.nets.val_acc[k]:.1%}",
            fontsize="medium",
        )


def dropout_explorer(rate: float = 0.5, mask_seed: int = 0) -> DropoutExplorer:
    """The lecture 06 explorer: display ``dropout_explorer().widget`` in a notebook."""
    return DropoutExplorer(rate, mask_seed)
