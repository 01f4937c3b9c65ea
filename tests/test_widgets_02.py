"""Headless tests of lecture 02's optimizer explorer: its paths and its redraws."""

import base64
import io

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import widgets

SURFACES = list(widgets.SURFACES)


def _torch_optimizer(name, params, lr, momentum, betas):
    """The torch.optim twin of ``widgets.make_optimizer`` (foreach=False, like course_utils)."""
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, foreach=False)
    if name == "Nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, foreach=False)
    if name == "Adagrad":
        return torch.optim.Adagrad(params, lr=lr, foreach=False)
    if name == "RMSprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=betas[1], foreach=False)
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=False)
    raise AssertionError(name)


def _torch_path(surface, name, lr, momentum, betas, steps):
    """The points torch.optim visits, with gradients from autograd (independent of widgets)."""
    s = widgets.SURFACES[surface]
    xy = torch.tensor(s.start, dtype=torch.float64, requires_grad=True)
    opt = _torch_optimizer(name, [xy], lr, momentum, betas)
    points = [xy.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        s.f(xy).backward()
        opt.step()
        points.append(xy.detach().clone())
    return torch.stack(points).numpy()


# --- the surfaces and the compute function -------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_surface_gradients_match_autograd(surface):
    s = widgets.SURFACES[surface]
    rng = np.random.default_rng(0)
    for _ in range(5):
        point = torch.tensor(rng.uniform(-2, 2, size=2), dtype=torch.float64, requires_grad=True)
        (expected,) = torch.autograd.grad(s.f(point), point)
        np.testing.assert_allclose(s.grad(point.detach()).numpy(), expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("surface", SURFACES)
def test_surface_minimum_is_where_the_stars_are(surface):
    s = widgets.SURFACES[surface]
    for point in s.minima:
        xy = torch.tensor(point, dtype=torch.float64)
        assert s.f(xy).item() == pytest.approx(s.minimum, abs=1e-12)
        assert s.grad(xy).abs().max().item() < 1e-12
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-2, 2, 81)] * 2, indexing="xy"), dim=-1)
    assert s.f(grid.double()).min().item() >= s.minimum - 1e-12


@pytest.mark.parametrize(
    ("name", "lr", "momentum", "betas"),
    [
        ("SGD", 0.02, 0.0, (0.9, 0.999)),
        ("SGD", 0.01, 0.9, (0.9, 0.999)),
        ("Nesterov", 0.01, 0.8, (0.9, 0.999)),
        ("Adagrad", 0.3, 0.0, (0.9, 0.999)),
        ("RMSprop", 0.02, 0.0, (0.9, 0.95)),
        ("Adam", 0.05, 0.0, (0.8, 0.99)),
    ],
)
@pytest.mark.parametrize("surface", ["bowl", "saddle", "rosenbrock"])
def test_trajectory_matches_torch_optim(surface, name, lr, momentum, betas):
    if surface == "rosenbrock":
        lr = min(lr, 1e-3)  # the valley's curvature is about 1500 at the start
    t = widgets.optimizer_trajectory(surface, name, lr, momentum, betas, steps=60)
    assert t.diverged_at is None
    expected = _torch_path(surface, name, lr, momentum, betas, steps=60)
    np.testing.assert_allclose(t.points, expected, rtol=1e-9, atol=1e-12)
    s = widgets.SURFACES[surface]
    values = s.f(torch.from_numpy(expected)).numpy()
    np.testing.assert_allclose(t.gaps, np.maximum(values - s.minimum, 0.0), rtol=1e-9, atol=1e-14)


