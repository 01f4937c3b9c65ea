"""Lecture 01 figure helpers plot the data they are given, on the right axes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import figures


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _xy(line):
    return line.get_xdata(), line.get_ydata()


def test_plot_loss_and_metric_puts_the_loss_above_the_metric():
    param = torch.linspace(-1, 1, 11)
    loss, metric = param**2, (param > 0).float()
    fig = figures.plot_loss_and_metric(
        param, loss, metric, param_label="t", marks={"points": [0.5, -0.25]}
    )
    ax_loss, ax_metric = fig.axes
    np.testing.assert_allclose(_xy(ax_loss.lines[0])[1], loss.numpy())
    np.testing.assert_allclose(_xy(ax_metric.lines[0])[1], metric.numpy())
    np.testing.assert_allclose(_xy(ax_metric.lines[0])[0], param.numpy())
    np.testing.assert_allclose(_xy(ax_metric.lines[1])[0], [0.5, -0.25])  # the marks
    assert ax_metric.get_xlabel() == "t" and ax_loss.get_ylabel() == "loss"
    assert ax_metric.lines[0].get_drawstyle() == "steps-mid"


def test_plot_losses_and_derivatives_draws_each_loss_left_and_its_derivative_right():
    r = np.linspace(-2, 2, 9)
    fig = figures.plot_losses_and_derivatives(r, {"sq": (r**2, 2 * r), "abs": (abs(r), np.sign(r))})
    ax_loss, ax_grad = fig.axes
    np.testing.assert_allclose(_xy(ax_loss.lines[0])[1], r**2)
    np.testing.assert_allclose(_xy(ax_grad.lines[0])[1], 2 * r)
    np.testing.assert_allclose(_xy(ax_loss.lines[1])[1], abs(r))
    np.testing.assert_allclose(_xy(ax_grad.lines[1])[1], np.sign(r))
    assert ax_loss.lines[1].get_color() == ax_grad.lines[1].get_color()
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["sq", "abs"]


def test_plot_line_fits_draws_points_outliers_and_each_line():
    x, y = np.arange(5.0), np.array([1.0, 3.0, 5.0, 7.0, -10.0])
    outliers = np.array([False, False, False, False, True])
    ax = figures.plot_line_fits(x, y, {"fit": (2.0, 1.0)}, outliers=outliers, true_line=(2.0, 0.5))
    inliers, marked = ax.collections
    np.testing.assert_allclose(inliers.get_offsets(), np.c_[x[:4], y[:4]])
    np.testing.assert_allclose(marked.get_offsets(), [[4.0, -10.0]])
    true_line, fit = ax.lines
    np.testing.assert_allclose(_xy(true_line)[1], [0.5, 8.5])  # 2x + 0.5 at x = 0 and 4
    np.testing.assert_allclose(_xy(fit)[1], [1.0, 9.0])


def test_plot_gradient_magnitudes_draws_absolute_values_on_a_log_axis():
    z = np.linspace(-3, 3, 7)
    fig = figures.plot_gradient_magnitudes(
        z, {"left": {"a": -np.exp(z)}, "right": {"b": np.ones(7), "c": 2 * z}}, shade=(-3, 0)
    )
    left, right = fig.axes
    np.testing.assert_allclose(_xy(left.lines[0])[1], np.exp(z))
    np.testing.assert_allclose(_xy(right.lines[1])[1], np.abs(2 * z))
    assert left.get_yscale() == right.get_yscale() == "log"
    assert len(left.patches) == 1  # the shaded range
