"""Headless tests of lecture 03's depth explorer: its statistics and what it draws."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import initialization, widgets


def _manual(depth, width, activation, init, gain, batch_size, seed):
    """Activations and dL/dz by an explicit loop with autograd (no hooks, no layer_statistics)."""
    gen = torch.Generator().manual_seed(seed)
    model = initialization.deep_mlp(depth, width, activation, init, gain=gain, generator=gen)
    x = torch.randn(batch_size, width, generator=gen)
    zs, acts, h = [], [], x
    for module in model:
        h = module(h)
        if isinstance(module, torch.nn.Linear):
            h.retain_grad()
            zs.append(h)
        else:
            acts.append(h)
    g = torch.randn(h.shape, generator=gen)
    (h * g).sum().backward()
    return zs, acts


@pytest.mark.parametrize(
    ("activation", "init", "gain"),
    [
        ("tanh", "xavier_normal", 1.0),
        ("relu", "he_normal", 1.5),
        ("sigmoid", "standard_normal", 0.3),
    ],
)
def test_depth_statistics_equal_a_manual_forward_and_backward(activation, init, gain):
    s = widgets.depth_statistics(5, 32, activation, init, gain, batch_size=16, bins=20, seed=3)
    zs, acts = _manual(5, 32, activation, init, gain, 16, 3)
    np.testing.assert_allclose(s.act_std, [a.std().item() for a in acts], rtol=1e-6)
    np.testing.assert_allclose(s.grad_std, [z.grad.std().item() for z in zs], rtol=1e-5)
    assert s.histograms.shape == (5, 20) and s.edges.shape == (21,)
    np.testing.assert_allclose(s.histograms.sum(axis=1), 1.0, rtol=1e-6)
    if activation == "relu":
        expected = [initialization.dead_fraction(z.detach()).item() for z in zs]
    else:
        expected = [initialization.saturated_fraction(a.detach(), activation).item() for a in acts]
    np.testing.assert_allclose(s.flat, expected)


def test_depth_statistics_count_values_beyond_the_range_in_the_edge_bins():
    # identity with a large gain: many values beyond +-4 must land in the first and last bins
    s = widgets.depth_statistics(3, 16, "identity", "standard_normal", 2.0, batch_size=8, bins=8)
    _, acts = _manual(3, 16, "identity", "standard_normal", 2.0, 8, 0)
    for row, a in zip(s.histograms, acts, strict=True):
        assert row[0] == pytest.approx((a <= -3.0).float().mean().item())  # first bin [-4, -3)
        assert row[-1] == pytest.approx((a >= 3.0).float().mean().item())
    assert s.flat is None
    assert widgets.depth_statistics(2, 8, "gelu", "he_normal").flat is None


def test_depth_statistics_refuse_unknown_settings():
    with pytest.raises(ValueError, match="activation must be one of"):
        widgets.depth_statistics(2, 8, "softplus", "he_normal")
    with pytest.raises(ValueError, match="init must be one of"):
        widgets.depth_statistics(2, 8, "tanh", "orthogonal")
    with pytest.raises(ValueError, match="batch_size"):
        widgets.depth_statistics(2, 8, "tanh", "he_normal", batch_size=1)


def test_the_explorer_draws_one_row_and_one_point_per_layer():
    explorer = widgets.depth_explorer(depth=4, width=32, activation="relu", init="he_normal")
    try:
        image = np.ma.getdata(explorer.image.get_array())
        assert image.shape == (explorer.max_depth, explorer.bins)
        assert np.isfinite(image[:4]).all() and np.isnan(image[4:]).all()  # grey beyond depth
        s = explorer.statistics
        np.testing.assert_allclose(explorer.act_line.get_ydata(), s.act_std)
        np.testing.assert_allclose(explorer.grad_line.get_ydata(), s.grad_std)
        assert explorer.image.get_extent() == [-1.0, 4.0, 0.5, explorer.max_depth + 0.5]
        assert "4 layers of 32" in explorer.title.get_text()
        explorer.update(activation="tanh", depth=7)
        assert explorer.image.get_extent() == [-1.0, 1.0, 0.5, explorer.max_depth + 0.5]
        assert len(explorer.act_line.get_xdata()) == 7
    finally:
        plt.close(explorer.fig)


def test_the_explorer_restores_the_thread_count_even_when_drawing_fails(monkeypatch):
    from course_utils.widgets import lecture03

    threads = torch.get_num_threads()
    explorer = widgets.depth_explorer(depth=2, width=16)
    try:
        explorer.update(depth=3)
        assert torch.get_num_threads() == threads and explorer.error == ""

        def fail(*args, **kwargs):
            assert torch.get_num_threads() == 1  # the compute runs on one thread
            raise ValueError("no")

        monkeypatch.setattr(lecture03, "depth_statistics", fail)
        explorer.update(depth=4)
        assert explorer.error == "ValueError: no" and torch.get_num_threads() == threads
    finally:
        plt.close(explorer.fig)