def test_sgd_on_the_bowl_follows_the_closed_form():
    # GD on f = 1/2 x^T H x is x_t = (I - lr H)^t x_0.
    lr, steps = 0.05, 40
    s = widgets.SURFACES["bowl"]
    H = torch.autograd.functional.hessian(s.f, torch.zeros(2, dtype=torch.float64))
    x = torch.tensor(s.start, dtype=torch.float64)
    expected = [x]
    for _ in range(steps):
        expected.append(expected[-1] - lr * H @ expected[-1])
    t = widgets.optimizer_trajectory("bowl", "SGD", lr, steps=steps)
    np.testing.assert_allclose(t.points, torch.stack(expected).numpy(), rtol=1e-12, atol=1e-14)
    assert t.points.shape == (steps + 1, 2) and t.gaps.shape == (steps + 1,)
    assert np.all(np.diff(t.gaps) < 0)  # below 2 / lambda_max = 0.2 the loss always falls


def test_nesterov_with_zero_momentum_is_sgd():
    sgd = widgets.optimizer_trajectory("bowl", "SGD", 0.05, momentum=0.0)
    nesterov = widgets.optimizer_trajectory("bowl", "Nesterov", 0.05, momentum=0.0)
    np.testing.assert_array_equal(sgd.points, nesterov.points)


def test_a_diverging_run_stops_and_says_when():
    # The bowl's largest curvature is 10, so lr 0.3 > 2/10 diverges.
    t = widgets.optimizer_trajectory("bowl", "SGD", 0.3, steps=500)
    assert t.diverged_at is not None and 0 < t.diverged_at < 500
    assert len(t.points) == len(t.gaps) == t.diverged_at
    assert np.isfinite(t.points).all() and np.isfinite(t.gaps).all()
    assert t.gaps[-1] > 1e3 * t.gaps[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"surface": "moon"}, ValueError, "surface"),
        ({"optimizer": "LBFGS"}, ValueError, "optimizer"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": "fast"}, TypeError, "lr"),
        ({"steps": -1}, ValueError, "steps"),
    ],
)
def test_trajectory_rejects_bad_input(kwargs, error, message):
    args = {"surface": "bowl", "optimizer": "SGD", "lr": 0.1} | kwargs
    with pytest.raises(error, match=message):
        widgets.optimizer_trajectory(**args)


# --- the explorer object ------------------------------------------------------------------


def _png(explorer) -> bytes:
    (output,) = explorer.out.outputs
    assert output["output_type"] == "display_data"
    assert output["data"]["text/plain"] == "<explorer figure>"
    return base64.b64decode(output["data"]["image/png"])


@pytest.fixture(scope="module")
def explorer():
    return widgets.optimizer_explorer(optimizer="SGD", surface="bowl", lr=0.05)


def test_explorer_shows_its_initial_state(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.05, momentum=0.0)
    t = widgets.optimizer_trajectory("bowl", "SGD", 0.05, steps=100)
    np.testing.assert_allclose(explorer.path_line.get_xydata(), t.points)
    np.testing.assert_allclose(explorer.gap_line.get_ydata(), np.clip(t.gaps, 1e-12, 1e4))
    png = _png(explorer)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = plt.imread(io.BytesIO(png))
    assert image.shape[:2] == (330, 800)  # figsize (8, 3.3) at 100 dpi
    assert explorer.fig.number not in plt.get_fignums()  # closed: shown once, by the Output


def test_update_changes_the_artists_and_the_png(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.05, momentum=0.0)
    before = _png(explorer)
    explorer.update(optimizer="Adam", lr=0.1, beta1=0.8, beta2=0.99)

    t = widgets.optimizer_trajectory("bowl", "Adam", 0.1, betas=(0.8, 0.99))
    np.testing.assert_allclose(explorer.path_line.get_xydata(), t.points)
    np.testing.assert_allclose(explorer.start_marker.get_xydata(), t.points[:1])
    np.testing.assert_allclose(explorer.end_marker.get_xydata(), t.points[-1:])
    assert explorer.title.get_text() == "Adam, learning rate 0.1, β1 = 0.8, β2 = 0.99"
    assert f"{t.gaps[-1]:.2g}" in explorer.ax_gap.get_title()
    after = _png(explorer)
    assert after != before
    # The same values give the same picture (what a stored notebook relies on).
    explorer.update(optimizer="SGD", lr=0.05, beta1=0.9, beta2=0.999)
    assert _png(explorer) == before


