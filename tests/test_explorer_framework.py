"""The explorer framework (course_utils/widgets/explorer.py): its slider, layout and blitting.

The blitting and the learning-rate sliders are checked on every explorer of every lecture
(``*_explorer`` builders), so a new lecture is covered without writing these tests again.
"""

import base64
import io
import re

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import pytest
import torch

from course_utils import plotting, widgets
from course_utils.widgets.explorer import REOPEN_NOTE, one_thread

BUILDERS = sorted(name for name in widgets.__all__ if name.endswith("_explorer"))
# Quantities that matter by their order of magnitude get a logarithmic slider.
LOGARITHMIC = re.compile(r"learning rate|weight decay|\blr\b|\bwd\b|epsilon|\beps\b", re.IGNORECASE)


@pytest.fixture(scope="module", params=BUILDERS)
def explorer(request):
    built = getattr(widgets, request.param)()
    yield built
    plt.close(built.fig)


def _pixels(b64: str) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"), dtype=int)


def test_linear_slider_defaults():
    s = widgets.slider("temperature T", 1.0, 0.5, 3.0)
    assert isinstance(s, ipw.FloatSlider) and not isinstance(s, ipw.FloatLogSlider)
    assert (s.value, s.min, s.max, s.step) == (1.0, 0.5, 3.0, 0.025)
    assert s.description == "temperature T" and s.readout_format == ".2f"
    assert s.continuous_update


def test_log_slider_spans_decades_evenly():
    s = widgets.slider("learning rate", 0.05, 1e-4, 1.0, log=True, continuous_update=False)
    assert isinstance(s, ipw.FloatLogSlider)
    assert (s.base, s.min, s.max, s.step) == (10, -4.0, 0.0, 0.05)
    assert s.value == pytest.approx(0.05) and s.readout_format == ".2g"
    assert not s.continuous_update


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1.0, 2.0, 1.0), {}, "low must be < high"),
        ((5.0, 0.0, 1.0), {}, "lr must be <= 1.0"),
        ((0.5, 0.0, 1.0), {"log": True}, "low must be > 0"),
        ((0.5, 0.0, 1.0, 0.0), {}, "step must be > 0"),
    ],
)
def test_slider_rejects_bad_ranges(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        widgets.slider("lr", *args, **kwargs)


def test_learning_rates_and_weight_decays_are_on_logarithmic_sliders(explorer):
    for name, control in explorer.controls.items():
        if LOGARITHMIC.search(name) or LOGARITHMIC.search(control.description):
            assert isinstance(control, ipw.FloatLogSlider), f"{name}: use slider(..., log=True)"


def test_controls_fill_a_grid_as_wide_as_the_cell(explorer):
    grid = explorer.widget.children[0]
    assert list(grid.children) == list(explorer.controls.values())
    assert grid.layout.width == "100%" and "minmax(0, 1fr)" in grid.layout.grid_template_columns
    assert all(control.layout.width == "100%" for control in explorer.controls.values())


def test_the_message_line_keeps_its_height_and_the_note_says_how_to_come_back(explorer):
    assert explorer.message.layout.height  # an error does not push the picture down
    assert REOPEN_NOTE in explorer.note.value and "Run All Cells" in REOPEN_NOTE
    # Where widgets cannot render, the text form says the same (at most 110 characters are kept).
    text = explorer.widget._repr_mimebundle_()["text/plain"]
    assert text == repr(explorer.widget) and REOPEN_NOTE in text and len(text) <= 110
    assert "course-explorer" in explorer.widget._dom_classes


def test_a_blitted_picture_is_the_full_redraw(explorer):
    """Background + animated artists = the figure drawn from scratch, in every state tried."""
    start = explorer.values()
    for name, control in explorer.controls.items():
        if isinstance(control, ipw.widgets.widget_selection._Selection):
            values = [value for _, value in control._options_full]
        else:
            values = [control.min + 0.8 * (control.max - control.min)]
            if isinstance(control, ipw.FloatLogSlider):
                values = [control.base ** values[0]]
        for value in values:
            explorer.update(**{name: value})
            blitted = _pixels(explorer.out.outputs[0]["data"]["image/png"])
            # the framework's animated artists, or those of an explorer that blits itself
            animated = [a for a in explorer.fig.findobj() if a.get_animated()]
            for artist in animated:
                artist.set_animated(False)
            try:
                explorer.fig.canvas.draw()
                rgba = PIL.Image.fromarray(np.asarray(explorer.fig.canvas.buffer_rgba()))
                full = _pixels(base64.b64encode(plotting.compact_png(rgba)))
            finally:
                for artist in animated:
                    artist.set_animated(True)
            differ = np.abs(blitted - full).max(axis=2) > 40
            # where a curve crosses an axis spine, it is drawn over it, not under: a few pixels
            assert differ.mean() < 1e-3, (name, value, differ.sum())
        explorer.update(**start)


def test_an_explorer_without_animated_artists_redraws_fully():
    class Line(widgets.Explorer):
        def __init__(self):
            with plt.ioff():
                fig, ax = plt.subplots(figsize=(2, 1))
            plt.close(fig)
            (self.line,) = ax.plot([0, 1], [0, 0])
            ax.set_ylim(-1, 1)
            super().__init__({"slope": widgets.slider("slope", 0.0, -1.0, 1.0)}, fig)

        def draw(self, slope):
            self.line.set_ydata([0, slope])

    line = Line()
    flat = _pixels(line.out.outputs[0]["data"]["image/png"])
    line.update(slope=1.0)
    steep = _pixels(line.out.outputs[0]["data"]["image/png"])
    assert flat.shape == steep.shape == (100, 200, 3) and (flat != steep).any()
    assert line.animated == [] and line._backgrounds == {}


def test_one_thread_runs_torch_on_one_thread_and_restores_the_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(ZeroDivisionError), one_thread():
            1 / 0  # noqa: B018
        assert torch.get_num_threads() == 2  # restored after an error too
    finally:
        torch.set_num_threads(before)
