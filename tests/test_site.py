"""The course as a website (tools/build_site.py, ``make site``): complete, and offline.

``make test-site`` runs this module (``make test`` runs that target, after
``make test-browser``); the unit run, ``pytest tests``, skips it. It builds both editions
into a temporary folder: the student edition from the notebooks ``make test-browser`` ran
in JupyterLab and saved (build/browser/executed/; a notebook without such a copy is
executed, through the cache ``make site`` uses), the instructor edition from solutions/
as they are. Then, for every page:

- each lecture of the edition's folder has a page, linked from the course map, which
  lists every row of the README's course map;
- no error output; every figure of the notebook is an image of the site; every widget
  output has its model in the page's saved widget state, explorers with their picture;
- no script, style sheet, font or image comes from another host (the HTML, every CSS
  file), and what the pages name exists in the site; math goes to the site's MathJax;
- the student edition shows no solution code, the instructor edition does;
- the search index knows every lecture.

In headless Chromium (tests/chromium.py), with every request outside the site refused and
recorded: every lecture page of the student edition, and the first of the instructor
edition (the same pages, drawn by the same scripts; the static checks above cover all of
its pages), opened from ``file://``, shows each explorer's picture (no "model not found")
and typeset math, and fails to load nothing; screenshots of each page's first explorer,
and of the first lecture's page around it, go to build/site-test/. The search page,
served from localhost, finds a lecture by its title.

Finally, on a course of two tiny notebooks: a rebuild executes only the notebook whose
code changed, an executed copy is used instead of executing, and a change to course_utils
executes everything again.
"""

import html
import html.parser
import importlib.util
import json
import os
import re
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from course_utils import exercises, release
from course_utils.widgets.explorer import REOPEN_NOTE

from conftest import ROOT

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("COURSE_SITE_TEST") != "1",
        reason="builds the website: run by its own target, `make test-site` (part of `make test`)",
    ),
    # sphinx_external_toc looks at every object in memory, which includes torch's (imported
    # here by course_utils; the build alone does not import it).
    pytest.mark.filterwarnings("ignore:`torch.distributed.reduce_op` is deprecated:FutureWarning"),
]

_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)

EDITIONS = list(build_site.EDITIONS)
EXECUTED = ROOT / "build" / "browser" / "executed"  # saved by make test-browser
SHOTS = ROOT / "build" / "site-test"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NOT_RENDERED = ("Error displaying widget", "model not found", "Loading widget")
# A URL that leaves the site: a scheme (http:, https:, data: is fine) or a protocol-relative //.
EXTERNAL = re.compile(r"^\s*(//|[a-z][a-z0-9+.-]*:)", re.IGNORECASE)


@pytest.fixture(scope="module")
def sites(tmp_path_factory, request):
    """Both editions, built into a temporary folder: edition -> build_site.Built."""
    folder = tmp_path_factory.mktemp("site")
    # A fresh Sphinx build in the temporary folder; the execution cache of make site.
    places = {"work": folder / "work", "caches": ROOT / "build" / "site-work" / "cache"}
    built = {
        "student": build_site.build("student", out=folder / "student", seed=EXECUTED, **places),
        "instructor": build_site.build("instructor", out=folder / "instructor", **places),
    }
    yield built
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        reporter.write_line("")
        for edition, b in built.items():
            reporter.write_line(
                f"site: {edition} edition, {len(b.lectures)} lectures, {len(b.executed)} "
                f"executed, {len(b.seeded)} from make test-browser: built in {b.seconds:.0f} s "
                f"({b.cpu_seconds:.0f} s of CPU)"
            )


