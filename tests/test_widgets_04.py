"""Lecture 04's running-statistics explorer: its compute function against torch.nn.BatchNorm1d,
its closed forms, and what it draws."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import batchnorm, widgets


@pytest.mark.parametrize(("batch_size", "momentum"), [(2, 0.1), (16, 0.01), (64, 1.0), (8, 0.0)])
def test_trace_follows_torch_batchnorm_fed_the_same_batches(batch_size, momentum):
    samples = torch.randn(30, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    trace = widgets.running_stats_trace(
        batch_size, momentum, steps=30, mean=-1.0, std=0.5, samples=samples
    )
    module = torch.nn.BatchNorm1d(1, momentum=momentum).double()
    means, variances = [0.0], [1.0]
    for t in range(30):
        x = (-1.0 + 0.5 * samples[t, :batch_size]).unsqueeze(1)
        module(x)
        means.append(module.running_mean.item())
        variances.append(module.running_var.item())
        assert trace.batch_mean[t] == pytest.approx(x.mean().item(), rel=1e-12)
        assert trace.batch_var[t] == pytest.approx(x.var().item(), rel=1e-12)  # unbiased
    np.testing.assert_allclose(trace.running_mean, means, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(trace.running_var, variances, rtol=1e-12, atol=1e-15)


def test_trace_draws_its_own_samples_from_the_seed():
    a = widgets.running_stats_trace(4, 0.2, steps=10, seed=3)
    b = widgets.running_stats_trace(4, 0.2, steps=10, seed=3)
    c = widgets.running_stats_trace(4, 0.2, steps=10, seed=4)
    np.testing.assert_array_equal(a.running_mean, b.running_mean)
    assert not np.array_equal(a.batch_mean, c.batch_mean)
    assert a.running_mean.shape == (11,) and a.batch_var.shape == (10,)


def test_trace_refuses_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        widgets.running_stats_trace(1, 0.1)
    with pytest.raises(ValueError, match="momentum must be <= 1"):
        widgets.running_stats_trace(4, 1.5)
    with pytest.raises(ValueError, match="samples must have shape"):
        widgets.running_stats_trace(8, 0.1, steps=5, samples=torch.zeros(5, 4).double())


def test_steps_to_converge_closes_the_gap_to_the_fraction():
    for momentum in (0.01, 0.1, 0.5):
        k = widgets.running_stats_steps_to_converge(momentum, 0.05)
        assert (1 - momentum) ** k == pytest.approx(0.05)
        # the trace's start gap (0 -> mean 2) is below 5% after ceil(k) steps, without noise
        trace = widgets.running_stats_trace(
            2, momentum, steps=math.ceil(k) + 1, std=0.0, mean=2.0, seed=0
        )
        assert abs(trace.running_mean[math.ceil(k)] - 2.0) <= 0.05 * 2.0 + 1e-12
        assert abs(trace.running_mean[math.ceil(k) - 1] - 2.0) > 0.05 * 2.0
    assert widgets.running_stats_steps_to_converge(1.0) == 0.0
    assert widgets.running_stats_steps_to_converge(0.0) == math.inf


@pytest.fixture
def explorer():
    built = widgets.running_stats_explorer(batch_size=16, momentum=0.1, steps=100)
    yield built
    plt.close(built.fig)


def test_explorer_draws_the_trace_the_band_and_the_convergence_step(explorer):
    explorer.update(batch_size=32, momentum=0.2)
    t = explorer.trace
    expected = widgets.running_stats_trace(32, 0.2, steps=100, samples=explorer.samples)
    np.testing.assert_array_equal(t.running_mean, expected.running_mean)
    dots, line, vline, band = explorer.artists["mean"]
    np.testing.assert_array_equal(dots.get_ydata(), expected.batch_mean)
    np.testing.assert_array_equal(line.get_ydata(), expected.running_mean)
    var_dots, var_line, _ = explorer.artists["variance"]
    np.testing.assert_array_equal(var_dots.get_ydata(), expected.batch_var)
    np.testing.assert_array_equal(var_line.get_ydata(), expected.running_var)
    predicted = batchnorm.running_mean_std(32, 0.2, explorer.std)
    assert band.get_height() == pytest.approx(2 * predicted)
    assert band.get_y() == pytest.approx(explorer.mean - predicted)
    k = widgets.running_stats_steps_to_converge(0.2)
    assert vline.get_xdata()[0] == pytest.approx(k) and vline.get_visible()
    assert f"{math.ceil(k)} steps" in explorer.title.get_text()
    assert f"settled std {predicted:.3f}" in explorer.ax_mean.get_title()


def test_explorer_says_when_the_running_mean_has_not_settled(explorer):
    explorer.update(momentum=0.01)  # 95% of the gap closes after ~298 > 100 steps
    assert "not settled after 100 steps" in explorer.ax_mean.get_title()
    assert not explorer.artists["mean"][2].get_visible()
    explorer.update(momentum=1.0)
    assert "after 0 steps" in explorer.title.get_text()
