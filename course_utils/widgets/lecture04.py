"""Lecture 04 explorer: how batch size and momentum shape the running statistics of BN.

One feature with values drawn from N(mean, std^2) is fed, batch after batch, to the running
statistics update of ``course_utils.batchnorm.update_running_stats`` (what BatchNorm1d does
in training mode), starting from PyTorch's initial values (mean 0, variance 1). The
explorer shows each batch's mean and variance (dots: how noisy the batch statistics are)
and the running estimates (lines: how fast they converge, and how much they still wobble).
"""

import math
from dataclasses import dataclass

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils import _validate, batchnorm
from course_utils.widgets.explorer import Explorer, slider

__all__ = [
    "RUNNING_STATS_BATCH_SIZES",
    "RunningStatsExplorer",
    "RunningStatsTrace",
    "running_stats_explorer",
    "running_stats_steps_to_converge",
    "running_stats_trace",
]

RUNNING_STATS_BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class RunningStatsTrace:
    """Batch statistics and running estimates after each of ``steps`` training batches."""

    batch_mean: np.ndarray  # (steps,) mean of each batch
    batch_var: np.ndarray  # (steps,) unbiased variance of each batch
    running_mean: np.ndarray  # (steps + 1,) starting at 0 (PyTorch's initial value)
    running_var: np.ndarray  # (steps + 1,) starting at 1


def running_stats_trace(
    batch_size: int,
    momentum: float,
    *,
    steps: int = 200,
    mean: float = 2.0,
    std: float = 1.5,
    seed: int = 0,
    samples: torch.Tensor | None = None,
) -> RunningStatsTrace:
    """Feed ``steps`` batches of ``batch_size`` values of N(mean, std^2) to the running update.

    Batch t is mean + std * samples[t, :batch_size], with samples a (steps, >= batch_size)
    float64 tensor of standard normal values (drawn from ``seed`` if not given; the explorer
    draws it once, so that changing the batch size keeps the same underlying numbers). Each
    step calls ``batchnorm.update_running_stats`` with this momentum, in float64.
    """
    _validate.integer(batch_size, "batch_size", low=2)
    _validate.number(momentum, "momentum", low=0.0, high=1.0)
    _validate.integer(steps, "steps", low=1)
    if samples is None:
        gen = torch.Generator().manual_seed(seed)
        samples = torch.randn(steps, batch_size, generator=gen, dtype=torch.float64)
    if samples.shape[0] < steps or samples.shape[1] < batch_size:
        raise ValueError(
            f"samples must have shape (>= {steps}, >= {batch_size}), got {tuple(samples.shape)}"
        )
    batches = (mean + std * samples[:steps, :batch_size]).unsqueeze(-1)  # (steps, N, 1)
    running_mean, running_var = torch.zeros(1, dtype=torch.float64), torch.ones(1).double()
    means, variances = [running_mean.item()], [running_var.item()]
    for x in batches:
        running_mean, running_var = batchnorm.update_running_stats(
            running_mean, running_var, x, momentum
        )
        means.append(running_mean.item())
        variances.append(running_var.item())
    var, mu = torch.var_mean(batches[:, :, 0], dim=1, correction=1)
    return RunningStatsTrace(mu.numpy(), var.numpy(), np.array(means), np.array(variances))


def running_stats_steps_to_converge(momentum: float, fraction: float = 0.05) -> float:
    """Steps k after which the gap to a constant target has shrunk to ``fraction`` of itself.

    Each update multiplies the gap by (1 - momentum), so k = log(fraction) / log(1 - momentum)
    (0 for momentum 1, infinite for momentum 0).
    """
    momentum = _validate.number(momentum, "momentum", low=0.0, high=1.0)
    fraction = _validate.number(fraction, "fraction", low=0.0, high=1.0, low_open=True)
    if momentum == 1.0:
        return 0.0
    if momentum == 0.0:
        return math.inf
    return math.log(fraction) / math.log(1.0 - momentum)


