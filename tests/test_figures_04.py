"""Lecture 04 figure helpers plot the data they are given, on the right axes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import figures


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_covariate_shift_draws_truth_fits_and_densities():
    x = np.linspace(-2, 2, 11)
    ax = figures.plot_covariate_shift(
        x,
        np.sin(x),
        {"source": np.exp(-((x + 1) ** 2)), "target": torch.tensor(np.exp(-((x - 1) ** 2)))},
        {"fit a": 0.1 * x, "fit b": -0.2 * x + 1},
    )
    truth, fit_a, fit_b = ax.lines
    np.testing.assert_allclose(truth.get_ydata(), np.sin(x))
    np.testing.assert_allclose(fit_b.get_ydata(), -0.2 * x + 1)
    assert fit_a.get_color() == "C0" and fit_b.get_color() == "C1"
    source, target = ax.right.collections
    assert np.asarray(source.get_paths()[0].vertices)[:, 1].max() == pytest.approx(1.0, abs=0.05)
    assert np.asarray(target.get_paths()[0].vertices)[:, 1].max() == pytest.approx(1.0, abs=0.05)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["true function", "fit a", "fit b", "source", "target"]
    assert ax.get_zorder() > ax.right.get_zorder()


def test_plot_activation_drift_draws_a_median_and_a_band_per_unit():
    steps = np.arange(1, 6)
    values = np.stack([np.stack([steps - 1.0, steps, steps + 1.0], -1)] * 2, axis=1)  # (5, 2, 3)
    fig = figures.plot_activation_drift(
        {"a": (steps, values), "b": (torch.tensor(steps), torch.tensor(2 * values))}
    )
    left, right = fig.axes
    assert len(left.lines) == 2 and len(left.collections) == 2
    np.testing.assert_allclose(right.lines[1].get_ydata(), 2 * steps)
    band = left.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.0) and band.max() == pytest.approx(6.0)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert left.get_shared_y_axes().joined(left, right)


def test_plot_batch_jacobians_shows_each_matrix_with_example_blocks():
    jac = np.arange(36.0).reshape(6, 6) - 18
    fig = figures.plot_batch_jacobians({"J": jac, "diag": np.eye(6)}, batch_size=3, features=2)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), jac)
    assert ax.images[0].get_clim() == (-18.0, 18.0)  # symmetric around 0
    assert len(ax.lines) == 4  # 2 horizontal and 2 vertical separators between 3 examples
    np.testing.assert_allclose(ax.get_xticks(), [0.5, 2.5, 4.5])
    with pytest.raises(ValueError, match=r"shape \(6, 6\)"):
        figures.plot_batch_jacobians({"bad": np.eye(5)}, batch_size=3, features=2)
