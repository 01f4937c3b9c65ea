"""Headless tests of lecture 07's label-smoothing explorer: its numbers and its redraws."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import widgets


@pytest.mark.parametrize(("num_classes", "alpha"), [(2, 0.1), (10, 0.1), (20, 0.01), (5, 1.0)])
def test_quantities_match_torch_and_the_minimum_of_the_curve(num_classes, alpha):
    q = widgets.label_smoothing_quantities(num_classes, alpha)
    expected_target = [1 - alpha + alpha / num_classes] + [alpha / num_classes] * (num_classes - 1)
    np.testing.assert_allclose(q.target, expected_target, rtol=1e-12)
    logits = torch.zeros(len(q.gaps), num_classes, dtype=torch.float64)
    logits[:, 0] = torch.from_numpy(q.gaps)
    target = torch.zeros(len(q.gaps), dtype=torch.int64)
    loss = F.cross_entropy(logits, target, label_smoothing=alpha, reduction="none")
    np.testing.assert_allclose(q.loss, loss.numpy(), rtol=1e-10)
    one_hot = F.cross_entropy(logits, target, reduction="none")
    np.testing.assert_allclose(q.one_hot_loss, one_hot.numpy(), rtol=1e-10, atol=1e-15)
    # the minimum of the plotted curve is at the grid point nearest to d*, and no lower
    spacing = q.gaps[1] - q.gaps[0]
    assert abs(q.gaps[q.loss.argmin()] - q.optimal_gap) <= spacing / 2 + 1e-12
    assert q.loss.min() >= q.floor - 1e-12
    assert q.floor == pytest.approx(-np.sum(q.target * np.log(q.target)), rel=1e-12)


def test_without_smoothing_there_is_no_minimum():
    q = widgets.label_smoothing_quantities(10, 0.0)
    assert q.optimal_gap == math.inf and q.floor == 0.0
    assert np.all(np.diff(q.loss) < 0)  # the loss falls along the whole grid
    np.testing.assert_allclose(q.loss, q.one_hot_loss)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_classes": 1}, ValueError, "num_classes"),
        ({"num_classes": 5000}, ValueError, "num_classes"),
        ({"alpha": 1.2}, ValueError, "alpha"),
        ({"gaps": [[0.0, 1.0]]}, ValueError, "gaps"),
    ],
)
def test_quantities_reject_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        widgets.label_smoothing_quantities(**({"num_classes": 10, "alpha": 0.1} | kwargs))


@pytest.fixture(scope="module")
def explorer():
    return widgets.label_smoothing_explorer(num_classes=10, alpha=0.1)


def test_explorer_draws_the_target_and_the_curve(explorer):
    explorer.update(num_classes=4, alpha=0.2)
    q = widgets.label_smoothing_quantities(4, 0.2)
    visible = [bar for bar in explorer.bars if bar.get_visible()]
    assert len(visible) == 4
    np.testing.assert_allclose([bar.get_height() for bar in visible], q.target)
    assert all(bar.get_x() + bar.get_width() <= 1.0 for bar in visible)  # inside the axes
    np.testing.assert_allclose(explorer.loss_line.get_ydata(), q.loss)
    np.testing.assert_allclose(explorer.optimum_marker.get_xydata(), [[q.optimal_gap, q.floor]])
    assert f"{q.optimal_gap:.2f}" in explorer.optimum_text.get_text()
    assert "K = 4, α = 0.20" in explorer.g_title.get_text()


def test_explorer_says_when_there_is_no_minimum(explorer):
    explorer.update(alpha=0.0)
    assert not explorer.optimum_line.get_visible()
    assert "no minimum" in explorer.optimum_text.get_text()
    explorer.update(alpha=0.1)
    assert explorer.optimum_line.get_visible()


def test_same_values_give_the_same_picture(explorer):
    explorer.update(num_classes=10, alpha=0.1)
    first = explorer.out.outputs[0]["data"]["image/png"]
    explorer.update(num_classes=3, alpha=0.5)
    assert explorer.out.outputs[0]["data"]["image/png"] != first
    explorer.update(num_classes=10, alpha=0.1)
    assert explorer.out.outputs[0]["data"]["image/png"] == first
