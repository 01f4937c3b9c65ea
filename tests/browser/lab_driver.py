"""JupyterLab in headless Chromium, driven by Playwright: what tests/browser/ needs.

``JupyterLab(root)`` starts a server on a free localhost port with JupyterLab's own test
configuration (``jupyterlab.galata.configure_jupyter_server``: no token, no XSRF check,
``window.jupyterapp`` exposed), serving ``root``. ``Notebook`` is one open notebook tab
(in the Chromium of tests/chromium.py): run it through the Run menu, save it, read its
outputs, find its explorers and move their controls with the keyboard while timing each
key press until the new picture is on screen.
"""

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# What the page would show for a widget that did not render (the kernel-side repr, or
# the widget manager's messages).
NOT_RENDERED = ("Error displaying widget", "Loading widget", "VBox(", "HBox(", "GridBox(")

SERVER_CONFIG = """\
import os
from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)
c.ServerApp.port = {port}
c.ServerApp.root_dir = {root!r}
c.ServerApp.allow_root = os.geteuid() == 0
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_with_parent() -> None:
    """In the server's process: get SIGTERM when the test process dies, even if killed (Linux)."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class JupyterLab:
    """A JupyterLab server for ``root`` (a context manager); ``url`` is its address."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home, self.port = Path(root), Path(home), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        config = self.home / "jupyter_server_test_config.py"
        config.write_text(SERVER_CONFIG.format(port=self.port, root=str(self.root)))
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
        # Nothing of the user's own Jupyter set-up (kernels, settings, workspaces) leaks in;
        # the environment's own (sys.prefix/share/jupyter) stays, as in `make lab`.
        for var, folder in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("IPYTHONDIR", "ipython"),
        ):
            env[var] = str(self.home / folder)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        news = (
            self.home
            / "user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
        )
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text('{"fetchNews": "false"}')  # no "get notified about Jupyter news?" toast
        self.log = open(self.home / "jupyterlab.log", "wb")  # closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", f"--config={config}", "--no-browser"],
            env=env,
            cwd=self.root,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its kernels go with it in __exit__
            preexec_fn=_stop_with_parent,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/status", timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"JupyterLab did not start:\n{self.log_text()}") from None
                time.sleep(0.2)

    def log_text(self) -> str:
        return (self.home / "jupyterlab.log").read_text(errors="replace")[-4000:]

    def __exit__(self, *exc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


# In-page helpers, installed in every page before JupyterLab loads: when the last key went
# down or a control reported a change (a dropdown's popup takes keys the page never sees),
# and ``probe(root)``: a promise for the next new picture in an explorer, with the time it
# was on screen, when the kernel's redraw message arrived, and every height the explorer,
# its cell and the notebook had meanwhile.
PAGE_SCRIPT = """
window.__course = {key: 0, change: 0, busy: 0, message: 0};
document.addEventListener("keydown", () => { window.__course.key = performance.now(); }, true);
document.addEventListener("change", () => { window.__course.change = performance.now(); }, true);
window.__course.watchKernel = (kernel) => {
  if (kernel.__courseWatched) return;
  kernel.__courseWatched = true;
  kernel.anyMessage.connect((_, args) => {
    const msg = args.msg;
    if (args.direction !== "recv") return;
    // The kernel starts on a control's new value (busy), and sends the new picture.
    if (msg.header.msg_type === "status" && msg.content.execution_state === "busy"
        && msg.parent_header.msg_type === "comm_msg" && !window.__course.busy) {
      window.__course.busy = performance.now();
    }
    if (msg.header.msg_type === "comm_msg" && msg.content.data.state
        && "outputs" in msg.content.data.state) {
      window.__course.message = performance.now();
    }
  });
};
window.__course.probe = (root, timeout) => {
  const figure = root.querySelector(".course-explorer-figure");
  const cell = root.closest(".jp-Cell");
  const notebook = root.closest(".jp-WindowedPanel-outer") || document.body;
  const old = figure.querySelector("img");
  const oldSource = old ? old.src : null;
  const heights = new Set();
  const measure = () => heights.add([root.offsetHeight, cell.offsetHeight,
                                     notebook.scrollHeight].join(" "));
  measure();
  const resize = new ResizeObserver(measure);
  for (const node of [root, cell, figure]) resize.observe(node);
  window.__course.busy = window.__course.message = 0;
  return new Promise((resolve) => {
    let timer = null;
    const finish = (result) => {
      clearTimeout(timer);
      resize.disconnect();
      mutations.disconnect();
      measure();
      resolve({...result, heights: [...heights],
               event: Math.max(window.__course.key, window.__course.change),
               busy: window.__course.busy, message: window.__course.message});
    };
    const mutations = new MutationObserver(() => {
      const img = figure.querySelector("img");
      if (img && img.src !== oldSource) {
        mutations.disconnect();
        img.decode().catch(() => {}).then(() => requestAnimationFrame(() =>
          finish({painted: performance.now(), image: img.src})));
      }
    });
    mutations.observe(figure, {subtree: true, childList: true, attributes: true});
    timer = setTimeout(() => finish({painted: null, image: oldSource}), timeout);
  });
};
"""

# The notebook panel of a path (the argument of these page functions).
PANEL = """window.jupyterapp && Array.from(window.jupyterapp.shell.widgets("main"))
  .find((widget) => widget.context && widget.context.path === path)"""
KERNEL_IDLE = f"""(path) => {{
  const panel = {PANEL};
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return Boolean(kernel && kernel.status === "idle" && panel.content.widgets.length);
}}"""
# Run All has finished: every code cell has an execution count (a queued or running cell has
# none), or a cell failed (the kernel then skips the rest).
RUN_ALL_DONE = f"""(path) => {{
  const panel = {PANEL};
  if (panel.sessionContext.session.kernel.status !== "idle") return false;
  const cells = panel.content.widgets.filter((cell) => cell.model.type === "code");
  const failed = cells.some((cell) => Array.from(
    {{length: cell.model.outputs.length}}, (_, i) => cell.model.outputs.get(i).type
  ).includes("error"));
  return failed || cells.every((cell) => cell.model.executionCount !== null);
}}"""
# The value each kind of control shows, read from the page.
CONTROL_VALUE = """(control) => {
  const readout = control.querySelector(".widget-readout");
  if (readout) return readout.textContent.trim();
  const select = control.querySelector("select");
  if (select) return select.options[select.selectedIndex].text;
  const box = control.querySelector("input[type=checkbox]");
  if (box) return String(box.checked);
  const active = control.querySelector("button.mod-active");
  if (active) return active.textContent.trim();
  return null;
}"""


class Notebook:
    """One notebook open in its own browser tab."""

    def __init__(self, context, lab: JupyterLab, path: str):
        self.lab, self.path = lab, path
        self.page: Page = context.new_page()
        self.page.add_init_script(PAGE_SCRIPT)
        self.page.goto(f"{lab.url}/lab/tree/{path}?reset")  # ?reset: only this notebook open
        self.page.wait_for_function(KERNEL_IDLE, arg=path, timeout=90_000)
        self.watch_kernel()

    def watch_kernel(self) -> None:
        self.page.evaluate(
            f"(path) => window.__course.watchKernel(({PANEL}).sessionContext.session.kernel)",
            self.path,
        )

    def menu(self, menu: str, item: str) -> None:
        """Click ``item`` in the menu bar's ``menu``, as a student would."""
        exact = re.compile(f"^{re.escape(menu)}$")
        self.page.locator(".lm-MenuBar-itemLabel", has_text=exact).click()
        exact = re.compile(f"^{re.escape(item)}$")
        self.page.locator(".lm-Menu-itemLabel", has_text=exact).click()

    def run_all(self, timeout: float = 180) -> float:
        """Run ▸ Run All Cells; the seconds until the last cell has finished."""
        start = time.perf_counter()
        self.menu("Run", "Run All Cells")
        self.page.wait_for_function(
            RUN_ALL_DONE, arg=self.path, timeout=timeout * 1000, polling=100
        )
        seconds = time.perf_counter() - start
        self.watch_kernel()
        return seconds

    def save(self) -> Path:
        """File ▸ Save Notebook; the file, once written (it is written in place, so wait for
        its modification time to change and then to stay for a moment)."""
        file = self.lab.root / self.path
        before = file.stat().st_mtime_ns
        self.menu("File", "Save Notebook")
        deadline, last, stable_since = time.monotonic() + 30, before, None
        while True:
            assert time.monotonic() < deadline, f"File ▸ Save Notebook did not write {file}"
            time.sleep(0.1)
            now = file.stat().st_mtime_ns
            if now != last:
                last, stable_since = now, time.monotonic()
            elif now != before and time.monotonic() - stable_since > 0.5:
                return file

    def close(self) -> None:
        self.page.close()

    def output_texts(self) -> list[str]:
        """The text of every output on the page (what a student reads)."""
        return self.page.locator(".jp-OutputArea-output").all_text_contents()

    def rendered_widgets(self) -> int:
        """How many outputs are rendered widgets (a widget view, not text or an error)."""
        return self.page.locator(".jp-OutputArea-output > .jupyter-widgets").count()

    def trust(self) -> None:
        """Trust the notebook (command palette: Trust Notebook), so its stored outputs render
        in full: JupyterLab shows an untrusted notebook's widgets as their text."""
        self.page.evaluate(
            "(path) => { const panel = " + PANEL + "; panel.activate();"
            " window.jupyterapp.commands.execute('notebook:trust'); }",
            self.path,
        )
        self.page.get_by_role("button", name="Trust").click()

    def explorers(self, timeout: float = 30) -> list[Locator]:
        """The explorers on the page (waiting ``timeout`` seconds for the first one)."""
        explorers = self.page.locator(".course-explorer")
        with contextlib.suppress(PlaywrightTimeout):
            explorers.first.wait_for(state="attached", timeout=timeout * 1000)
        return explorers.all()


