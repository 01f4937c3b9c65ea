"""The lecture 02 plot helpers in course_utils.plotting draw what they promise."""

import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import data, plotting


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_paths_and_losses_draws_paths_and_matching_loss_curves():
    f = functools.partial(data.quadratic, condition_number=10.0)
    gd = [torch.tensor([-1.5, 1.0], dtype=torch.float64)]
    for _ in range(10):
        gd.append(gd[-1] - 0.05 * torch.tensor([1.0, 10.0], dtype=torch.float64) * gd[-1])
    straight = torch.tensor([[1.0, 1.0], [0.5, 0.5], [0.0, 0.0]])  # ends exactly at the minimum
    fig = plotting.plot_paths_and_losses(f, {"gd": gd, "straight": straight}, f_min=0.0)
    ax_path, ax_loss = fig.axes
    assert len(ax_path.lines) == 6  # a line, a start and an end marker per path
    assert [t.get_text() for t in ax_path.get_legend().get_texts()] == ["gd", "straight"]
    assert len(ax_loss.lines) == 2 and ax_loss.get_yscale() == "log"
    for i, line in enumerate(ax_loss.lines):
        assert line.get_color() == ax_path.lines[3 * i].get_color()
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), f(torch.stack(gd)).numpy())
    # f = 0 at the minimum is drawn at the floor, where a log axis can show it
    np.testing.assert_allclose(ax_loss.lines[1].get_ydata(), [1.0 * 5.5, 0.25 * 5.5, 1e-16])


def test_plot_paths_and_losses_subtracts_f_min_and_leaves_out_non_finite_values():
    path = torch.tensor([[0.0, 0.5], [0.0, 1.0], [float("inf"), 0.0]])
    fig = plotting.plot_paths_and_losses(data.saddle, {"run": path}, f_min=-0.25, title="saddle")
    gaps = fig.axes[1].lines[0].get_ydata()
    np.testing.assert_allclose(gaps[:2], [0.5**4 / 4 - 0.5**2 / 2 + 0.25, 1e-16], atol=1e-15)
    assert np.isnan(gaps[2])
    assert fig.get_suptitle() == "saddle"


def test_plot_panels_draws_each_curve_with_its_format():
    x = np.arange(1, 6)
    fig = plotting.plot_panels(
        {
            "left": {"measured": (x, x**2, "o"), "theory": (torch.tensor(x), x**2, "k:")},
            "right": {"only": (list(x), 1.0 / x)},
        },
        xlabel="b",
        ylabel=["left y", None],
        logx=True,
        logy=True,
    )
    left, right = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["left", "right"]
    assert left.get_ylabel() == "left y" and right.get_ylabel() == ""
    assert left.get_xscale() == right.get_yscale() == "log"
    assert left.lines[0].get_marker() == "o" and left.lines[0].get_linestyle() == "None"
    assert left.lines[1].get_linestyle() == ":" and left.lines[1].get_color() == "k"
    np.testing.assert_allclose(right.lines[0].get_ydata(), 1.0 / x)
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["measured", "theory"]


def test_plot_panels_with_one_panel_and_shared_y():
    fig = plotting.plot_panels({"one": {"a": ([0, 1], [2, 3])}}, xlabel="t", ylabel="y")
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "y"
    fig = plotting.plot_panels(
        {"a": {"a": ([0, 1], [0, 1])}, "b": {"b": ([0, 1], [0, 5])}}, xlabel="t", sharey=True
    )
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()
