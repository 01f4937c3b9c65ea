"""Common tests of every explorer in course_utils.widgets (a new lecture's explorers get them
by being exported as ``*_explorer`` builders).

Every control, moved to another value, changes the picture and the numbers it shows; an
error while drawing is shown inside the widget, and the last picture stays.
"""

import base64
import itertools
import math

import ipywidgets as ipw
import matplotlib.pyplot as plt
import pytest

from course_utils import widgets

BUILDERS = sorted(name for name in widgets.__all__ if name.endswith("_explorer"))


@pytest.fixture(scope="module", params=BUILDERS)
def explorer(request):
    built = getattr(widgets, request.param)()
    yield built
    plt.close(built.fig)


def _png(explorer) -> bytes:
    (output,) = explorer.out.outputs
    return base64.b64decode(output["data"]["image/png"])


def _numbers_shown(fig) -> list[str]:
    """Every text of the figure except tick labels: titles, labels on bars, legends."""
    texts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        texts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        texts += [t.get_text() for t in ax.texts]
        if ax.get_legend():
            texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return texts


def _another_value(control):
    """A valid value different from the control's current one."""
    if isinstance(control, ipw.widgets.widget_selection._Selection):
        values = [value for _, value in control._options_full]
        return values[(values.index(control.value) + 1) % len(values)]
    if isinstance(control, ipw.Checkbox | ipw.ToggleButton):
        return not control.value
    if isinstance(control, ipw.FloatLogSlider):
        low, high = control.min, control.max
        current = math.log(control.value, control.base)
        exponent = (
            low + 0.3 * (high - low) if current > (low + high) / 2 else high - 0.3 * (high - low)
        )
        return control.base**exponent
    low, high = control.min, control.max
    value = (
        low + 0.3 * (high - low) if control.value > (low + high) / 2 else high - 0.3 * (high - low)
    )
    return round(value) if isinstance(control, ipw.IntSlider) else value


def _enable(explorer, name):
    """Set the explorer's dropdowns so that control ``name`` is enabled (it may depend on them)."""
    selections = {
        key: [value for _, value in c._options_full]
        for key, c in explorer.controls.items()
        if key != name and isinstance(c, ipw.widgets.widget_selection._Selection)
    }
    for combination in itertools.product(*selections.values()):
        if not explorer.controls[name].disabled:
            return
        explorer.update(**dict(zip(selections, combination, strict=True)))
    assert not explorer.controls[name].disabled, f"{name} is never enabled"


def test_the_explorer_starts_with_a_picture_and_no_error(explorer):
    assert _png(explorer).startswith(b"\x89PNG")
    assert explorer.error == "" and explorer.message.value == ""
    assert explorer.fig.number not in plt.get_fignums()  # closed: shown once, by the Output


def test_every_control_changes_the_picture_and_the_numbers(explorer):
    start = explorer.values()
    for name, control in explorer.controls.items():
        _enable(explorer, name)
        before_png, before_numbers = _png(explorer), _numbers_shown(explorer.fig)
        explorer.update(**{name: _another_value(control)})
        assert explorer.error == "", (name, explorer.error)
        assert _png(explorer) != before_png, f"moving {name} does not change the picture"
        assert _numbers_shown(explorer.fig) != before_numbers, f"{name} changes no number"
        explorer.update(**start)


def test_an_error_while_drawing_is_shown_in_the_widget(explorer, monkeypatch):
    before = _png(explorer)

    def refuse(**values):
        raise ValueError("these settings make no sense")

    monkeypatch.setattr(explorer, "draw", refuse)
    explorer.update()  # does not raise
    assert explorer.error == "ValueError: these settings make no sense"
    assert "these settings make no sense" in explorer.message.value
    assert _png(explorer) == before  # the last good picture stays
    monkeypatch.undo()
    explorer.update()
    assert explorer.error == "" and explorer.message.value == ""


def test_the_output_keeps_a_fixed_size(explorer):
    width, height = (explorer.fig.get_size_inches() * 100).round().astype(int)
    assert explorer.out.layout.width == f"{width}px"
    assert explorer.out.layout.height == f"{height}px"
