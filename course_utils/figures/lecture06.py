"""Lecture 06 figure helpers: a (thinned) network drawn unit by unit, and filters as images."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from course_utils.plotting import as_array

__all__ = [
    "plot_thinned_network",
    "plot_weight_tiles",
    "thinned_network_edges",
    "thinned_network_layout",
]

KEPT_COLOR = "tab:blue"
DROPPED_COLOR = "white"


def thinned_network_layout(sizes) -> list[np.ndarray]:
    """Unit positions of a feed-forward network: layer l at x = l, its units spread over y in
    [0, 1] (centred, the same spacing in every layer). Returns one (n_l, 2) array per layer."""
    spacing = 1.0 / max(max(sizes) - 1, 1)
    return [
        np.stack([np.full(n, float(layer)), 0.5 + spacing * (np.arange(n) - (n - 1) / 2)], axis=1)
        for layer, n in enumerate(sizes)
    ]


def thinned_network_edges(positions, keep) -> np.ndarray:
    """The segments between kept units of consecutive layers: (n_edges, 2, 2)."""
    segments = []
    for (a, keep_a), (b, keep_b) in zip(
        zip(positions[:-1], keep[:-1], strict=True),
        zip(positions[1:], keep[1:], strict=True),
        strict=True,
    ):
        start, end = a[keep_a], b[keep_b]
        pairs = np.stack(np.broadcast_arrays(start[:, None, :], end[None, :, :]), axis=2)
        segments.append(pairs.reshape(-1, 2, 2))
    return np.concatenate(segments) if segments else np.zeros((0, 2, 2))


def plot_thinned_network(sizes, keep=None, *, title=None, unit_size=None, ax=None):
    """A feed-forward network, its dropped units hollow and their connections removed.

    sizes: units per layer, input first (e.g. [3, 6, 6, 2]); keep: one boolean array per
    layer (True = kept), or None for the full network. Returns the Axes: its collections
    are the edges (a LineCollection, only between kept units) and the units (a scatter,
    filled if kept, hollow if dropped), in that order.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.0), layout="constrained")
    keep = [np.ones(n, bool) for n in sizes] if keep is None else [as_array(k) for k in keep]
    if [len(k) for k in keep] != list(sizes):
        raise ValueError(f"keep must have one mask per layer of sizes {list(sizes)}")
    positions = thinned_network_layout(sizes)
    edges = LineCollection(thinned_network_edges(positions, keep), colors="0.45", linewidths=0.6)
    ax.add_collection(edges)
    points = np.concatenate(positions)
    kept = np.concatenate(keep)
    size = unit_size if unit_size is not None else max(12.0, 900.0 / max(sizes))
    ax.scatter(
        *points.T,
        s=size,
        c=[KEPT_COLOR if k else DROPPED_COLOR for k in kept],
        edgecolors="black",
        linewidths=0.8,
        zorder=3,
    )
    ax.set(xlim=(-0.4, len(sizes) - 0.6), ylim=(-0.08, 1.08), xticks=[], yticks=[])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


def plot_weight_tiles(weights, *, shape=(8, 8), columns=16, title=None, ax=None):
    """Rows of ``weights`` (n, h * w) as small images, each scaled to its own largest |value|
    (red positive, blue negative). Returns the AxesImage of the tiled picture."""
    w = as_array(weights).astype(np.float64)
    n = w.shape[0]
    height, width = shape
    rows = -(-n // columns)
    tiles = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    scale = np.abs(w).max(axis=1, keepdims=True)
    w = w / np.where(scale > 0, scale, 1.0)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = r * (height + 1), c * (width + 1)
        tiles[y : y + height, x : x + width] = w[i].reshape(height, width)
    if ax is None:
        _, ax = plt.subplots(figsize=(columns * 0.45, rows * 0.45 + 0.4), layout="constrained")
    image = ax.imshow(tiles, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize="medium")
    return image