def shut_down_kernels(lab: JupyterLab) -> None:
    """Stop every kernel of the server, as closing JupyterLab and coming back next day would."""
    with urllib.request.urlopen(f"{lab.url}/api/sessions") as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{lab.url}/api/sessions/{session['id']}", method="DELETE")
        urllib.request.urlopen(request).close()


KINDS = {  # a control's kind, by the class ipywidgets gives its element
    "widget-slider": "slider",
    "widget-dropdown": "dropdown",
    "widget-checkbox": "checkbox",
    "widget-toggle-buttons": "toggle buttons",
}
CONTROL_KIND_AND_STATE = """(control, kinds) => {
  const kind = Object.keys(kinds).find((name) => control.classList.contains(name));
  const disabled = Boolean(control.querySelector("[disabled]"))
    || Array.from(control.querySelectorAll("input, select, button")).some((e) => e.disabled);
  const label = control.querySelector(".widget-label");
  return {kind: kind ? kinds[kind] : null, classes: control.className, disabled,
          label: label ? label.textContent.trim() : ""};
}"""
PROBE_TIMEOUT_MS = 10_000


@dataclass
class Press:
    """One control moved with the keyboard, and what the explorer did."""

    control: str
    keys: str
    value_before: str
    value_after: str
    to_picture_ms: float | None  # the key (or the dropdown's change) to the new picture shown
    to_kernel_ms: float | None  # ... to the kernel starting on it (its busy status arriving)
    to_message_ms: float | None  # ... to the kernel's new picture arriving in the page
    heights: list[str]  # explorer, cell and notebook heights seen while it updated


