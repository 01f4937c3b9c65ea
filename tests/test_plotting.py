"""course_utils.plotting: each helper draws the expected artists and returns its Axes/Figure."""

import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import data, plotting, schedules


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_contour_draws_each_trajectory_with_start_and_end_markers():
    gd = [torch.tensor([-1.5, 1.0])]
    for _ in range(10):
        gd.append(gd[-1] - 0.1 * torch.tensor([2.0, 20.0]) * gd[-1])
    adam = torch.tensor([[1.0, 1.5], [0.5, 0.5], [0.0, 0.1]])
    ax = plotting.plot_contour(
        lambda xy: data.quadratic(xy, condition_number=10), {"gd": gd, "adam": adam}
    )
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == 6  # line, start, end per trajectory
    assert len(ax.collections) >= 1  # the contour set
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "adam"]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), torch.stack(gd).numpy())
    np.testing.assert_allclose(ax.lines[4].get_xydata(), [[1.0, 1.5]])  # adam's start
    np.testing.assert_allclose(ax.lines[5].get_xydata(), [[0.0, 0.1]])  # adam's end
    assert ax.lines[3].get_color() == ax.lines[4].get_color() == ax.lines[5].get_color()


def test_plot_contour_without_trajectories_and_on_given_axes():
    _, (left, right) = plt.subplots(1, 2)
    ax = plotting.plot_contour(
        data.rosenbrock, xlim=(-2, 2), ylim=(-1, 3), levels=np.logspace(-1, 3, 10), ax=right
    )
    assert ax is right and len(left.collections) == 0
    assert len(ax.lines) == 0 and len(ax.collections) >= 1
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 3)


def test_plot_contour_accepts_points_that_require_grad():
    x = torch.tensor([0.5, 0.5], requires_grad=True)
    path = [x, x * 0.5, x * 0.25]  # e.g. collected straight from an optimizer loop
    ax = plotting.plot_contour(data.saddle, {"path": path})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.5, 0.25, 0.125])


HISTORY = {"lr": [0.1] * 4, "train_loss": [1.0, 0.5, 0.3, 0.2], "val_loss": [1.1, 0.6, 0.5, 0.5]}


def test_plot_losses_single_history():
    ax = plotting.plot_losses(HISTORY)
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), HISTORY["val_loss"])
    assert ax.get_yscale() == "linear"


def test_plot_losses_many_histories_log_scale():
    no_val = {"train_loss": [2.0, 1.0, 0.1]}
    ax = plotting.plot_losses({"sgd": HISTORY, "adam": no_val, "rmsprop": no_val}, log_scale=True)
    assert len(ax.lines) == 4  # sgd train + val, adam train, rmsprop train
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["sgd train loss", "sgd val loss", "adam train loss", "rmsprop train loss"]
    assert ax.lines[0].get_color() == ax.lines[1].get_color() != ax.lines[2].get_color()


def test_comparison_grid_calls_plot_fn_for_every_cell():
    calls = []

    def plot_fn(ax, lr, batch_size):
        calls.append((lr, batch_size))
        ax.plot([0, 1], [lr, batch_size])

    fig = plotting.comparison_grid([0.1, 0.01], [8, 32, 128], plot_fn)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 6
    assert calls == [(0.1, 8), (0.1, 32), (0.1, 128), (0.01, 8), (0.01, 32), (0.01, 128)]
    assert fig.axes[4].get_title() == "lr=0.01, batch size=32"
    assert all(len(ax.lines) == 1 for ax in fig.axes)


def test_plot_lr_schedule_one_and_many():
    cosine = functools.partial(schedules.cosine_annealing_lr, base_lr=0.1, T_max=10)
    ax = plotting.plot_lr_schedule(cosine, 10)
    assert len(ax.lines) == 1 and ax.get_legend() is None
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [cosine(e) for e in range(10)])

    steps = functools.partial(schedules.multistep_lr, base_lr=0.1, milestones=[3, 6])
    ax = plotting.plot_lr_schedule({"cosine": cosine, "steps": steps}, 8, log_scale=True)
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.1] * 3 + [0.01] * 3 + [0.001] * 2)
