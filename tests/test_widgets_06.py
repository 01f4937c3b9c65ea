"""Headless tests of lecture 06's explorer: the trained networks, thinned networks, redraws."""

import copy
import itertools

import numpy as np
import pytest
import torch

from course_utils import data, widgets


@pytest.fixture(scope="module")
def nets():
    return widgets.dropout_networks()


def _train_alone(model, x, y, epochs, lr=0.01):
    """Full-batch Adam on one network, written with plain torch (no dropout: p = 0)."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_batched_training_equals_training_each_network_alone():
    # p = 0 draws masks that keep everything, so it can be compared with a plain run; the
    # other network in the batch must not change it (its gradient is its own loss's only).
    start = widgets.dropout_networks(rates=(0.0, 0.5), epochs=0).models[0]
    trained = widgets.dropout_networks(rates=(0.0, 0.5), epochs=40)
    x, y = trained.train
    alone = _train_alone(start, x, y, epochs=40)
    for ours, theirs in zip(trained.models[0].parameters(), alone.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)
    # the same initial weights for every rate
    start_all = widgets.dropout_networks(rates=(0.0, 0.5), epochs=0).models
    for a, b in zip(start_all[0].parameters(), start_all[1].parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_dropout_networks_data_and_accuracies(nets):
    x, y = nets.train
    x_val, y_val = nets.val
    torch.testing.assert_close(x, data.gaussian_mixture(100, seed=1)[0].double())
    assert len(y_val) == 2000 and nets.rates == widgets.lecture06.RATES
    for model, train_acc, val_acc, val_loss in zip(
        nets.models, nets.train_acc, nets.val_acc, nets.val_loss, strict=True
    ):
        assert not model.training
        with torch.no_grad():
            assert (model(x).argmax(1) == y).double().mean().item() == train_acc
            z = model(x_val)
        assert (z.argmax(1) == y_val).double().mean().item() == val_acc
        assert torch.nn.functional.cross_entropy(z, y_val).item() == pytest.approx(val_loss)
    assert nets.train_acc[0] == 1.0  # without dropout the network fits every training point
    assert nets.val_loss[0] > 3 * nets.val_loss[5]  # and is overconfident on new points


def test_thinned_network_at_p_0_is_the_network(nets):
    thin = widgets.thinned_network(nets, 0, mask_seed=3)
    assert all(k.all() for k in thin.keep)
    assert thin.train_acc == nets.train_acc[0] and thin.val_acc == nets.val_acc[0]


def test_thinned_network_masks_hidden_units_at_the_rate_and_scores_the_subnetwork(nets):
    k = nets.rates.index(0.5)
    kept = [widgets.thinned_network(nets, k, seed).keep for seed in range(40)]
    assert all(keep[0].all() and keep[-1].all() for keep in kept)  # inputs, outputs kept
    fraction = np.mean([np.concatenate(keep[1:-1]).mean() for keep in kept])
    assert abs(fraction - 0.5) < 0.05  # 40 x 64 bits: the standard error is 0.01
    thin = widgets.thinned_network(nets, k, 7)
    model = nets.models[k]
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = torch.relu(model[0](x)) * torch.from_numpy(thin.keep[1]) / 0.5
        h = torch.relu(model[3](h)) * torch.from_numpy(thin.keep[2]) / 0.5
        z = model[6](h)
    torch.testing.assert_close(thin.score(x), z[:, 1] - z[:, 0])
    with pytest.raises(ValueError, match="rate_index must be"):
        widgets.thinned_network(nets, len(nets.rates), 0)


def test_the_explorer_draws_the_mask_and_the_boundaries(nets):
    explorer = widgets.dropout_explorer(rate=0.5, mask_seed=2)
    thin = explorer.thinned
    keep = thin.keep
    n_edges = sum(int(a.sum()) * int(b.sum()) for a, b in itertools.pairwise(keep))
    x, _ = explorer.edges.get_data()
    assert np.isnan(x).sum() == n_edges  # one NaN after each segment
    faces = explorer.units.get_facecolors()
    assert (faces[:, :3].sum(axis=1) == 3).sum() == sum(int((~k).sum()) for k in keep)  # white
    # the boundaries are where the scores change sign: score ~ 0 on the drawn points
    for line, score in (
        (explorer.mean_line, lambda p: widgets.lecture06._score(nets.models[5])(p)),
        (explorer.thin_line, thin.score),
    ):
        points = np.stack(line.get_data(), axis=1)
        points = torch.from_numpy(points[~np.isnan(points).any(axis=1)])
        assert len(points) > 10
        assert score(points).abs().median() < 0.05
    assert "val" in explorer.ax_data.get_title() and f"#{2}" in explorer.ax_net.get_title()
