"""Headless tests of lecture 08's clipping explorer: its paths (against torch.optim and
torch.nn.utils with autograd gradients) and its redraws."""

import base64
import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import data, widgets


def _torch_path(mode, threshold, lr, steps):
    """The same descent with torch.optim.SGD, autograd and torch.nn.utils's clipping; for
    "per tensor", x and y are two parameters."""
    start = torch.tensor(widgets.CLIFF_START, dtype=torch.float64)
    x = start[:1].clone().requires_grad_()
    y = start[1:].clone().requires_grad_()
    opt = torch.optim.SGD([x, y], lr=lr, foreach=False)
    points = [start]
    for _ in range(steps):
        opt.zero_grad()
        data.cliff(torch.cat([x, y])).backward()
        if mode == "value":
            torch.nn.utils.clip_grad_value_([x, y], threshold)
        elif mode == "norm":
            torch.nn.utils.clip_grad_norm_([x, y], threshold)
        elif mode == "per tensor":
            for p in (x, y):
                torch.nn.utils.clip_grad_norm_([p], threshold)
        opt.step()
        points.append(torch.cat([x, y]).detach().clone())
    return torch.stack(points).numpy()


@pytest.mark.parametrize("mode", list(widgets.CLIP_MODES))
@pytest.mark.parametrize(("threshold", "lr"), [(1.0, 0.3), (5.0, 0.1), (0.3, 1.0)])
def test_clipped_descent_matches_torch(mode, threshold, lr):
    path = widgets.clipped_descent(mode, threshold, lr, steps=60)
    np.testing.assert_allclose(path.points, _torch_path(mode, threshold, lr, 60), atol=1e-10)
    values = data.cliff(torch.from_numpy(path.points)).numpy()
    np.testing.assert_allclose(path.values, values, rtol=1e-12, atol=1e-15)
    assert path.points.shape == (61, 2) and path.grad_norms.shape == path.clipped.shape == (60,)


def test_clipping_bounds_the_step_and_is_marked_where_it_acts():
    lr, c = 0.3, 1.0
    none = widgets.clipped_descent("none", c, lr)
    norm = widgets.clipped_descent("norm", c, lr)
    value = widgets.clipped_descent("value", c, lr)
    assert none.longest_step > 10  # the cliff throws the unclipped point onto flat ground
    assert none.values[-1] == pytest.approx(4.0, abs=1e-3) and not none.clipped.any()
    assert norm.longest_step <= lr * c + 1e-12
    assert value.longest_step <= lr * c * math.sqrt(2) + 1e-12
    for path in (norm, value):
        assert path.values[-1] < 1e-5
        # a step is marked clipped exactly when its gradient was larger than allowed
        # an entry above c means a norm above c
        assert path.clipped.any() and (path.clipped <= (path.grad_norms > c)).all()
    np.testing.assert_array_equal(norm.clipped, norm.grad_norms > c)
    steps = np.linalg.norm(np.diff(none.points, axis=0), axis=1)
    np.testing.assert_allclose(steps, lr * none.grad_norms, rtol=1e-9, atol=1e-12)
    minimum = np.array([math.cos(data.CLIFF_ANGLE), math.sin(data.CLIFF_ANGLE)])
    start_distance = np.linalg.norm(np.array(widgets.CLIFF_START) - minimum)
    assert none.farthest > 10 and norm.farthest == pytest.approx(start_distance)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"mode": "sometimes"}, ValueError, "mode"),
        ({"threshold": 0.0}, ValueError, "threshold"),
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": "slow"}, TypeError, "lr"),
        ({"steps": -3}, ValueError, "steps"),
    ],
)
def test_clipped_descent_rejects_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        widgets.clipped_descent(**({"mode": "norm", "threshold": 1.0, "lr": 0.3} | kwargs))


def test_clip_gradient_modes_on_one_vector():
    g = torch.tensor([3.0, -0.5], dtype=torch.float64)
    assert widgets.clip_gradient(g, "none", 1.0) is g
    assert widgets.clip_gradient(g, "value", 1.0).tolist() == [1.0, -0.5]
    np.testing.assert_allclose(widgets.clip_gradient(g, "norm", 1.0), g / (g.norm() + 1e-6))
    per_tensor = widgets.clip_gradient(g, "per tensor", 1.0)
    np.testing.assert_allclose(per_tensor, [3 / (3 + 1e-6), -0.5])  # value clipping, up to 1e-6


# --- the explorer object -------------------------------------------------------------------


def _png(explorer) -> bytes:
    (output,) = explorer.out.outputs
    return base64.b64decode(output["data"]["image/png"])


@pytest.fixture(scope="module")
def explorer():
    built = widgets.clipping_explorer()
    yield built
    plt.close(built.fig)


def test_explorer_starts_unclipped_and_shows_the_path(explorer):
    explorer.update(mode="none", threshold=1.0, lr=0.3)
    path = widgets.clipped_descent("none", 1.0, 0.3)
    np.testing.assert_allclose(explorer.path_line.get_xydata(), path.points)
    np.testing.assert_allclose(explorer.f_curve.get_ydata(), np.maximum(path.values, 1e-8))
    assert not explorer.reference_line.get_visible()
    assert explorer.controls["threshold"].disabled
    assert f"{path.longest_step:.3g}" in explorer.ax_path.get_title()
    image = plt.imread(io.BytesIO(_png(explorer)))
    assert image.shape[:2] == (380, 900)  # figsize (9, 3.8) at 100 dpi


def test_clipping_draws_the_unclipped_path_for_reference_and_marks_clipped_steps(explorer):
    explorer.update(mode="none", threshold=1.0, lr=0.3)
    before = _png(explorer)
    explorer.update(mode="norm", threshold=2.0)
    path = widgets.clipped_descent("norm", 2.0, 0.3)
    reference = widgets.clipped_descent("none", 2.0, 0.3)
    np.testing.assert_allclose(explorer.path_line.get_xydata(), path.points)
    np.testing.assert_allclose(explorer.reference_line.get_xydata(), reference.points)
    np.testing.assert_allclose(explorer.clipped_marks.get_xydata(), path.points[:-1][path.clipped])
    assert explorer.reference_line.get_visible() and not explorer.controls["threshold"].disabled
    assert "clipping by norm, c = 2" in explorer.title.get_text()
    assert f"clipped on {path.clipped.sum()} of 100 steps" in explorer.ax_f.get_title()
    assert _png(explorer) != before
    # a new learning rate recomputes the reference; the same values give the same picture
    explorer.update(lr=0.1)
    np.testing.assert_allclose(
        explorer.reference_line.get_xydata(), widgets.clipped_descent("none", 1.0, 0.1).points
    )
    explorer.update(mode="none", threshold=1.0, lr=0.3)
    assert _png(explorer) == before
