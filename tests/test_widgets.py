"""Headless tests of the explorers in course_utils.widgets: their numbers and their redraws."""

import base64
import io

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import losses, widgets


def _autograd_quantities(logits, temperature, target):
    """p, loss and dloss/dz computed by torch alone (the independent reference)."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(z / temperature, torch.tensor(target))
    loss.backward()
    probs = torch.softmax(z.detach() / temperature, dim=-1)
    return probs.numpy(), loss.item(), z.grad.numpy()


@pytest.mark.parametrize("seed", range(6))
def test_softmax_quantities_match_torch_autograd(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    logits = list(rng.normal(0.0, 3.0, size=n))
    temperature = float(rng.uniform(0.3, 4.0))
    target = int(rng.integers(0, n))

    q = widgets.softmax_quantities(logits, temperature, target)
    probs, loss, grad = _autograd_quantities(logits, temperature, target)

    np.testing.assert_allclose(q.probs, probs, rtol=1e-12, atol=1e-15)
    assert q.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(q.grad, grad, rtol=1e-10, atol=1e-15)


def test_softmax_quantities_known_values():
    # Equal logits: uniform p, loss log C, gradient (1/C - onehot) / T.
    q = widgets.softmax_quantities([0.7, 0.7, 0.7, 0.7], temperature=2.0, target=1)
    np.testing.assert_allclose(q.probs, [0.25] * 4)
    assert q.loss == pytest.approx(np.log(4.0))
    np.testing.assert_allclose(q.grad, np.array([0.25, -0.75, 0.25, 0.25]) / 2.0)


def test_softmax_quantities_match_the_numerical_gradient():
    logits, temperature, target = [1.5, -0.5, 0.25], 0.8, 2
    q = widgets.softmax_quantities(logits, temperature, target)

    def loss_of(z):
        return losses.cross_entropy(z / temperature, torch.tensor(target))

    numeric = losses.numerical_gradient(loss_of, torch.tensor(logits, dtype=torch.float64))
    np.testing.assert_allclose(q.grad, numeric.numpy(), atol=1e-8)


def test_softmax_quantities_gradient_sums_to_zero_and_is_bounded():
    rng = np.random.default_rng(1)
    for temperature in (0.5, 1.0, 3.0):
        q = widgets.softmax_quantities(rng.normal(0, 5, size=5), temperature, 3)
        assert q.probs.sum() == pytest.approx(1.0)
        assert abs(q.grad.sum()) < 1e-12
        assert np.all(np.abs(q.grad) <= 1.0 / temperature)
        assert q.grad[3] < 0 < q.grad[[0, 1, 2, 4]].min()


def test_softmax_quantities_are_stable_for_large_logits():
    q = widgets.softmax_quantities([6000.0, 0.0, -6000.0], temperature=0.5, target=2)
    assert np.isfinite(q.probs).all() and np.isfinite(q.grad).all()
    assert q.loss == pytest.approx(24000.0)
    np.testing.assert_allclose(q.grad, [2.0, 0.0, -2.0])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"logits": [1.0, 2.0], "temperature": 0.0}, ValueError, "temperature"),
        ({"logits": [1.0, 2.0], "temperature": "hot"}, TypeError, "temperature"),
        ({"logits": [1.0, 2.0], "target": 2}, ValueError, "target"),
        ({"logits": [1.0, 2.0], "target": -1}, ValueError, "target"),
        ({"logits": [1.0, 2.0], "target": 1.0}, TypeError, "target"),
        ({"logits": [1.0]}, ValueError, "logits"),
        ({"logits": [[1.0, 2.0]]}, ValueError, "logits"),
        ({"logits": [1.0, float("nan")]}, ValueError, "must be finite"),
    ],
)
def test_softmax_quantities_reject_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        widgets.softmax_quantities(**kwargs)


# --- the explorer object ------------------------------------------------------------------


def _png(explorer) -> bytes:
    (output,) = explorer.out.outputs
    assert output["output_type"] == "display_data"
    return base64.b64decode(output["data"]["image/png"])


def _color(artist) -> str:
    return mcolors.to_hex(artist.get_facecolor())


def test_explorer_shows_its_initial_state():
    explorer = widgets.softmax_explorer(logits=(1.0, 0.0, -1.0), temperature=1.0, target=0)
    q = widgets.softmax_quantities([1.0, 0.0, -1.0], 1.0, 0)
    np.testing.assert_allclose([bar.get_height() for bar in explorer.prob_bars], q.probs)
    png = _png(explorer)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = plt.imread(io.BytesIO(png))
    assert image.shape[:2] == (340, 850)  # figsize (8.5, 3.4) at 100 dpi
    assert explorer.out.outputs[0]["data"]["text/plain"] == "<explorer figure>"


def test_update_changes_the_artists_and_the_png():
    explorer = widgets.softmax_explorer(logits=(2.0, 1.0, 0.5, -1.0), temperature=1.0, target=0)
    before = _png(explorer)
    explorer.update(z3=4.0, temperature=0.5, target=2)

    assert explorer.values() == {
        "z0": 2.0,
        "z1": 1.0,
        "z2": 0.5,
        "z3": 4.0,
        "temperature": 0.5,
        "target": 2,
    }
    q = widgets.softmax_quantities([2.0, 1.0, 0.5, 4.0], 0.5, 2)
    np.testing.assert_allclose([bar.get_height() for bar in explorer.prob_bars], q.probs)
    np.testing.assert_allclose([bar.get_height() for bar in explorer.grad_bars], q.grad)
    assert [_color(bar) for bar in explorer.prob_bars] == [
        mcolors.to_hex(c) for c in ("tab:blue", "tab:blue", "tab:orange", "tab:blue")
    ]
    assert [label.get_text() for label in explorer.prob_labels] == [f"{p:.2f}" for p in q.probs]
    assert f"{q.loss:.3f}" in explorer.fig.get_suptitle()
    assert explorer.grad_bounds[1].get_ydata()[0] == pytest.approx(2.0)  # 1 / T

    after = _png(explorer)
    assert after != before
    # The same values give the same picture (what a stored notebook relies on).
    explorer.update(z3=-1.0, temperature=1.0, target=0)
    assert _png(explorer) == before


def test_moving_a_control_redraws_once():
    explorer = widgets.softmax_explorer()
    calls = []
    original = explorer.draw
    explorer.draw = lambda **values: (calls.append(values), original(**values))
    explorer.controls["z1"].value = 5.0
    assert len(calls) == 1
    assert calls[0]["z1"] == 5.0
    assert explorer.prob_bars[1].get_height() == pytest.approx(explorer.quantities.probs[1])
    assert explorer.quantities.probs.argmax() == 1

    calls.clear()
    explorer.update(z0=0.0, target=3)  # two controls set, still a single redraw
    assert len(calls) == 1


def test_slider_values_are_clamped_to_their_range():
    explorer = widgets.softmax_explorer()
    explorer.update(z0=100.0, temperature=0.01)
    assert explorer.values()["z0"] == 6.0
    assert explorer.values()["temperature"] == 0.5


def test_update_rejects_unknown_controls():
    explorer = widgets.softmax_explorer()
    with pytest.raises(TypeError, match="unknown control"):
        explorer.update(logits=[1.0, 2.0])


def test_figure_is_closed_and_widget_holds_controls_and_output():
    explorer = widgets.softmax_explorer()
    # Closed: the inline backend will not show it a second time below the cell.
    assert explorer.fig.number not in plt.get_fignums()
    controls, message, out, note = explorer.widget.children
    assert out is explorer.out and message is explorer.message and note is explorer.note
    assert list(controls.children) == list(explorer.controls.values())
    sliders = [c for c in explorer.controls.values() if hasattr(c, "continuous_update")]
    assert sliders and all(c.continuous_update for c in sliders)  # blitted: updates are cheap