class _Page(html.parser.HTMLParser):
    """What a page names: scripts, style sheets and other links, images, inline styles,
    and the text of its script elements by type."""

    def __init__(self, text: str):
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (what, url)
        self.images: list[str] = []
        self.styles: list[str] = []
        self.scripts: dict[str, list[str]] = {}
        self._script_type = None
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.urls.append(("script", attrs["src"]))
            self._script_type = attrs.get("type", "text/javascript")
        elif tag == "link" and attrs.get("href"):
            self.urls.append((f"link rel={attrs.get('rel')}", attrs["href"]))
        elif tag in ("img", "iframe", "source", "embed") and attrs.get("src"):
            self.urls.append((tag, attrs["src"]))
            if tag == "img":
                self.images.append(attrs["src"])
        elif tag == "style":
            self._in_style = True
        if attrs.get("style"):
            self.styles.append(attrs["style"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._script_type = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._script_type:
            self.scripts.setdefault(self._script_type, []).append(data)
        elif self._in_style:
            self.styles.append(data)


def _pages(site: Path):
    """The site's pages (not the theme's template fragments in _static/)."""
    return sorted(path for path in site.rglob("*.html") if "_static" not in path.parts)


def _page(site: Path, name: str) -> tuple[str, _Page]:
    text = (site / name).read_text(encoding="utf-8")
    return text, _Page(text)


def _executed(built, name: str) -> nbformat.NotebookNode:
    """The notebook a lecture's page shows, with the outputs it was rendered from."""
    nb = nbformat.read(ROOT / build_site.EDITIONS[built.edition] / name, as_version=4)
    if built.edition == "instructor":  # its stored outputs
        return nb
    from jupyter_cache import get_cache

    return get_cache(str(built.cache)).merge_match_into_notebook(nb)[1]


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _css_urls(css: str) -> list[str]:
    found = re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
    return found + re.findall(r"@import\s+['\"]([^'\"]+)", css)


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_lecture_has_a_page_linked_from_the_course_map(sites, edition):
    built = sites[edition]
    lectures = build_site.lecture_files(ROOT / build_site.EDITIONS[edition])
    assert lectures and built.lectures == [path.name for path in lectures]
    text = (built.folder / "index.html").read_text(encoding="utf-8")
    course_map = text[text.index('id="course-map"') :]  # the section, not the side bar
    links = set(re.findall(r'href="([^"#]+)"', course_map))
    for path in lectures:
        assert (built.folder / f"{path.stem}.html").is_file(), f"no page for {path.name}"
        assert f"{path.stem}.html" in links, f"the course map does not link {path.name}"
        title = build_site.lecture_title(nbformat.read(path, as_version=4), path.stem)
        assert html.escape(title, quote=False) in course_map
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    words = re.sub(r"<[^>]+>", "", course_map)
    for row in build_site.course_map_rows(readme):  # the lectures not written yet too
        assert row["notebook"] in words or any(
            path.name.startswith(row["number"] + "_") for path in lectures
        )


@pytest.mark.parametrize("edition", EDITIONS)
def test_no_page_shows_an_error_and_every_figure_is_there(sites, edition):
    built = sites[edition]
    for name in built.lectures:
        nb = _executed(built, name)
        text, page = _page(built.folder, f"{Path(name).stem}.html")
        errors = [out for out in _outputs(nb) if out.output_type == "error"]
        assert not errors, f"{name}: {[f'{e.ename}: {e.evalue}' for e in errors]}"
        assert 'class="output traceback' not in text and "Traceback (most recent" not in text
        figures = [
            out
            for out in _outputs(nb)
            if "image/png" in out.get("data", {}) and WIDGET_VIEW not in out["data"]
        ]
        images = [src for src in page.images if not src.startswith("data:")]
        assert figures, f"{name}: no figure at all"
        assert len(images) >= len(figures), f"{name}: {len(figures)} figures, {len(images)} images"
        for src in images:
            image = built.folder / unquote(urlsplit(src).path)
            assert image.is_file() and image.stat().st_size > 100, f"{name}: {src} is missing"


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_widget_has_its_saved_state_and_every_explorer_its_picture(sites, edition):
    built = sites[edition]
    for name in built.lectures:
        nb = _executed(built, name)
        views = [
            out["data"][WIDGET_VIEW]["model_id"]
            for out in _outputs(nb)
            if WIDGET_VIEW in out.get("data", {})
        ]
        assert views, f"{name}: no widget (every lecture has an explorer)"
        _, page = _page(built.folder, f"{Path(name).stem}.html")
        (state_text,) = page.scripts[WIDGET_STATE]
        state = json.loads(state_text)["state"]
        for model_id in views:
            assert model_id in state, f"{name}: widget {model_id} is not in the saved state"
        pictures = [
            model
            for model in state.values()
            if model["model_name"] == "OutputModel"
            and any("image/png" in out.get("data", {}) for out in model["state"].get("outputs", []))
        ]
        explorers = sum(
            REOPEN_NOTE in out.get("data", {}).get("text/plain", "") for out in _outputs(nb)
        )
        assert len(pictures) >= explorers > 0, (
            f"{name}: {explorers} explorers, {len(pictures)} pictures"
        )


@pytest.mark.parametrize("edition", EDITIONS)
def test_nothing_comes_from_another_host_and_everything_named_is_there(sites, edition):
    site = sites[edition].folder
    external, missing = [], []
    for path in _pages(site):
        _, page = _page(site, path.relative_to(site).as_posix())
        named = page.urls + [("style", url) for style in page.styles for url in _css_urls(style)]
        for what, url in named:
            if url.startswith("data:"):
                continue
            if EXTERNAL.match(url):
                if what.startswith("link rel=") and not any(
                    kind in what for kind in ("stylesheet", "preload", "icon", "modulepreload")
                ):
                    continue  # a hyperlink, not something the page loads
                external.append(f"{path.name}: {what} {url}")
            elif what != "link rel=['canonical']":
                target = (path.parent / unquote(urlsplit(url).path)).resolve()
                if not target.exists():
                    missing.append(f"{path.name}: {what} {url}")
        for script in page.scripts.get("text/javascript", []):  # inline: no URL to load from
            external += [
                f"{path.name}: inline script {u}"
                for u in re.findall(r"https?://[^\s\"'`]+", script)
            ]
    for css in site.rglob("*.css"):
        for url in _css_urls(css.read_text(encoding="utf-8", errors="replace")):
            if EXTERNAL.match(url) and not url.startswith("data:"):
                external.append(f"{css.relative_to(site)}: {url}")
    assert not external, "\n".join(external)
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("edition", EDITIONS)
def test_math_goes_to_the_sites_own_mathjax(sites, edition):
    site = sites[edition].folder
    for name in sites[edition].lectures:
        text, page = _page(site, f"{Path(name).stem}.html")
        mathjax = [url for what, url in page.urls if "mathjax" in url]
        assert mathjax and all(url.startswith("_static/mathjax/") for url in mathjax)
        assert (site / "_static/mathjax/tex-chtml.js").is_file()
        assert 'class="math notranslate nohighlight"' in text, f"{name}: no math on the page"


def test_the_student_edition_shows_no_solution_code(sites):
    for edition, should_show in (("student", False), ("instructor", True)):
        built = sites[edition]
        for name in built.lectures:
            text = (built.folder / f"{Path(name).stem}.html").read_text(encoding="utf-8")
            assert ("### BEGIN SOLUTION" in text) == should_show, f"{edition}: {name}"
            if edition == "student":
                for ex in exercises.for_lecture(name):
                    assert f"{ex.name}: your code here" in text, f"{name}: no stub for {ex.id}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_the_search_index_knows_every_lecture(sites, edition):
    built = sites[edition]
    index = (built.folder / "searchindex.js").read_text(encoding="utf-8")
    for name in built.lectures:
        assert f'"{Path(name).stem}"' in index, f"{name} is not in the search index"


def _block_network(context, allowed: str) -> list[str]:
    """Refuse every request whose URL does not start with ``allowed``; return the list that
    collects them."""
    refused = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(allowed) or url.startswith("data:"):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    context.route("**/*", route)
    return refused


@pytest.fixture(scope="module")
def browser():
    from chromium import chromium  # tests/chromium.py, the browser test's launcher

    with chromium() as context:
        yield context


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_lecture_page_shows_its_explorers_and_math_offline(sites, browser, edition):
    built = sites[edition]
    refused = _block_network(browser, "file://")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The instructor edition's pages are drawn by the same scripts: its first page is enough.
    for name in built.lectures if edition == "student" else built.lectures[:1]:
        nb = _executed(built, name)
        count = sum(
            REOPEN_NOTE in out.get("data", {}).get("text/plain", "") for out in _outputs(nb)
        )
        page = browser.new_page()
        failed = []
        page.on("requestfailed", lambda request, failed=failed: failed.append(request.url))
        page.goto((built.folder / f"{Path(name).stem}.html").as_uri())
        page.wait_for_function(
            """(count) => {
              const images = document.querySelectorAll('.course-explorer-figure img');
              return images.length === count && Array.from(images).every(
                (img) => img.complete && img.naturalWidth > 0);
            }""",
            arg=count,
            timeout=60_000,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('mjx-container').length > 0"
            " && !document.querySelector('.MathJax_Preview, mjx-merror')",
            timeout=60_000,
        )
        text = page.locator("body").inner_text()
        for bad in NOT_RENDERED:
            assert bad not in text, f"{edition}/{name}: the page shows {bad!r}"
        explorer = page.locator(".course-explorer").first
        explorer.scroll_into_view_if_needed()
        explorer.screenshot(path=SHOTS / f"{edition}-{Path(name).stem}-explorer.png")
        if name == built.lectures[0]:  # the explorer on its page, as a reader sees it
            page.screenshot(path=SHOTS / f"{edition}-{Path(name).stem}-page.png")
        page.close()
        assert not failed, f"{edition}/{name}: could not load {failed}"
    browser.unroute("**/*")
    assert not refused, f"{edition}: the pages asked for {refused}"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request on stderr
        pass


def test_search_finds_a_lecture_by_its_title(sites, browser):
    site = sites["student"].folder
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        refused = _block_network(browser, url)
        name = sites["student"].lectures[0]
        title = build_site.lecture_title(nbformat.read(ROOT / "notebooks" / name, 4), name)
        words = " ".join(re.findall(r"[A-Za-z]{4,}", title)[-2:])  # e.g. "softmax gradients"
        page = browser.new_page()
        page.goto(f"{url}search.html?q={words}")
        results = page.locator("#search-results")
        results.get_by_text("Search finished").wait_for(timeout=30_000)
        links = results.locator("a").evaluate_all("(links) => links.map((a) => a.href)")
        assert any(f"{Path(name).stem}.html" in link for link in links), (words, links)
        page.screenshot(path=SHOTS / "search.png")
        page.close()
        browser.unroute("**/*")
        assert not refused, refused
    finally:
        server.shutdown()
        server.server_close()


def _tiny_notebook(title: str, code: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(release.KERNELSPEC)
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), nbformat.v4.new_code_cell(code)]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nb


def test_a_rebuild_executes_only_the_notebook_whose_code_changed(tmp_path):
    """A course of two tiny notebooks, built three times."""
    root = tmp_path / "course"
    for folder in ("notebooks", "course_utils", "site"):
        (root / folder).mkdir(parents=True)
    shutil.copy(ROOT / "README.md", root / "README.md")
    (root / "requirements.lock").write_text("tiny==1\n")
    (root / "course_utils" / "tiny.py").write_text("VALUE = 1\n")
    for name in ("_config.yml", *build_site.OWN_ASSETS):
        shutil.copy(ROOT / "site" / name, root / "site" / name)
    (root / "site" / "node_modules").symlink_to(ROOT / "site" / "node_modules")
    first_nb, second_nb = (
        root / "notebooks" / "01_first.ipynb",
        root / "notebooks" / "02_second.ipynb",
    )
    nbformat.write(_tiny_notebook("Lecture 01 · First", "print('first', 6 * 7)"), first_nb)
    nbformat.write(_tiny_notebook("Lecture 02 · Second", "print('second', 2**10)"), second_nb)
    # An executed copy of the first (as make test-browser leaves them), with an output no
    # execution here would print: the page shows it only if the copy is used.
    seed = tmp_path / "executed"
    seed.mkdir()
    copy = nbformat.read(first_nb, as_version=4)
    copy.cells[1].execution_count = 1
    copy.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="seeded 42\n")]
    nbformat.write(copy, seed / first_nb.name)

    def build(**kwargs):
        built = build_site.build(
            "student", root=root, out=root / "out", work=root / "work", **kwargs
        )
        pages = [(built.folder / f"{stem}.html").read_text() for stem in ("01_first", "02_second")]
        return built, pages

    built, (first, second) = build(seed=seed)
    assert built.seeded == ["01_first.ipynb"] and built.executed == ["02_second.ipynb"]
    assert "seeded 42" in first and "second 1024" in second

    # New prose in the first, new code in the second: only the second is executed again.
    nbformat.write(_tiny_notebook("Lecture 01 · First, revised", "print('first', 6 * 7)"), first_nb)
    nbformat.write(_tiny_notebook("Lecture 02 · Second", "print('second', 10**3)"), second_nb)
    built, (first, second) = build()
    assert built.executed == ["02_second.ipynb"]
    assert "First, revised" in first and "seeded 42" in first and "second 1000" in second

    # Outputs depend on course_utils too: changing it executes everything, in a new cache,
    # and the copy, executed before the change, is not taken.
    (root / "course_utils" / "tiny.py").write_text("VALUE = 2\n")
    built, (first, second) = build(seed=seed)
    assert built.seeded == [] and built.executed == ["01_first.ipynb", "02_second.ipynb"]
    assert "first 42" in first and "seeded" not in first
    assert [path.name for path in (root / "work" / "cache").iterdir()] == [built.cache.name]
