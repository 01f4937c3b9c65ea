"""The notebooks as a student meets them: JupyterLab in a real browser (headless Chromium).

``make test-browser`` runs this module (and ``make test`` runs that target); the unit run,
``pytest tests``, skips it because it has its own target. For each student notebook in
notebooks/, copied to a temporary folder:

- Run ▸ Run All Cells: no error output, every check says "not implemented yet", every
  widget rendered as a widget (not as text, not "Error displaying widget"); the notebook
  as saved then is kept in build/browser/executed/, from which ``make test-site`` builds
  the site's student edition instead of executing every notebook once more;
- every control of every explorer moved with the keyboard changes the picture and the
  value shown, and nothing on the page changes height meanwhile; the time from the key to
  the new picture on screen goes into the table printed at the end, with screenshots of
  each explorer before and after in build/browser/;
- saved and reopened with a fresh kernel, the notebook shows each explorer's last picture
  and the note that says how to bring it back, and following the note brings it back.

Also: the executed solutions show their stored pictures, and an error while drawing
appears inside the widget. Timings are reported, not asserted (they depend on the machine);
the budget is 100 ms at the 95th percentile (CONTRIBUTING.md).
"""

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from chromium import chromium  # tests/chromium.py, shared with the site test
from lab_driver import (
    NOT_RENDERED,
    JupyterLab,
    Notebook,
    exercise_explorer,
    move_control,
    shut_down_kernels,
)

from course_utils import exercises
from course_utils.widgets.explorer import REOPEN_NOTE

from conftest import NOTEBOOKS, ROOT, SOLUTIONS

pytestmark = pytest.mark.skipif(
    os.environ.get("COURSE_BROWSER_TEST") != "1",
    reason="real-browser test: run by its own target, `make test-browser` (part of `make test`)",
)

NAMES = [path.name for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]
SHOTS = ROOT / "build" / "browser"
EXECUTED = SHOTS / "executed"  # the saved notebooks, for tools/build_site.py --seed
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ROWS = []  # one per notebook, for the table printed at the end


@pytest.fixture(scope="module")
def lab(request):
    """JupyterLab serving copies of notebooks/ and solutions/, and a Chromium to open them."""
    folder = Path(tempfile.mkdtemp(prefix="course-browser-"))
    root, home = folder / "root", folder / "home"
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    shutil.copytree(SOLUTIONS, root / "solutions")
    home.mkdir()
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    started = time.perf_counter()
    try:
        with JupyterLab(root, home) as server, chromium() as browser:
            yield server, browser, root
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _report(request.config, time.perf_counter() - started)


def _report(config, seconds: float) -> None:
    """Print the table (past pytest's output capture) and keep a copy in build/browser/."""
    lines = []
    write = lines.append
    write("")
    write(f"JupyterLab in headless Chromium: {seconds:.0f} s in all; key to new picture, ms:")
    write(
        f"{'notebook':<36} {'Run All (s)':>11} {'controls':>8} {'keys':>5} {'median':>7} {'p95':>5}"
    )
    for row in ROWS:
        write(
            f"{row['notebook']:<36} {row['run_all']:>11.1f} {row['controls']:>8} "
            f"{row['keys']:>5} {row['median']:>7.0f} {row['p95']:>5.0f}"
        )
    write("")
    write("Per control, medians (ms): key to the kernel starting | to its new picture arriving |")
    write("to the picture on screen; and the p95 of the last.")
    heading = f"{'notebook/explorer: control':<42} {'keys':>4} {'kernel':>6} {'picture':>7}"
    write(f"{heading} {'shown':>5} {'p95':>5}")
    for row in ROWS:
        for (explorer, control), presses in row["per_control"].items():
            shown = [p.to_picture_ms for p in presses]
            kernel = [p.to_kernel_ms for p in presses if p.to_kernel_ms is not None]
            message = [p.to_message_ms for p in presses if p.to_message_ms is not None]
            write(
                f"{row['notebook'][:2] + '/' + str(explorer) + ': ' + control:<42} {len(shown):>4}"
                f" {_median(kernel):>6.0f} {_median(message):>7.0f} {_median(shown):>5.0f}"
                f" {_p95(shown):>5.0f}"
            )
    (SHOTS / "table.txt").write_text("\n".join(lines) + "\n")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    with config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


