"""The explorer framework: controls + one matplotlib figure, redrawn in place.

Every explorer of the course follows one pattern (see the lecture modules next to this one):

1. a pure compute function: numbers in, numbers out (``softmax_quantities`` in lecture01),
   which the tests compare with course_utils and torch;
2. an ``Explorer`` subclass whose ``__init__`` makes its controls (``slider`` builds the
   standard one) and ONE figure (created under ``plt.ioff()`` and closed, so the inline
   backend does not show it a second time), passes both to ``Explorer.__init__``, and whose
   ``draw(**values)`` calls the compute function and changes the figure's artists in place
   (``set_height``, ``set_text``, ...);
3. a builder function (``softmax_explorer()``) that returns the explorer.

In the notebook, ``explorer.widget`` is displayed. Moving a control calls
``explorer.update()``, which redraws and assigns the rendered PNG to an ``Output`` widget's
``outputs`` directly. Not capturing output with ``with out:`` keeps the stored notebook
reproducible under nbval, and it lets a test call ``update(temperature=2.0)`` and inspect
``explorer.fig`` and ``explorer.out.outputs`` headless.

Fast enough to feel live (an update, key press to new picture in the browser, under
100 ms): pass the artists that ``draw`` changes as ``animated``, and the rest of the figure
(axes, ticks, contours, legends) is drawn once and kept as a background that each update
copies back before drawing only those artists (matplotlib's blitting). For the softmax
explorer on a 2-core CPU, a full redraw costs about 55 ms, a blitted one about 14 ms, and
the PNG 4 ms more (``benchmarks/bench_widgets.py`` times every control of every explorer).

Nothing on the page moves during an update: the picture keeps a fixed size, and the line
for error messages keeps its height when empty. If ``draw`` raises (a combination of
controls the compute function refuses), the message appears in the widget, in
``explorer.error``, and the last picture stays: a student never sees a traceback in the log
console, which nobody opens.

A saved notebook keeps the explorer's last picture where it stores widget state (release
executes solutions/ with it; the JupyterLab of ``make lab`` saves it): its controls then do
nothing until the notebook runs again, which the line under the picture says. Where the
widget cannot be shown (no widget state, a notebook JupyterLab does not trust, GitHub), its
text form says the same.
"""

import base64
import contextlib
import html
import math

import ipywidgets as ipw
import numpy as np
import PIL.Image
import torch
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_utils import _validate, plotting

__all__ = ["REOPEN_NOTE", "Explorer", "figure_png", "one_thread", "slider"]

DPI = 100  # the picture is fig.get_size_inches() * DPI pixels
# What a saved notebook shows under the last picture, and in place of the widget where widgets
# cannot render (nbviewer, GitHub): running the notebook again brings the explorer back.
# Re-running the explorer cell alone would fail in a fresh kernel: its imports are above.
REOPEN_NOTE = (
    "Controls do nothing after reopening the notebook? Run ▸ Run All Cells brings them back."
)


@contextlib.contextmanager
def one_thread():
    """Run PyTorch on one thread inside the block, then restore the thread count.

    An explorer's tensors are small: a second thread adds synchronisation and no speed, and
    on a busy machine, where it waits for a free core, it made updates up to ten times
    slower (measured in lectures 03, 05, 06).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def figure_png(fig: Figure, dpi: int = DPI) -> str:
    """A figure as a compact PNG, base64-encoded (what an ``image/png`` output holds)."""
    return base64.b64encode(plotting.png(fig, dpi=dpi)).decode("ascii")


def slider(
    description: str,
    value: float,
    low: float,
    high: float,
    step: float | None = None,
    *,
    log: bool = False,
    readout_format: str | None = None,
    continuous_update: bool = True,
) -> ipw.FloatSlider | ipw.FloatLogSlider:
    """The standard explorer slider: a number in [low, high], linear or logarithmic.

    Linear (``FloatSlider``): ``step`` in the value's units, by default (high - low) / 100.

    ``log=True`` (``FloatLogSlider``, base 10): for what matters by its order of magnitude:
    learning rates, weight decays, epsilons. Every factor of 10 gets the same length of
    slider, so 1e-4 is as easy to reach as 1; ``step`` is then in decades (default 0.05:
    about 5 positions per doubling) and the readout shows 2 significant digits.

    continuous_update: redraw while the handle is dragged, not only when it is released.
    Right for an explorer within the 100 ms budget: ipywidgets sends a new value only once
    the kernel has finished the previous one, so dragging never queues up redraws. Pass
    False for an update that takes longer (one that trains a model).

    The explorer lays its controls out in a grid as wide as the cell, each control as wide
    as its column; the readout next to the slider is a box to type an exact value into.
    """
    low = _validate.number(low, "low")
    high = _validate.number(high, "high")
    if not low < high:
        raise ValueError(f"low must be < high, got low={low}, high={high}")
    value = _validate.number(value, description, low=low, high=high)
    if log:
        _validate.number(low, "low", low=0.0, low_open=True)
        step = 0.05 if step is None else _validate.number(step, "step", low=0.0, low_open=True)
        return ipw.FloatLogSlider(
            value=value,
            base=10,
            min=math.log10(low),
            max=math.log10(high),
            step=step,
            description=description,
            readout_format=readout_format or ".2g",
            continuous_update=continuous_update,
        )
    step = (high - low) / 100 if step is None else step
    step = _validate.number(step, "step", low=0.0, low_open=True)
    return ipw.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        readout_format=readout_format or ".2f",
        continuous_update=continuous_update,
    )


# A message longer than the line ends in "…"; hovering shows all of it.
_ONE_LINE = "display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;"


class _ExplorerBox(ipw.VBox):
    """The explorer's widget. Its text form is what shows where widgets cannot render."""

    def __repr__(self) -> str:
        return f"Interactive explorer. {REOPEN_NOTE}"


