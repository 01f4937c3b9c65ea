"""Lecture 01 explorer: softmax with a temperature, the cross-entropy loss and its gradient."""

from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import _validate, losses
from course_utils.widgets.explorer import Explorer, slider

__all__ = ["SoftmaxExplorer", "SoftmaxQuantities", "softmax_explorer", "softmax_quantities"]


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
        controls = {
            f"z{c}": slider(f"logit z{c}", float(v), -6.0, 6.0, 0.1) for c, v in enumerate(logits)
        }
        controls["temperature"] = slider("temperature T", temperature, 0.5, 3.0, 0.05)
        controls["target"] = ipw.Dropdown(
            options=[(f"class {c}", c) for c in range(n)], value=target, description="gold class"
        )
        for control in controls.values():
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
        zero_line = ax_g.axhline(0.0, color="black", linewidth=0.8)
        # |p_c - g_c| <= 1, so |dL/dz_c| <= 1/T: these two lines move with T
        self.grad_bounds = [
            ax_g.axhline(s, color="gray", linestyle=":", label=label)
            for s, label in ((-1.0, r"$\pm 1/T$ (largest possible)"), (1.0, None))
        ]
        legend = ax_g.legend(loc="upper right", fontsize="small")
        ax_g.set(
            ylim=(-2.3, 2.3), xticks=classes, xlabel="class c", ylabel=r"$\partial L/\partial z_c$"
        )
        ax_g.set_title(r"gradient $\partial L/\partial z = (p - g)\,/\,T$")
        self.title = fig.suptitle("")
        # What draw changes, redrawn on a kept background; the zero line and the legend
        # are static but must stay on top of the bars and the bound lines.
        animated = (
            *self.prob_bars.patches,
            *self.prob_labels,
            *self.grad_bars.patches,
            *self.grad_labels,
            *self.grad_bounds,
            zero_line,
            legend,
            self.title,
        )
        super().__init__(controls, fig, animated=animated)

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
        self.title.set_text(
            f"gold class {target} (orange):  loss $L = -\\log p_{target}$ = {q.loss:.3f}"
        )


def softmax_explorer(
    logits=(2.0, 1.0, 0.5, -1.0), temperature: float = 1.0, target: int = 0
) -> SoftmaxExplorer:
    """The lecture 01 explorer: display ``softmax_explorer().widget`` in a notebook."""
    return SoftmaxExplorer(logits, temperature, target)
