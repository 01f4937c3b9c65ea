"""The explorer framework: controls + one matplotlib figure, redrawn in place.

Every explorer of the course follows one pattern (see the lecture modules next to this one):

1. a pure compute function: numbers in, numbers out (``softmax_quantities`` in lecture01),
   which the tests compare with course_utils and torch;
2. an ``Explorer`` subclass whose ``__init__`` makes its controls and ONE figure (created
   under ``plt.ioff()`` and closed, so the inline backend does not show it a second time),
   passes both to ``Explorer.__init__``, and whose ``draw(**values)`` calls the compute
   function and changes the figure's artists in place (``set_height``, ``set_text``, ...);
3. a builder function (``softmax_explorer()``) that returns the explorer.

In the notebook, ``explorer.widget`` is displayed. Moving a control calls
``explorer.update()``, which redraws and assigns the rendered PNG to an ``Output`` widget's
``outputs`` directly. Not capturing output with ``with out:`` keeps the stored notebook
reproducible under nbval, and it lets a test call ``update(temperature=2.0)`` and inspect
``explorer.fig`` and ``explorer.out.outputs`` headless.

If ``draw`` raises (a combination of controls the compute function refuses), the message
appears in the widget, in ``explorer.error``, and the last picture stays: a student never
sees a traceback in the log console, which nobody opens.
"""

import base64
import html

import ipywidgets as ipw
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_utils import plotting

__all__ = ["Explorer", "figure_png"]


def figure_png(fig: Figure, dpi: int = 100) -> str:
    """A figure as a compact PNG, base64-encoded (what an ``image/png`` output holds)."""
    return base64.b64encode(plotting.png(fig, dpi=dpi)).decode("ascii")


class Explorer:
    """Controls and one figure; ``update(**values)`` redraws the figure for new control values.

    controls: name -> ipywidgets control; ``draw`` receives their values by these names.
    fig: the figure ``draw`` changes. It is rendered at 100 dpi, so the picture is
        ``fig.get_size_inches() * 100`` pixels.
    columns: the controls are laid out in a grid above the figure, this many per row.

    A subclass implements ``draw(**values)`` and may override ``render()`` (e.g. to blit).
    """

    def __init__(self, controls: dict[str, ipw.ValueWidget], fig: Figure, *, columns: int = 2):
        self.controls, self.fig = controls, fig
        # Closing a figure leaves it a bare canvas, and savefig would then make a new Agg
        # canvas, renderer and text-size cache for every PNG. A canvas of its own keeps them.
        FigureCanvasAgg(fig)
        width, height = (fig.get_size_inches() * 100).round().astype(int)
        # A fixed size: the output keeps its place while a new picture replaces the old one.
        self.out = ipw.Output(layout=ipw.Layout(width=f"{width}px", height=f"{height}px"))
        self.message = ipw.HTML()
        self.error = ""  # the message of the last failed update, "" after a good one
        self._syncing = False
        for control in controls.values():
            control.observe(self._on_change, names="value")
        grid = ipw.GridBox(
            list(controls.values()),
            layout=ipw.Layout(grid_template_columns=f"repeat({columns}, max-content)"),
        )
        self.widget = ipw.VBox([grid, self.message, self.out])
        if fig.get_layout_engine() is not None:
            # Lay the figure out once, with real content, then keep that layout: running the
            # layout engine on every render would double the cost of an update.
            self.draw(**self.values())
            fig.draw_without_rendering()
            fig.set_layout_engine(None)
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
            self.message.value = (
                '<span style="color: #b00020">These settings cannot be drawn: '
                f"{html.escape(self.error)}</span>"
            )
            return
        self.error, self.message.value = "", ""
        self.out.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": image, "text/plain": "<explorer figure>"},
                "metadata": {},
            },
        )

    def render(self) -> str:
        """The figure as a base64 PNG (a subclass may render faster, e.g. by blitting)."""
        return figure_png(self.fig)

    def _on_change(self, change) -> None:
        if not self._syncing:
            self.update()
