"""Lecture 05's weight-decay explorer: its batched training against torch.optim, its redraws."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import data, plotting, regularization, widgets

DECAYS = (0.0, 1e-2, 0.1)
WIDTHS = (3, 8)
STEPS = 30


@pytest.fixture(scope="module")
def runs():
    return widgets.train_mixture_mlps(
        DECAYS, WIDTHS, steps=STEPS, records=3, n_val=500, resolution=30
    )


def _torch_run(width, weight_decay, record, steps=STEPS):
    """The same network trained alone with torch.optim.SGD and autograd."""
    x, y = data.gaussian_mixture(200, seed=0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)
    )
    groups = regularization.weight_decay_groups(model.parameters(), weight_decay)
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9, foreach=False)
    history = []
    for step in range(1, steps + 1):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in record:
            with torch.no_grad():
                history.append(((model(x).squeeze(1) > 0).long() == y).double().mean().item())
    return model, history


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("weight_decay", DECAYS)
def test_batched_training_takes_the_steps_of_torch_sgd_with_weight_decay(runs, width, weight_decay):
    model, train_acc = _torch_run(width, weight_decay, runs.steps.tolist())
    i, j = runs.index(width, weight_decay)
    W1, b1, W2, b2 = (p[j] for p in runs.params[width])
    first, second = model[0], model[2]
    for ours, theirs in (
        (W1, first.weight.T),
        (b1[0], first.bias),
        (W2, second.weight.T),
        (b2[0], second.bias),
    ):
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(runs.train_acc[i, j], train_acc, atol=0.006)  # one point of 200
    with torch.no_grad():
        _, _, grid = plotting.decision_grid(resolution=30)
        np.testing.assert_allclose(
            runs.scores[i, j].ravel(), model(grid).squeeze(1).numpy(), rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(
            runs.scores[i, j].ravel(), runs.score(width, weight_decay)(grid).numpy(), atol=1e-5
        )
    np.testing.assert_allclose(
        runs.weight_norms[i, j] ** 2,
        regularization.l2_penalty(model.parameters()).item(),
        rtol=1e-3,
    )
    assert runs.steps.tolist() == [10, 17, 30]  # 3 records, log-spaced from step 10


def test_recorded_metrics_are_those_of_the_final_networks(runs):
    x_val, y_val = data.gaussian_mixture(500, seed=1)
    for width in WIDTHS:
        for wd in DECAYS:
            i, j = runs.index(width, wd)
            with torch.no_grad():
                logits = runs.score(width, wd)(x_val)
            acc = ((logits > 0).long() == y_val).double().mean().item()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_val.float())
            assert runs.val_acc[i, j, -1] == pytest.approx(acc)
            assert runs.val_loss[i, j, -1] == pytest.approx(loss.item(), rel=1e-5)
    bayes = (data.gaussian_mixture_bayes(x_val) == y_val).double().mean().item()
    assert runs.bayes_val_acc == pytest.approx(bayes)
    # weight decay shrinks the weights: the norm falls as the decay grows, at every width
    assert (np.diff(runs.weight_norms, axis=1) < 0).all()


def test_index_snaps_to_the_nearest_weight_decay_on_a_log_scale(runs):
    assert runs.index(3, 0.0) == (0, 0)
    assert runs.index(8, 0.012) == (1, 1)
    assert runs.index(8, 0.05) == (1, 2)  # log10: -1.3 is nearer -1 than -2
    assert runs.index(8, 1e-7) == (1, 1)  # far below: the smallest positive one, never 0
    with pytest.raises(ValueError, match="width"):
        runs.index(5, 0.01)
    no_zero = widgets.train_mixture_mlps((1e-3,), (2,), steps=1, n_val=10, resolution=5)
    with pytest.raises(ValueError, match="weight_decay 0"):
        no_zero.index(2, 0.0)


def test_the_explorer_draws_the_chosen_network(runs):
    explorer = widgets.weight_decay_explorer(runs, weight_decay=0.01, width=8)
    try:
        i, j = runs.index(8, 0.01)
        assert explorer.selected == (i, j)
        # the green line is the zero level of the chosen network's scores
        segments = explorer.boundary.get_segments()
        assert segments
        points = torch.tensor(np.concatenate(segments), dtype=torch.float32)
        with torch.no_grad():
            assert runs.score(8, 0.01)(points).abs().max() < 0.5
        np.testing.assert_allclose(explorer.val_line.get_ydata(), runs.val_acc[i, 1:, -1])
        np.testing.assert_allclose(explorer.val_zero.get_ydata(), [runs.val_acc[i, 0, -1]] * 2)
        assert explorer.marker.get_xydata().tolist() == [[0.01, runs.val_acc[i, j, -1]]]
        title = explorer.ax_acc.get_title()
        assert f"val {runs.val_acc[i, j, -1]:.1%}" in title and "width 8" in title
        # the shaded region is where the network predicts class 1
        region = explorer.fill.get_paths()
        inside = plotting.decision_grid(resolution=30)[2]
        shaded = np.zeros(len(inside), dtype=bool)
        for path in region:
            shaded ^= path.contains_points(inside.numpy())  # holes toggle
        with torch.no_grad():
            predicted = runs.score(8, 0.01)(inside).numpy() > 0
        assert (shaded == predicted).mean() > 0.97  # all but points on the boundary
        explorer.update(weight_decay=0.1, width=3)
        assert explorer.selected == runs.index(3, 0.1) and explorer.error == ""
    finally:
        plt.close(explorer.fig)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="weight_decays"):
        widgets.train_mixture_mlps((-1.0,), (3,))
    with pytest.raises(ValueError, match="steps"):
        widgets.train_mixture_mlps((0.0,), (3,), steps=0)
    only_zero = widgets.train_mixture_mlps((0.0,), (2,), steps=1, n_val=10, resolution=5)
    with pytest.raises(ValueError, match="positive weight decays"):
        widgets.weight_decay_explorer(only_zero)
