"""Lecture 07 figure helpers plot the data they are given, on the right axes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import figures
from course_utils import label_smoothing as ls


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_reliability_diagrams_draws_accuracy_bars_confidence_dots_and_fractions():
    probs = torch.tensor(
        [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]], dtype=torch.float64
    )
    target = torch.tensor([0, 1, 0, 1, 1])
    # confidences .9 (right), .8 (wrong), .6 (right), .7 (right), .55 (wrong): three filled
    # bins, (.4, .6] with .6 and .55, (.6, .8] with .8 and .7, (.8, 1] with .9
    bins = ls.calibration_bins(probs, target, n_bins=5)
    other = ls.calibration_bins(probs, torch.zeros(5, dtype=torch.int64), n_bins=5)
    fig = figures.plot_reliability_diagrams({"a": bins, "b": other, "c": bins}, ncols=2)
    ax = fig.axes[0]
    assert [a.get_title() for a in fig.axes[:3]] == ["a", "b", "c"]
    assert not fig.axes[3].get_visible()  # 3 panels on a 2 x 2 grid
    bars = [patch for patch in ax.patches if type(patch).__name__ == "Rectangle"]
    heights = [bar.get_height() for bar in bars]
    np.testing.assert_allclose(heights, [0.5, 0.5, 1.0])  # accuracy of the three filled bins
    np.testing.assert_allclose([bar.get_x() for bar in bars], [0.4, 0.6, 0.8])
    np.testing.assert_allclose([bar.get_width() for bar in bars], [0.2] * 3)
    dots, diagonal = ax.lines
    np.testing.assert_allclose(dots.get_xdata(), [(0.6 + 0.55) / 2, (0.8 + 0.7) / 2, 0.9])
    np.testing.assert_allclose(dots.get_ydata(), [0.5, 0.5, 1.0])
    np.testing.assert_allclose(diagonal.get_xydata(), [[0, 0], [1, 1]])
    (fractions,) = [a for a in ax.get_children() if type(a).__name__ == "StepPatch"]
    np.testing.assert_allclose(fractions.get_data().values, [0, 0, 0.4, 0.4, 0.2])
    assert fig.axes[2].get_xlabel() == "confidence" and fig.axes[0].get_xlabel() == ""
    assert len(fig.legends) == 1


def test_plot_gap_histograms_counts_the_gaps_and_marks_the_optimum():
    gaps = torch.tensor([1.0, 1.5, 2.0, 2.0, 9.0])
    fig = figures.plot_gap_histograms(
        {"smoothed": (gaps, 2.0), "one-hot": (gaps * 3, np.inf)}, bins=4
    )
    left, right = fig.axes
    counts = [patch.get_height() for patch in left.patches]
    assert sum(counts) == 5 and counts[0] == 4  # [1, 3), [3, 5), [5, 7), [7, 9]
    (line,) = left.lines
    np.testing.assert_allclose(line.get_xdata(), [2.0, 2.0])
    assert left.get_legend().get_texts()[0].get_text() == "$d^*$ = 2.00"
    assert right.get_legend().get_texts()[0].get_text() == "$d^* = \\infty$"
    assert sum(patch.get_height() for patch in right.patches) == 5
    assert right.get_xlim()[1] > 25  # its own x range


def test_plot_template_projections_scatters_each_class_in_its_panel():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = np.array([0, 2, 2, 0])
    fig = figures.plot_template_projections(
        {"left": (points, labels), "right": (torch.tensor(points) * 2, torch.tensor(labels))},
        class_names={0: "zero", 2: "two"},
        xlabel="e1",
    )
    left, right = fig.axes
    zero, two = left.collections
    np.testing.assert_allclose(zero.get_offsets(), points[[0, 3]])
    np.testing.assert_allclose(two.get_offsets(), points[[1, 2]])
    np.testing.assert_allclose(right.collections[1].get_offsets(), 2 * points[[1, 2]])
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["zero", "two"]
    assert left.get_xlabel() == "e1" and right.get_title() == "right"
