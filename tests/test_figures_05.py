"""Lecture 05's figure helpers: the data each one draws."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import data, figures


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_boundary_panels_draws_each_classifier_and_one_legend():
    x, y = data.gaussian_mixture(40, seed=0)
    scores = {
        "x1 = 0": lambda p: p[:, 0],
        "x2 = 1": lambda p: p[:, 1] - 1.0,
        "bayes": data.gaussian_mixture_log_odds,
    }
    fig = figures.plot_boundary_panels(x, y, scores, ncols=2, resolution=41)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == list(scores)
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible()  # 3 panels on a 2 x 2 grid
    _, _, line, bayes = visible[0].collections
    (path,) = [p for p in line.get_paths() if len(p.vertices)]
    np.testing.assert_allclose(path.vertices[:, 0], 0.0, atol=1e-6)  # the line x1 = 0
    (path,) = [p for p in visible[1].collections[2].get_paths() if len(p.vertices)]
    np.testing.assert_allclose(path.vertices[:, 1], 1.0, atol=1e-6)
    vertices = np.concatenate([p.vertices for p in bayes.get_paths()])  # the dashed boundary
    assert data.gaussian_mixture_log_odds(torch.tensor(vertices)).abs().max() < 0.3
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "class 0",
        "class 1",
        "network",
        "Bayes boundary",
    ]


def test_plot_penalty_paths_draws_paths_balls_and_the_minimum():
    H = np.array([[1.0, 0.3], [0.3, 0.5]])
    w_star = np.array([1.5, 0.5])
    l2 = np.array([[1.5, 0.5], [1.0, 0.4], [0.5, 0.2]])
    l1 = torch.tensor([[1.5, 0.5], [1.2, 0.0], [0.6, 0.0]])
    ax = figures.plot_penalty_paths(
        H,
        w_star,
        {"L2": l2, "L1": l1},
        marks={"l1 point": (l1[1], "l1"), "l2 point": (l2[1], "l2")},
    )
    lines = {line.get_label(): line for line in ax.lines}
    np.testing.assert_allclose(lines["L2"].get_xydata(), l2)
    np.testing.assert_allclose(lines["L1"].get_xydata(), l1.numpy())
    np.testing.assert_allclose(lines["l1 point"].get_xydata(), [[1.2, 0.0]])
    balls = [line for line in ax.lines if line.get_linestyle() == "--"]
    diamond, circle = (b.get_xydata() for b in balls)
    np.testing.assert_allclose(np.abs(diamond).sum(axis=1), 1.2)  # |w1| + |w2| = r through (1.2, 0)
    np.testing.assert_allclose(np.hypot(*circle.T), np.hypot(1.0, 0.4))
    np.testing.assert_allclose(lines["$w^*$ (no penalty)"].get_xydata(), [w_star])
    assert ax.collections  # the loss contours


def test_plot_weight_histograms_counts_values_and_exact_zeros():
    weights = {
        "sparse": torch.tensor([0.0, 0.0, 0.0, 0.5, -0.5, 0.25]),
        "dense": np.array([0.1, -0.2]),
    }
    fig = figures.plot_weight_histograms(weights, bins=5, limit=0.5)
    sparse, dense = fig.axes
    assert sparse.get_title() == "sparse\nexactly 0: 50%" and dense.get_title().endswith("0%")
    heights = [p.get_height() for p in sparse.patches]
    assert heights == [1, 0, 3, 1, 1]  # [-0.5, -0.3), ..., the zeros in the middle bar
    assert sparse.patches[2].get_facecolor() != sparse.patches[0].get_facecolor()  # red: zero
    assert sum(p.get_height() for p in dense.patches) == 2


def test_plot_pixel_maps_shows_each_map_as_an_8x8_image():
    a, b = np.arange(64.0), np.eye(8)
    fig = figures.plot_pixel_maps({"ramp": a, "identity": torch.tensor(b)})
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["ramp", "identity"]
    np.testing.assert_array_equal(images[0].get_array(), a.reshape(8, 8))
    np.testing.assert_array_equal(images[1].get_array(), b)
    assert len(fig.axes) == 4  # two panels and their colour bars


def test_plot_early_stopping_marks_the_epochs_after_which_it_stopped():
    history = {
        "train_loss": [1.0, 0.5, 0.3, 0.2],
        "val_loss": [1.1, 0.7, 0.8, 0.9],
        "train_acc": [0.5, 0.7, 0.8, 0.9],
        "val_acc": [0.4, 0.6, 0.55, 0.5],
    }
    fig = figures.plot_early_stopping(history, 1, 3, other={"weights settled": 2})
    ax_loss, ax_acc = fig.axes
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), history["val_acc"])
    np.testing.assert_allclose(ax_loss.lines[1].get_xydata()[:, 0], [1, 2, 3, 4])
    vertical = {line.get_label(): line.get_xdata()[0] for line in ax_loss.lines[2:]}
    assert vertical == {
        "best (restored): 2 epochs": 2,
        "stopped: 4 epochs": 4,
        "weights settled: 3 epochs": 3,
    }
