"""Lecture 06 figure helpers draw the network and the filters they are given."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from course_utils import figures


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_network_layout_puts_layers_at_their_index_centred_with_equal_spacing():
    positions = figures.thinned_network_layout([2, 4, 1])
    assert [p.shape for p in positions] == [(2, 2), (4, 2), (1, 2)]
    for layer, p in enumerate(positions):
        assert np.all(p[:, 0] == layer)
        assert np.mean(p[:, 1]) == pytest.approx(0.5)
    np.testing.assert_allclose(np.diff(positions[1][:, 1]), 1 / 3)  # spacing 1 / (max - 1)
    np.testing.assert_allclose(np.diff(positions[0][:, 1]), 1 / 3)


def test_plot_thinned_network_connects_only_kept_units_and_hollows_the_dropped():
    sizes = [3, 4, 4, 2]
    keep = [
        np.ones(3, bool),
        np.array([True, False, True, False]),
        np.array([False, True, True, True]),
        np.ones(2, bool),
    ]
    ax = figures.plot_thinned_network(sizes, keep, title="thinned")
    edges, units = ax.collections
    assert len(edges.get_segments()) == 3 * 2 + 2 * 3 + 3 * 2
    positions = figures.thinned_network_layout(sizes)
    kept_points = {tuple(p) for layer, k in zip(positions, keep, strict=True) for p in layer[k]}
    for segment in edges.get_segments():
        start, end = map(tuple, segment)
        assert start in kept_points and end in kept_points and end[0] == start[0] + 1
    np.testing.assert_allclose(units.get_offsets(), np.concatenate(positions))
    faces = units.get_facecolors()
    kept = np.concatenate(keep)
    assert np.allclose(faces[~kept], to_rgba(figures.lecture06.DROPPED_COLOR))
    assert np.allclose(faces[kept], to_rgba(figures.lecture06.KEPT_COLOR))
    assert ax.get_title() == "thinned"


def test_plot_thinned_network_without_masks_is_the_full_network():
    ax = figures.plot_thinned_network([2, 3, 2])
    edges, _ = ax.collections
    assert len(edges.get_segments()) == 2 * 3 + 3 * 2
    with pytest.raises(ValueError, match="one mask per layer"):
        figures.plot_thinned_network([2, 3], [np.ones(2, bool)])


def test_plot_weight_tiles_tiles_each_row_scaled_to_its_largest_value():
    weights = np.arange(1, 3 * 4 + 1, dtype=float).reshape(3, 4)  # three 2x2 filters
    weights[1] *= -1
    image = figures.plot_weight_tiles(weights, shape=(2, 2), columns=2, title="filters")
    tiles = image.get_array()
    assert tiles.shape == (2 * 3 - 1, 2 * 3 - 1)  # 2 rows, 2 columns, 1-pixel gaps
    np.testing.assert_allclose(tiles[0:2, 0:2], weights[0].reshape(2, 2) / 4)
    np.testing.assert_allclose(tiles[0:2, 3:5], weights[1].reshape(2, 2) / 8)
    np.testing.assert_allclose(tiles[3:5, 0:2], weights[2].reshape(2, 2) / 12)
    hidden = np.ma.getmaskarray(tiles)  # imshow masks the NaNs: drawn transparent
    assert (
        hidden[2].all() and hidden[3:5, 3:5].all() and not hidden[0:2, 0:2].any()
    )  # gaps, empty slot
    assert image.get_clim() == (-1, 1) and image.axes.get_title() == "filters"
