"""Lecture 03 figure helpers: each draws the data it is given (checked on the artists)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import figures


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_layer_histograms_draws_one_normalized_step_line_per_layer():
    layers = [torch.tensor([-0.9, 0.1, 0.2, 5.0]), torch.tensor([0.0, 0.0, -3.0, 0.5])]
    fig = figures.plot_layer_histograms({"a": layers, "b": layers[:1]}, value_range=(-1, 1), bins=4)
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [2, 1]
    edges = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    first = fig.axes[0].lines[0]
    np.testing.assert_allclose(first.get_xdata(), edges)
    # -0.9 -> bin 0; 0.1, 0.2 -> bin 2; 5.0 is clipped into the last bin; the step repeats the last
    np.testing.assert_allclose(first.get_ydata(), [0.25, 0.0, 0.5, 0.25, 0.25])
    second = fig.axes[0].lines[1]  # -3.0 clipped into bin 0; 0.0 twice and 0.5 in bins 2 and 3
    np.testing.assert_allclose(second.get_ydata(), [0.25, 0.0, 0.5, 0.25, 0.25])
    assert fig.axes[0].get_title() == "a" and fig.axes[0].get_yscale() == "log"
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels == ["layer 1"]


def test_plot_activation_functions_draws_each_function_and_its_autograd_derivative():
    z = torch.linspace(-2, 2, 9, dtype=torch.float64)
    fig = figures.plot_activation_functions({"left": ["tanh", "relu"], "right": ["maxout"]}, x=z)
    top_left, top_right, bottom_left, bottom_right = fig.axes  # rows first
    tanh_f, relu_f = top_left.lines[:2]
    tanh_d, relu_d = bottom_left.lines[:2]
    np.testing.assert_allclose(tanh_f.get_ydata(), torch.tanh(z).numpy())
    np.testing.assert_allclose(tanh_d.get_ydata(), (1 - torch.tanh(z) ** 2).numpy())
    np.testing.assert_allclose(relu_f.get_ydata(), torch.relu(z).numpy())
    np.testing.assert_allclose(relu_d.get_ydata(), (z > 0).double().numpy())  # 0 at z = 0
    maxout = np.maximum(z.numpy(), -0.5 * z.numpy() - 1.0)
    np.testing.assert_allclose(top_right.lines[0].get_ydata(), maxout)
    slope = np.where(z.numpy() > -2 / 3, 1.0, -0.5)
    np.testing.assert_allclose(bottom_right.lines[0].get_ydata(), slope)
    assert tanh_f.get_color() == tanh_d.get_color()
    assert top_left.get_title() == "left" and top_right.get_title() == "right"


def test_plot_training_activations_draws_a_mean_line_and_a_std_band_per_layer():
    steps = np.array([0, 10, 20])
    means = np.array([[0.5, 0.5], [0.5, 0.2], [0.5, 0.1]])
    stds = np.array([[0.1, 0.1], [0.1, 0.05], [0.1, 0.01]])
    fig = figures.plot_training_activations(
        {"run": (steps, means, stds), "again": (steps, means, stds)}
    )
    ax = fig.axes[0]
    assert len(fig.axes) == 2 and len(ax.lines) == 2 and len(ax.collections) == 2
    np.testing.assert_allclose(ax.lines[1].get_xydata(), np.c_[steps, means[:, 1]])
    band = ax.collections[1].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(0.09) and band[:, 1].max() == pytest.approx(0.6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["layer 1", "layer 2"]