def _press_keys(page: Page, control: Locator, kind: str, forward: bool) -> str:
    """Move a control one step with the keyboard (forward if it can); the keys pressed."""
    if kind == "slider":
        handle = control.locator(".noUi-handle").first
        now, high, low = (
            float(handle.get_attribute(a))
            for a in ("aria-valuenow", "aria-valuemax", "aria-valuemin")
        )
        key = "ArrowRight" if (forward and now < high) or now <= low else "ArrowLeft"
        handle.press(key)  # up and down would move JupyterLab's cell cursor instead
        return key
    if kind == "dropdown":
        select = control.locator("select")
        index, count = select.evaluate("(s) => [s.selectedIndex, s.options.length]")
        key = "ArrowDown" if (forward and index < count - 1) or index == 0 else "ArrowUp"
        select.focus()
        # Space opens the list (JupyterLab takes arrow keys on a closed one for moving
        # between cells), an arrow key moves in the open list, Enter picks.
        page.keyboard.press("Space")
        page.wait_for_function(
            "(s) => s.matches(':open')", arg=select.element_handle(), polling=10, timeout=5000
        )
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        return f"Space {key} Enter"
    if kind == "checkbox":
        control.locator("input").press("Space")
        return "Space"
    if kind == "toggle buttons":
        control.locator("button:not(.mod-active)").first.press("Space")
        return "Space"
    raise AssertionError(kind)