class RunningStatsExplorer(Explorer):
    """Batch size and momentum; the batch statistics and running estimates over the steps.

    The samples are drawn once, so that moving a control changes only what it controls. The
    dots, lines, band and titles are the animated artists: the axes, true values and legend
    are drawn once and kept as the background (see ``Explorer``).
    """

    def __init__(
        self, batch_size: int = 16, momentum: float = 0.1, steps: int = 200, seed: int = 0
    ):
        self.steps = _validate.integer(steps, "steps", low=10)
        self.mean, self.std = 2.0, 1.5
        gen = torch.Generator().manual_seed(seed)
        self.samples = torch.randn(
            steps, max(RUNNING_STATS_BATCH_SIZES), generator=gen, dtype=torch.float64
        )
        controls = {
            # a dropdown, not a SelectionSlider: the browser test finds and moves dropdowns
            "batch_size": ipw.Dropdown(
                options=RUNNING_STATS_BATCH_SIZES, value=batch_size, description="batch size N"
            ),
            "momentum": slider("momentum m", momentum, 10**-2.5, 1.0, log=True),
        }
        for control in controls.values():
            control.style.description_width = "100px"

        with plt.ioff():
            fig, (ax_mean, ax_var) = plt.subplots(1, 2, figsize=(9.0, 4.0), layout="constrained")
        plt.close(fig)
        steps_axis = np.arange(1, steps + 1)
        var = self.std**2
        self.artists, self.true_lines = {}, []
        for ax, true, ylim, label in (
            (ax_mean, self.mean, (-1.5, 5.5), "mean"),
            (ax_var, var, (0.0, 3.5 * var), "variance"),
        ):
            (dots,) = ax.plot(steps_axis, np.zeros(steps), ".", color="tab:blue", ms=3, alpha=0.6)
            (line,) = ax.plot(np.arange(steps + 1), np.zeros(steps + 1), color="tab:orange", lw=2)
            vline = ax.axvline(0.0, color="gray", linestyle=":", lw=1.5)
            # above the translucent band and the curves: drawn with the animated artists
            true_line = ax.axhline(true, color="black", linestyle="--", lw=1, zorder=2.5)
            self.true_lines.append(true_line)
            ax.set(xlim=(0, steps), ylim=ylim, xlabel="training step (batch)", ylabel=label)
            self.artists[label] = [dots, line, vline]
        self.band = ax_mean.axhspan(self.mean, self.mean, color="tab:orange", alpha=0.25, lw=0)
        self.artists["mean"].append(self.band)
        fig.legend(
            [dots, line, true_line, self.band, vline],
            [
                "batch statistic",
                "running estimate",
                "true value",
                "true mean ± predicted std of the running mean",
                "95% of the start gap closed",
            ],
            loc="outside lower center",
            ncols=3,
            fontsize="small",
        )
        self.ax_mean, self.ax_var = ax_mean, ax_var
        self.title = fig.suptitle("")
        animated = (
            *self.artists["mean"],
            *self.artists["variance"],
            *self.true_lines,
            ax_mean.title,
            ax_var.title,
            self.title,
        )
        super().__init__(controls, fig, animated=animated)

    def draw(self, batch_size, momentum):
        t = running_stats_trace(
            batch_size,
            momentum,
            steps=self.steps,
            mean=self.mean,
            std=self.std,
            samples=self.samples,
        )
        self.trace = t
        k95 = running_stats_steps_to_converge(momentum)
        predicted = batchnorm.running_mean_std(batch_size, momentum, self.std)
        for label, batch, running in (
            ("mean", t.batch_mean, t.running_mean),
            ("variance", t.batch_var, t.running_var),
        ):
            dots, line, vline = self.artists[label][:3]
            dots.set_ydata(batch)
            line.set_ydata(running)
            vline.set_xdata([min(k95, self.steps)] * 2)
            vline.set_visible(k95 <= self.steps)
        self.band.set_y(self.mean - predicted)
        self.band.set_height(2 * predicted)
        settled = (
            f"settled std {predicted:.3f} (band)"
            if k95 <= self.steps
            else f"not settled after {self.steps} steps"
        )
        self.ax_mean.set_title(
            f"batch means: std {t.batch_mean.std():.3f} "
            f"(σ/√N = {self.std / math.sqrt(batch_size):.3f})\nrunning mean: {settled}",
            fontsize="small",
        )
        self.ax_var.set_title(
            f"batch variances: std {t.batch_var.std():.2f} "
            f"(σ²√(2/(N−1)) = {self.std**2 * math.sqrt(2 / (batch_size - 1)):.2f})\n"
            f"running variance at the end: {t.running_var[-1]:.2f} (σ² = {self.std**2:.2f})",
            fontsize="small",
        )
        converge = f"{math.ceil(k95)} steps" if math.isfinite(k95) else "never"
        self.title.set_text(f"the start gap shrinks like (1 − m)ᵏ: 95% closed after {converge}")


def running_stats_explorer(**values) -> RunningStatsExplorer:
    """The lecture 04 explorer: display ``running_stats_explorer().widget`` in a notebook.

    Keyword arguments set the initial batch size and momentum, the number of steps and the
    seed of the samples.
    """
    return RunningStatsExplorer(**values)