class Explorer:
    """Controls and one figure; ``update(**values)`` redraws the figure for new control values.

    controls: name -> ipywidgets control; ``draw`` receives their values by these names.
    fig: the figure ``draw`` changes. It is rendered at 100 dpi, so the picture is
        ``fig.get_size_inches() * 100`` pixels.
    columns: the controls are laid out in a grid above the figure, this many per row, the
        grid as wide as the cell and each control as wide as its column.
    animated: the artists ``draw`` changes. If given, an update redraws only these (in
        order of their zorder) on top of the rest of the figure, drawn once and kept; a
        subclass whose ``draw`` also changes something else (limits, which contours are
        visible) returns a different ``background_key()`` for each such state. Include a
        static artist that must stay on top of an animated one (a legend over a curve).

    A subclass implements ``draw(**values)`` and may override ``render()``.
    """

    def __init__(
        self,
        controls: dict[str, ipw.ValueWidget],
        fig: Figure,
        *,
        columns: int = 2,
        animated: tuple[Artist, ...] | list[Artist] = (),
    ):
        self.controls, self.fig = controls, fig
        self.animated = sorted(animated, key=Artist.get_zorder)
        self._backgrounds = {}  # background_key() -> the figure without its animated artists
        # Closing a figure leaves it a bare canvas, and savefig would then make a new Agg
        # canvas, renderer and text-size cache for every PNG. A canvas of its own keeps them.
        FigureCanvasAgg(fig)
        fig.set_dpi(DPI)
        width, height = (fig.get_size_inches() * DPI).round().astype(int)
        # A fixed size: the output keeps its place while a new picture replaces the old one.
        self.out = ipw.Output(layout=ipw.Layout(width=f"{width}px", height=f"{height}px"))
        # One line, kept when empty, so that an error message does not push the picture down.
        self.message = ipw.HTML(layout=ipw.Layout(height="1.6em", overflow="hidden"))
        self.note = ipw.HTML(f'<span style="color: #666; font-size: 0.9em">{REOPEN_NOTE}</span>')
        self.error = ""  # the message of the last failed update, "" after a good one
        self._syncing = False
        for control in controls.values():
            control.layout.width = "100%"
            control.observe(self._on_change, names="value")
        grid = ipw.GridBox(
            list(controls.values()),
            layout=ipw.Layout(
                width="100%", grid_template_columns=f"repeat({columns}, minmax(0, 1fr))"
            ),
        )
        self.widget = _ExplorerBox([grid, self.message, self.out, self.note])
        # Class names let a browser test find explorers and their parts on the page.
        self.widget.add_class("course-explorer")
        self.out.add_class("course-explorer-figure")
        self.message.add_class("course-explorer-message")
        if fig.get_layout_engine() is not None:
            # Lay the figure out once, with real content, then keep that layout: running the
            # layout engine on every render would double the cost of an update.
            self.draw(**self.values())
            fig.draw_without_rendering()
            fig.set_layout_engine(None)
        for artist in self.animated:
            artist.set_animated(True)  # a full draw (the background) leaves them out
        self.update()

    def draw(self, **values) -> None:
        """Update the figure's artists for these control values."""
        raise NotImplementedError

    def values(self) -> dict:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **values) -> None:
        """Set the given controls (the others keep their values), redraw, show the new PNG.

        An unknown control name is a programming error (TypeError). An error raised while
        drawing is shown in the widget instead, and the previous picture stays.
        """
        unknown = set(values) - set(self.controls)
        if unknown:
            raise TypeError(
                f"update() got unknown control(s) {sorted(unknown)}; "
                f"the controls are {list(self.controls)}"
            )
        self._syncing = True  # setting a control below must not trigger a second redraw
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._syncing = False
        try:
            self.draw(**self.values())
            image = self.render()
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            text = html.escape(f"These settings cannot be drawn: {self.error}")
            style = f"{_ONE_LINE} color: #b00020"
            self.message.value = f'<span style="{style}" title="{text}">{text}</span>'
            return
        self.error, self.message.value = "", ""
        self.out.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": image, "text/plain": "<explorer figure>"},
                "metadata": {},
            },
        )

    def background_key(self):
        """Which kept background the current picture is drawn on (see ``animated``)."""
        return None

    def render(self) -> str:
        """The figure as a base64 PNG: blitted if there are ``animated`` artists, else drawn."""
        canvas = self.fig.canvas
        if self.animated:
            key = self.background_key()
            if key not in self._backgrounds:
                canvas.draw()
                self._backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
            canvas.restore_region(self._backgrounds[key])
            for artist in self.animated:
                self.fig.draw_artist(artist)
        else:
            canvas.draw()
        image = PIL.Image.fromarray(np.asarray(canvas.buffer_rgba()))
        return base64.b64encode(plotting.compact_png(image)).decode("ascii")

    def _on_change(self, change) -> None:
        if not self._syncing:
            self.update()
