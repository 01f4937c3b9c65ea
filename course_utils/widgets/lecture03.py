"""Lecture 03 explorer: a deep MLP at initialization, its activations and gradients per layer."""

import base64
from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from course_utils import _validate, initialization, plotting
from course_utils.widgets.explorer import Explorer, one_thread

__all__ = [
    "DEPTH_ACTIVATIONS",
    "DEPTH_INITS",
    "DepthExplorer",
    "DepthStatistics",
    "depth_explorer",
    "depth_statistics",
]

# activation -> (label, histogram range). Values outside the range land in the edge bins.
DEPTH_ACTIVATIONS = {
    "tanh": ("tanh", (-1.0, 1.0)),
    "sigmoid": ("sigmoid", (0.0, 1.0)),
    "scaled_tanh": ("1.7159 tanh(2x/3)", (-1.75, 1.75)),
    "relu": ("ReLU", (-1.0, 4.0)),
    "leaky_relu": ("leaky ReLU (0.01)", (-1.0, 4.0)),
    "elu": ("ELU", (-1.0, 4.0)),
    "gelu": ("GELU", (-1.0, 4.0)),
    "identity": ("identity (linear)", (-4.0, 4.0)),
}
DEPTH_INITS = {
    "standard_normal": "N(0, gain²)",
    "fan_in_uniform": "U(±gain/√n_in), torch default",
    "lecun_normal": "LeCun N(0, gain²/n_in)",
    "xavier_uniform": "Xavier U(±gain √(6/(n_in+n_out)))",
    "xavier_normal": "Xavier N(0, 2 gain²/(n_in+n_out))",
    "he_normal": "He N(0, 2 gain²/n_in)",
}
HISTOGRAM_FLOOR = 1e-4  # the smallest fraction the colour scale shows


@dataclass(frozen=True)
class DepthStatistics:
    """What the depth explorer shows for one network at initialization and one batch."""

    edges: np.ndarray  # (bins + 1,) histogram bin edges of the activation values
    histograms: np.ndarray  # (depth, bins): fraction of each layer's activations per bin
    act_std: np.ndarray  # (depth,) std of each layer's activations
    grad_std: np.ndarray  # (depth,) std of dL/dz, the gradient reaching each layer's z
    flat: np.ndarray | None  # (depth,) saturated (tanh, sigmoid) or dead (ReLU) fraction


def depth_statistics(
    depth, width, activation, init, gain=1.0, *, batch_size=64, bins=48, seed=0
) -> DepthStatistics:
    """One forward and backward pass through ``initialization.deep_mlp(depth, width, ...)``.

    The weights, a batch x ~ N(0, 1) of shape (batch_size, width) and the gradient
    injected at the output, g ~ N(0, 1), are drawn in that order from one generator
    seeded with ``seed``; ``initialization.layer_statistics`` does the rest. Histograms
    count each layer's activations in ``bins`` equal bins over the activation's range in
    ``DEPTH_ACTIVATIONS`` (values beyond it are counted in the edge bins) and are
    normalized to fractions.
    """
    if activation not in DEPTH_ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(DEPTH_ACTIVATIONS)}, got {activation!r}")
    _validate.integer(batch_size, "batch_size", low=2)
    generator = torch.Generator().manual_seed(seed)
    model = initialization.deep_mlp(depth, width, activation, init, gain=gain, generator=generator)
    x = torch.randn(batch_size, width, generator=generator)
    stats = initialization.layer_statistics(model, x, generator=generator)
    low, high = DEPTH_ACTIVATIONS[activation][1]
    histograms = np.stack(
        [
            torch.histc(s.act.clamp(low, high), bins=bins, min=low, max=high).numpy()
            / s.act.numel()
            for s in stats
        ]
    )
    flat = None
    if activation in ("tanh", "scaled_tanh", "sigmoid"):
        flat = np.array([s.saturated for s in stats])
    elif activation == "relu":
        flat = np.array([s.dead for s in stats])
    return DepthStatistics(
        edges=np.linspace(low, high, bins + 1),
        histograms=histograms,
        act_std=np.array([s.act_std for s in stats]),
        grad_std=np.array([s.grad_std for s in stats]),
        flat=flat,
    )