def test_switching_surface_swaps_contours_limits_and_stars(explorer):
    for surface, s in widgets.SURFACES.items():
        explorer.update(surface=surface, optimizer="SGD", lr=0.001)
        visible = [key for key, contour in explorer.contours.items() if contour.get_visible()]
        assert visible == [surface]
        assert [key for key, star in explorer.minima.items() if star.get_visible()] == [surface]
        assert explorer.ax_path.get_xlim() == s.xlim and explorer.ax_path.get_ylim() == s.ylim
        assert explorer.ax_path.get_title() == s.label
        np.testing.assert_allclose(explorer.path_line.get_xydata()[0], s.start)
    pngs = set()
    for surface in widgets.SURFACES:
        explorer.update(surface=surface)
        pngs.add(_png(explorer))
    assert len(pngs) == len(widgets.SURFACES)
    explorer.update(surface="bowl", lr=0.05)


def test_a_diverging_run_is_announced(explorer):
    explorer.update(optimizer="SGD", surface="bowl", lr=0.5, momentum=0.0)
    assert explorer.trajectory.diverged_at is not None
    assert explorer.ax_gap.get_title() == f"diverged at step {explorer.trajectory.diverged_at}"
    explorer.update(lr=0.05)
    assert explorer.ax_gap.get_title().startswith("after 100 steps")


@pytest.mark.parametrize(
    ("optimizer", "enabled"),
    [
        ("SGD", {"momentum"}),
        ("Nesterov", {"momentum"}),
        ("Adagrad", set()),
        ("RMSprop", {"beta2"}),
        ("Adam", {"beta1", "beta2"}),
    ],
)
def test_unused_sliders_are_disabled(explorer, optimizer, enabled):
    explorer.update(optimizer=optimizer)
    for name in ("momentum", "beta1", "beta2"):
        assert explorer.controls[name].disabled == (name not in enabled)
    explorer.update(optimizer="SGD")


def test_moving_a_control_redraws_once(explorer):
    calls = []
    original = explorer.draw
    explorer.draw = lambda **values: (calls.append(values), original(**values))
    try:
        explorer.controls["lr"].value = 0.02
        assert len(calls) == 1 and calls[0]["lr"] == pytest.approx(0.02)
        calls.clear()
        explorer.update(optimizer="Nesterov", momentum=0.9)  # two controls, one redraw
        assert len(calls) == 1
    finally:
        del explorer.draw
        explorer.update(optimizer="SGD", lr=0.05, momentum=0.0)


def test_update_rejects_unknown_controls(explorer):
    with pytest.raises(TypeError, match="unknown control"):
        explorer.update(learning_rate=0.1)


def test_widget_holds_controls_and_output(explorer):
    grid, message, out, note = explorer.widget.children
    assert out is explorer.out and message is explorer.message and note is explorer.note
    assert list(grid.children) == list(explorer.controls.values())
    sliders = [c for c in explorer.controls.values() if hasattr(c, "continuous_update")]
    assert sliders and all(c.continuous_update for c in sliders)  # blitted: updates are cheap
    assert isinstance(explorer.controls["lr"], ipw.FloatLogSlider)
    assert explorer.controls["surface"].options == tuple(
        (s.label, key) for key, s in widgets.SURFACES.items()
    )


def test_explorer_steps_and_bad_values():
    small = widgets.optimizer_explorer(steps=20, optimizer="Adam", lr=0.1)
    assert len(small.path_line.get_xdata()) == 21
    assert small.ax_gap.get_xlim() == (0, 20)
    with pytest.raises(ValueError, match="steps"):
        widgets.optimizer_explorer(steps=0)