def move_control(
    page: Page, root: Locator, control: Locator, label: str, kind: str, forward: bool
) -> Press:
    """Press keys on a control and wait for the explorer's next picture."""
    before = control.evaluate(CONTROL_VALUE)
    root.evaluate(
        "(root, timeout) => { window.__course.pending = window.__course.probe(root, timeout); }",
        PROBE_TIMEOUT_MS,
    )
    keys = _press_keys(page, control, kind, forward)
    result = page.evaluate("() => window.__course.pending")
    after = control.evaluate(CONTROL_VALUE)
    painted, event = result["painted"], result["event"]
    busy, message = result["busy"], result["message"]
    return Press(
        control=label,
        keys=keys,
        value_before=before,
        value_after=after,
        to_picture_ms=None if painted is None else painted - event,
        to_kernel_ms=(busy - event) if busy else None,
        to_message_ms=(message - event) if message else None,
        heights=result["heights"],
    )


def exercise_explorer(page: Page, root: Locator, presses_per_control: int = 6) -> list[Press]:
    """Move every control of an explorer with the keyboard, ``presses_per_control`` times.

    A control the current settings disable (momentum for Adam) is moved once they enable it:
    until then the dropdowns are stepped on, one option at a time.
    """
    # Every child of the controls grid: not only those with the `jupyter-widgets` class, which
    # some controls' elements lack (ToggleButtons, SelectionSlider); a kind this test cannot
    # move fails below instead of being skipped.
    controls = root.locator(".widget-gridbox > *").all()
    assert controls, "an explorer without controls in its grid"
    states = [c.evaluate(CONTROL_KIND_AND_STATE, KINDS) for c in controls]
    unknown = [s["classes"] for s in states if s["kind"] is None]
    assert not unknown, f"controls of a kind the browser test cannot move yet: {unknown}"
    pending = list(range(len(controls)))
    dropdowns = [i for i, s in enumerate(states) if s["kind"] == "dropdown"]
    presses: list[Press] = []
    for step in range(1 + sum(control_count(controls[i]) for i in dropdowns)):
        for i in list(pending):
            state = controls[i].evaluate(CONTROL_KIND_AND_STATE, KINDS)
            if state["disabled"]:
                continue
            label = state["label"] or f"control {i}"
            for n in range(presses_per_control):
                forward = n < presses_per_control // 2
                presses.append(move_control(page, root, controls[i], label, state["kind"], forward))
            pending.remove(i)
        if not pending:
            return presses
        assert dropdowns, f"controls never enabled: {[states[i]['label'] for i in pending]}"
        i = dropdowns[step % len(dropdowns)]
        presses.append(move_control(page, root, controls[i], states[i]["label"], "dropdown", True))
    raise AssertionError(f"controls never enabled: {[states[i]['label'] for i in pending]}")


def control_count(control: Locator) -> int:
    """How many options a dropdown has."""
    return control.locator("option").count()
