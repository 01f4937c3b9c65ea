"""Lecture 08 figure helpers plot what the clipping functions return."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import clipping, figures


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_clipping_modes_draws_the_clipped_arrows_and_the_tensor_norms():
    g = torch.tensor([3.0, 1.0])
    gen = torch.Generator().manual_seed(0)
    grads = (torch.randn(4, 3, generator=gen), 0.1 * torch.randn(3, generator=gen))
    fig = figures.plot_clipping_modes(g, grads, 1.0)
    ax_value, ax_norm, ax_bars = fig.axes
    for ax, want in ((ax_value, [1.0, 1.0]), (ax_norm, (g / (g.norm() + 1e-6)).tolist())):
        gradient, clipped = (a.xy for a in ax.texts)
        np.testing.assert_allclose(gradient, [3.0, 1.0])
        np.testing.assert_allclose(clipped, want, rtol=1e-6)
    assert "27°" in ax_value.get_title() and "0°" in ax_norm.get_title()
    heights = [patch.get_height() for patch in ax_bars.patches]
    *global_clipped, total = clipping.clip_by_global_norm(grads, 1.0)
    per_tensor = clipping.clip_by_tensor_norm(grads, 1.0)
    want = [float(t.norm()) for group in (grads, global_clipped, per_tensor) for t in group]
    np.testing.assert_allclose(heights, want, rtol=1e-6)
    assert f"{float(total):.3g}" in ax_bars.get_title()


def test_plot_clipping_modes_uses_the_functions_it_is_given():
    calls = []

    def clip_value(grads, clip_value):
        calls.append("value")
        return clipping.clip_by_value(grads, clip_value)

    fig = figures.plot_clipping_modes([0.5, 2.0], (torch.ones(2),), 1.0, clip_by_value=clip_value)
    assert calls == ["value"]
    np.testing.assert_allclose(fig.axes[0].texts[1].xy, [0.5, 1.0])