def _median(values) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    )


def _errors(nb) -> list[str]:
    return [
        f"cell {i}: {out.ename}: {out.evalue}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]


def _assert_widgets_rendered(notebook: Notebook, nb) -> None:
    texts = "\n".join(notebook.output_texts())
    for text in NOT_RENDERED:
        assert text not in texts, f"a widget did not render: the page shows {text!r}"
    views = sum(
        WIDGET_VIEW in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    assert notebook.rendered_widgets() == views, "some widget outputs are not rendered widgets"


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_runs_and_every_explorer_responds(lab, name):
    server, browser, root = lab
    notebook = Notebook(browser, server, f"notebooks/{name}")
    run_all = notebook.run_all()
    notebook.save()
    nb = nbformat.read(root / "notebooks" / name, as_version=4)
    errors = _errors(nb)
    assert not errors, errors

    # What the checks print before anything is solved (the student's first run).
    printed = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    for ex in exercises.for_lecture(name):
        assert f"{ex.id}: {ex.title}" in printed
    assert printed.count("not implemented yet") >= len(exercises.for_lecture(name))
    _assert_widgets_rendered(notebook, nb)
    # The course's JupyterLab setting stores widget state on save (see test_reopened_...).
    assert WIDGET_STATE in nb.metadata.get("widgets", {}), (
        "saving did not store the widget state: is lab-settings/overrides.json installed "
        "(make lab and make test-browser install it into .venv)?"
    )
    EXECUTED.mkdir(exist_ok=True)
    shutil.copy(root / "notebooks" / name, EXECUTED / name)

    explorers = notebook.explorers()
    assert explorers, "no explorer on the page (every notebook has one)"
    assert len(explorers) == _explorer_outputs(nb)
    per_control, labels = {}, set()
    for k, root_node in enumerate(explorers):
        root_node.scroll_into_view_if_needed()
        root_node.screenshot(path=SHOTS / f"{Path(name).stem}-explorer{k}-before.png")
        presses = exercise_explorer(notebook.page, root_node)
        root_node.screenshot(path=SHOTS / f"{Path(name).stem}-explorer{k}-after.png")
        for press in presses:
            where = f"{name}, explorer {k}, {press.control!r} ({press.keys})"
            assert press.to_picture_ms is not None, f"{where}: the picture did not change"
            assert press.value_after != press.value_before, f"{where}: the value shown stays"
            assert len(press.heights) == 1, f"{where}: the page moved: heights {press.heights}"
            per_control.setdefault((k, press.control), []).append(press)
            labels.add((k, press.control))
    times = [press.to_picture_ms for presses in per_control.values() for press in presses]
    ROWS.append(
        {
            "notebook": Path(name).stem,
            "run_all": run_all,
            "controls": len(labels),
            "keys": len(times),
            "median": statistics.median(times),
            "p95": _p95(times),
            "per_control": per_control,
        }
    )
    notebook.close()


def _wait_for_pictures(notebook: Notebook, count: int) -> list:
    """The page's explorers, once ``count`` of them show a picture."""
    notebook.page.wait_for_function(
        "(count) => { const figures = document.querySelectorAll('.course-explorer-figure');"
        " return figures.length === count"
        " && Array.from(figures).every((figure) => figure.querySelector('img')); }",
        arg=count,
        timeout=60_000,
    )
    return notebook.explorers()


def _explorer_outputs(nb) -> int:
    return sum(
        REOPEN_NOTE in out.get("data", {}).get("text/plain", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


@pytest.mark.parametrize("name", NAMES)
def test_reopened_notebook_shows_the_last_picture_and_how_to_bring_it_back(lab, name):
    server, browser, root = lab
    saved = nbformat.read(root / "notebooks" / name, as_version=4)
    assert WIDGET_STATE in saved.metadata.get("widgets", {}), "test_student_notebook_... saves it"
    shut_down_kernels(server)  # as if JupyterLab had been closed and opened another day

    notebook = Notebook(browser, server, f"notebooks/{name}")
    explorers = _wait_for_pictures(notebook, _explorer_outputs(saved))
    _assert_widgets_rendered(notebook, saved)
    for k, root_node in enumerate(explorers):
        root_node.scroll_into_view_if_needed()
        assert REOPEN_NOTE in root_node.text_content()
        root_node.screenshot(path=SHOTS / f"{Path(name).stem}-explorer{k}-reopened.png")
    if name == NAMES[0]:  # the note's advice works (the same for every notebook)
        notebook.run_all()
        root_node = notebook.explorers()[0]
        first = root_node.locator(".widget-gridbox > .jupyter-widgets").first
        kind = "dropdown" if first.locator("select").count() else "slider"
        press = move_control(notebook.page, root_node, first, "first control", kind, True)
        assert press.to_picture_ms is not None and press.value_after != press.value_before
    notebook.close()


@pytest.mark.parametrize("name", [p.name for p in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))])
def test_executed_solution_shows_the_note_then_its_stored_pictures(lab, name):
    server, browser, _ = lab
    stored = nbformat.read(SOLUTIONS / name, as_version=4)
    count = _explorer_outputs(stored)
    assert count, "the stored explorer outputs do not carry the note: run make release"
    notebook = Notebook(browser, server, f"solutions/{name}")
    # Not trusted on this machine (it was executed elsewhere): JupyterLab shows the text form.
    notebook.page.get_by_text(REOPEN_NOTE).first.wait_for(state="attached")
    texts = notebook.output_texts()
    assert sum(REOPEN_NOTE in text for text in texts) == count
    assert not [t for t in texts for bad in NOT_RENDERED if bad in t]
    # Trusted, it shows the stored widgets, each explorer with its last picture.
    notebook.trust()
    _wait_for_pictures(notebook, count)
    _assert_widgets_rendered(notebook, stored)
    notebook.close()


ERROR_NOTEBOOK = '''\
import matplotlib.pyplot as plt
from course_utils import widgets


class Picky(widgets.Explorer):
    """A line of the chosen slope, which refuses positive slopes."""

    def __init__(self):
        with plt.ioff():
            fig, ax = plt.subplots(figsize=(4, 2))
        plt.close(fig)
        (self.line,) = ax.plot([0, 1], [0, 0])
        ax.set_ylim(-1, 1)
        slope = widgets.slider("slope", 0.0, -1.0, 1.0, 0.5)
        super().__init__({"slope": slope}, fig, animated=[self.line])

    def draw(self, slope):
        if slope > 0:
            raise ValueError("a positive slope is not allowed here")
        self.line.set_ydata([0, slope])


Picky().widget
'''


def test_an_error_while_drawing_shows_in_the_widget_and_nothing_moves(lab):
    server, browser, root = lab
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(ERROR_NOTEBOOK)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, root / "picky.ipynb")
    notebook = Notebook(browser, server, "picky.ipynb")
    notebook.run_all()
    (explorer,) = notebook.explorers()
    message = explorer.locator(".course-explorer-message")
    figure = explorer.locator(".course-explorer-figure img")
    handle = explorer.locator(".noUi-handle")
    height, picture = explorer.bounding_box()["height"], figure.get_attribute("src")
    assert message.inner_text().strip() == ""

    handle.press("ArrowRight")  # slope 0 -> 0.5: refused
    message.get_by_text("a positive slope is not allowed here").wait_for()
    assert "These settings cannot be drawn: ValueError" in message.inner_text()
    assert figure.get_attribute("src") == picture  # the last good picture stays
    assert explorer.bounding_box()["height"] == height  # the message line was kept for it

    handle.press("ArrowLeft")  # back to 0: drawn again, the message goes
    notebook.page.wait_for_function(
        "(node) => node.innerText.trim() === ''", arg=message.element_handle()
    )
    assert explorer.bounding_box()["height"] == height
    notebook.close()