class DepthExplorer(Explorer):
    """Depth, width, activation, scheme and gain -> per-layer histograms and stds at init.

    Left: one row per layer, the histogram of its activations seen from above (colour =
    fraction of the values in each bin, log scale). Right: the std of each layer's
    activations and of the gradient dL/dz reaching it, on a log scale. Only the image,
    the two curves and the titles change, so the axes for each histogram range are drawn
    once and kept as a background (blitting), as in lecture 02's explorer.
    """

    std_limits = (1e-6, 1e6)  # y range of the std panel; values beyond are drawn at the edge

    def __init__(
        self,
        depth=10,
        width=256,
        activation="tanh",
        init="xavier_normal",
        gain=1.0,
        *,
        max_depth=20,
        batch_size=64,
        bins=48,
    ):
        self.max_depth = _validate.integer(max_depth, "max_depth", low=1)
        self.batch_size, self.bins = batch_size, bins
        controls = {
            "depth": ipw.IntSlider(value=depth, min=1, max=self.max_depth),
            "width": ipw.Dropdown(options=[16, 32, 64, 128, 256], value=width),
            "activation": ipw.Dropdown(
                options=[(label, key) for key, (label, _) in DEPTH_ACTIVATIONS.items()],
                value=activation,
            ),
            "init": ipw.Dropdown(
                options=[(label, key) for key, label in DEPTH_INITS.items()], value=init
            ),
            "gain": ipw.FloatLogSlider(
                value=gain, base=10, min=-2, max=1, step=0.05, readout_format=".3g"
            ),
        }
        descriptions = {
            "depth": "depth",
            "width": "width",
            "activation": "activation",
            "init": "scheme",
            "gain": "gain (× std)",
        }
        for name, control in controls.items():
            control.description = descriptions[name]
            control.style.description_width = "80px"
            if hasattr(control, "continuous_update"):
                control.continuous_update = False
        controls["init"].layout.width = "330px"

        with plt.ioff():
            fig, (ax_hist, ax_std) = plt.subplots(
                1, 2, figsize=(9.0, 3.8), width_ratios=(1.15, 1), layout="constrained"
            )
        plt.close(fig)
        empty = np.full((self.max_depth, bins), np.nan)
        self.image = ax_hist.imshow(
            empty,
            aspect="auto",
            origin="lower",
            cmap="magma",
            norm=LogNorm(HISTOGRAM_FLOOR, 1.0),
            extent=(-1, 1, 0.5, self.max_depth + 0.5),
            interpolation="nearest",
        )
        fig.colorbar(self.image, ax=ax_hist, label="fraction of the layer's values", pad=0.01)
        ax_hist.set(ylabel="layer", xlabel="activation value")
        ax_hist.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_hist.set_facecolor("#dddddd")  # layers beyond the depth: grey
        layers = np.arange(1, self.max_depth + 1)
        (self.act_line,) = ax_std.semilogy(layers, np.ones(self.max_depth), "o-", ms=3,
                                           label="activations a")  # fmt: skip
        (self.grad_line,) = ax_std.semilogy(layers, np.ones(self.max_depth), "s-", ms=3,
                                            label="gradient dL/dz")  # fmt: skip
        ax_std.set(xlim=(0.5, self.max_depth + 0.5), ylim=self.std_limits, xlabel="layer")
        ax_std.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_std.set_ylabel("std")
        ax_std.grid(alpha=0.3)
        ax_std.legend(loc="lower left", fontsize="small")
        self.ax_hist, self.ax_std = ax_hist, ax_std
        self.title = fig.suptitle("")
        self._backgrounds = {}  # histogram range -> the figure without its changing artists
        super().__init__(controls, fig, columns=3)

    def _changing_artists(self):
        return (self.image, self.act_line, self.grad_line, self.ax_hist.title,
                self.ax_std.title, self.title)  # fmt: skip

    def _show_range(self, value_range):
        low, high = value_range
        self.image.set_extent((low, high, 0.5, self.max_depth + 0.5))
        self.ax_hist.set_xlim(low, high)

    def draw(self, depth, width, activation, init, gain):
        with one_thread():
            s = depth_statistics(
                depth, width, activation, init, gain, batch_size=self.batch_size, bins=self.bins
            )
        self.statistics = s
        self._show_range(DEPTH_ACTIVATIONS[activation][1])
        image = np.full((self.max_depth, self.bins), np.nan)
        image[:depth] = np.maximum(s.histograms, HISTOGRAM_FLOOR)
        self.image.set_data(image)
        low, high = self.std_limits
        for line, values in ((self.act_line, s.act_std), (self.grad_line, s.grad_std)):
            line.set_data(np.arange(1, depth + 1), np.clip(values, low, high))
        flat = ""
        if s.flat is not None:
            what = "dead" if activation == "relu" else "saturated"
            flat = f", {what} {s.flat[-1]:.0%}"
        self.ax_hist.set_title(f"last layer: std {s.act_std[-1]:.3g}{flat}", fontsize="medium")
        ratio = s.grad_std[0] / s.grad_std[-1]
        self.ax_std.set_title(
            f"gradient std, layer 1 / layer {depth}: {ratio:.3g}", fontsize="medium"
        )
        self.title.set_text(
            f"{DEPTH_ACTIVATIONS[activation][0]}, {DEPTH_INITS[init]}, gain {gain:.3g}: "
            f"{depth} layers of {width}"
        )

    def render(self) -> str:
        canvas = self.fig.canvas
        changing = self._changing_artists()
        value_range = DEPTH_ACTIVATIONS[self.controls["activation"].value][1]
        if not self._backgrounds:  # the first render: the background of each range, once
            for artist in changing:
                artist.set_animated(True)  # a full draw leaves animated artists out
            for key in dict.fromkeys(r for _, r in DEPTH_ACTIVATIONS.values()):
                self._show_range(key)
                canvas.draw()
                self._backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
            self._show_range(value_range)
        canvas.restore_region(self._backgrounds[value_range])
        for artist in changing:
            self.fig.draw_artist(artist)
        image = PIL.Image.fromarray(np.asarray(canvas.buffer_rgba()))
        return base64.b64encode(plotting.compact_png(image)).decode("ascii")


def depth_explorer(**values) -> DepthExplorer:
    """The lecture 03 explorer: display ``depth_explorer().widget`` in a notebook.

    Keyword arguments set the initial controls (depth, width, activation, init, gain) and
    the batch size and number of histogram bins.
    """
    return DepthExplorer(**values)
