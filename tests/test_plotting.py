"""course_utils.plotting: each helper draws the expected artists and returns its Axes/Figure."""

import functools
import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
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


# --- lecture 02 helpers ---------------------------------------------------------------


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


# --- compact PNGs ----------------------------------------------------------------------


def test_png_is_a_palette_image_that_looks_like_the_true_color_one():
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    x = np.linspace(0, 6, 200)
    for k in range(5):
        ax.plot(x, np.sin(x + k), label=f"curve {k}")
    ax.legend()
    compact = plotting.png(fig, dpi=80)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    full = buffer.getvalue()
    image = PIL.Image.open(io.BytesIO(compact))
    reference = np.asarray(PIL.Image.open(io.BytesIO(full)).convert("RGB"), dtype=float)
    assert image.mode == "P" and image.size == (320, 240)
    assert len(compact) < len(full) / 2
    # no pixel changes by more than a few grey levels on average
    assert np.abs(np.asarray(image.convert("RGB"), dtype=float) - reference).mean() < 3.0


def test_every_figure_helper_has_a_data_test():
    # Every helper that draws must be exercised (and its plotted data checked) in
    # tests/test_plotting.py or a per-lecture tests/test_figures_NN.py.
    from course_utils import figures

    from conftest import ROOT

    helpers = [n for n in plotting.__all__ if n.startswith("plot_") or n == "comparison_grid"]
    helpers += [n for n in figures.__all__ if n.startswith("plot_")]
    tests = "\n".join(
        path.read_text()
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        if path.name == "test_plotting.py" or path.name.startswith("test_figures_")
    )
    missing = [name for name in helpers if f".{name}(" not in tests]
    assert not missing, f"figure helpers without a test of their data: {missing}"


def test_decision_grid_and_boundary_are_drawn_where_the_score_changes_sign():
    X, Y, points = plotting.decision_grid((-1, 1), (-2, 2), 5)
    assert X.shape == Y.shape == (5, 5) and points.shape == (25, 2)
    np.testing.assert_allclose(points[:, 0].reshape(5, 5), X)
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    y = torch.tensor([0, 1, 0])
    ax = plotting.plot_decision_boundary(
        x, y, {"x1 = 0.5": lambda p: p[:, 0] - 0.5}, xlim=(-2, 2), ylim=(-2, 2), resolution=41
    )
    class0, class1, line, bayes = ax.collections
    np.testing.assert_allclose(class0.get_offsets(), x[[0, 2]].numpy())
    np.testing.assert_allclose(class1.get_offsets(), x[[1]].numpy())
    (path,) = [p for p in line.get_paths() if len(p.vertices)]
    np.testing.assert_allclose(path.vertices[:, 0], 0.5, atol=1e-6)  # the line x1 = 0.5
    # the Bayes boundary: the log-odds of data.gaussian_mixture vanish along it
    vertices = np.concatenate([p.vertices for p in bayes.get_paths()])
    odds = data.gaussian_mixture_log_odds(torch.tensor(vertices))
    assert odds.abs().max() < 0.2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["class 0", "class 1", "x1 = 0.5", "Bayes boundary"]


def test_plot_contour_labels_its_axes_and_marks_the_minima():
    ax = plotting.plot_contour(
        data.saddle,
        {"path": [[0.5, 0.5], [0.2, 0.8]]},
        xlabel="$w_1$",
        ylabel="$w_2$",
        minima=[(0.0, -1.0), (0.0, 1.0)],
    )
    assert ax.get_xlabel() == "$w_1$" and ax.get_ylabel() == "$w_2$"
    stars = ax.lines[-1]
    assert stars.get_marker() == "*"
    np.testing.assert_allclose(stars.get_xydata(), [[0.0, -1.0], [0.0, 1.0]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["path"]  # no legend entry
    fig = plotting.plot_paths_and_losses(
        data.saddle, {"path": [[0.5, 0.5], [0.2, 0.8]]}, xlabel="a", ylabel="b", minima=[(0, 1)]
    )
    assert fig.axes[0].get_xlabel() == "a" and fig.axes[0].get_ylabel() == "b"
    np.testing.assert_allclose(fig.axes[0].lines[-1].get_xydata(), [[0.0, 1.0]])
    assert fig.axes[1].lines[0].get_color() == fig.axes[0].lines[0].get_color()
