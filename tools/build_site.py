"""The course as a static website, built offline with Jupyter Book 1 (Sphinx and myst-nb).

``make site`` builds the student edition into build/site/student/: the notebooks of
notebooks/, executed, so every plot appears (an unsolved exercise falls back to the
reference) and no solution code is shown. ``make site SOLUTIONS=1`` builds the instructor
edition into build/site/instructor/ from solutions/, whose stored outputs are used as they
are. Open ``index.html`` from the file system or any static web server: the pages load
nothing from elsewhere.

A build:

1. stages a book in build/site-work/<edition>/book/: every lecture of the edition's folder
   (``NN_*.ipynb``, found as release finds them), ``_toc.yml`` listing them in order,
   ``index.md`` (the course map: the README's introduction and its course-map table, each
   lecture linked to its page, lectures without a row added with their title), the
   settings (site/_config.yml with the edition filled in) and ``_assets/`` (the site's
   ``_static/``): the site's own script and styles (site/course-*), RequireJS, the
   widget HTML manager (which draws each explorer's saved state, its last picture) and
   MathJax 3, copied from site/node_modules (``npm ci`` of site/package-lock.json);
2. builds it with Jupyter Book (in build/site-work/<edition>/html/, which Sphinx updates
   incrementally) and copies the site to build/site/<edition>/.

Execution (student edition) goes through jupyter-cache in build/site-work/cache/<key>/:
a notebook is executed again only when its code cells change (a prose edit re-renders it
from the cache). ``<key>`` hashes course_utils' sources and requirements.lock, so changing
either executes every notebook again. ``--seed DIR`` first adds executed copies of the
student notebooks (``make test-browser`` leaves the ones it ran in JupyterLab in
build/browser/executed/) to the cache, each only if its code is that of notebooks/.

``make site`` runs ``python tools/build_site.py [--solutions]`` after installing what it
needs: the ``site`` extra of pyproject.toml and ``npm ci`` in site/.
"""

import argparse
import hashlib
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
EDITIONS = {"student": "notebooks", "instructor": "solutions"}
LECTURE_GLOB = "[0-9][0-9]_*.ipynb"  # as course_utils.release finds them

# What the pages load, from site/node_modules into _assets/ (source, target).
ASSETS = [
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist/embed-amd.js", "html-manager/embed-amd.js"),
    # The fonts of the manager's icons, next to the script that loads them.
    *(
        (f"@jupyter-widgets/html-manager/dist/*.{ext}", "html-manager/")
        for ext in ("woff2", "woff", "ttf", "eot", "svg")
    ),
    # MathJax: the TeX-to-HTML bundle and what it loads on demand (extensions such as
    # \boldsymbol, its fonts, the menu), without the 4 MB speech engine.
    ("mathjax/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    *(
        (f"mathjax/es5/{folder}", f"mathjax/{folder}")
        for folder in ("input/tex", "output/chtml", "a11y", "ui", "adaptors")
    ),
]


def lecture_files(folder: Path) -> list[Path]:
    """The lectures of a folder (``NN_*.ipynb``), in order."""
    return sorted(Path(folder).glob(LECTURE_GLOB))


def lecture_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The notebook's title: the first level-1 heading of its first markdown cell."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
            break
    return fallback


def course_map_rows(readme: str) -> list[dict]:
    """The rows of the README's course-map table (under ``## Course map``).

    Each row: ``number`` (the two digits its notebook name starts with), ``notebook``
    (the name as written), ``cells`` (the other columns) and ``header`` (the other
    columns' names).
    """
    section = re.search(r"^## Course map\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    if not section:
        raise ValueError("README.md has no '## Course map' section")
    lines = [line.strip() for line in section.group(1).splitlines()]
    table = [line for line in lines if line.startswith("|")]
    if len(table) < 2:
        raise ValueError("README.md's course map has no table")

    def cells(line):
        return [cell.strip() for cell in line.strip("|").split("|")]

    header = cells(table[0])
    rows = []
    for line in table[2:]:  # after the header and the |---| line
        name, *others = cells(line)
        number = re.match(r"`?([0-9]{2})_", name)
        if not number:
            raise ValueError(f"README.md's course map: {name!r} does not start with NN_")
        rows.append(
            {
                "number": number.group(1),
                "notebook": name.strip("`"),
                "cells": others,
                "header": header[1:],
            }
        )
    return rows


def readme_intro(readme: str) -> str:
    """The README's text between its title and its first section."""
    body = readme.split("\n", 1)[1] if readme.startswith("# ") else readme
    return body.split("\n## ", 1)[0].strip()


EDITION_NOTES = {
    "student": (
        "This is the **student edition**: each lecture as it is handed out, executed with no "
        "exercise solved, so every experiment runs with the reference implementation (a "
        "one-line note says so) and every plot appears. The explorers show their last "
        "picture; their controls work when you run the notebook in JupyterLab "
        "(`make lab`, see the README)."
    ),
    "instructor": (
        "This is the **instructor edition**: the solutions, with their stored outputs. "
        "Do not publish it where students can read it."
    ),
}


def index_page(readme: str, lectures: list[Path], edition: str) -> str:
    """The course map page (MyST markdown): the README's course map, lectures linked."""
    rows = course_map_rows(readme)
    header = rows[0]["header"] if rows else ["topics", "run time"]
    found = {path.name[:2]: path for path in lectures}
    lines = [
        "# Training Neural Networks",
        "",
        readme_intro(readme),
        "",
        EDITION_NOTES[edition],
        "",
        "## Course map",
        "",
        "| lecture | " + " | ".join(header) + " |",
        "|---" * (len(header) + 1) + "|",
    ]

    def link(path):
        title = lecture_title(nbformat.read(path, as_version=4), path.stem)
        return f"[{title}]({path.name})"

    for row in rows:
        path = found.pop(row["number"], None)
        if path:
            name = link(path)
        else:  # not written yet: say so, unless the row does ("coming" as its run time)
            coming = any(cell.lower() == "coming" for cell in row["cells"])
            name = f"`{row['notebook']}`" + ("" if coming else " (coming)")
        lines.append("| " + " | ".join([name, *row["cells"]]) + " |")
    for path in found.values():  # a lecture the README's table does not list yet
        lines.append("| " + " | ".join([link(path)] + [""] * len(header)) + " |")
    return "\n".join(lines) + "\n"


def toc(lectures: list[Path]) -> str:
    """The book's table of contents: the course map, then the lectures in order."""
    chapters = "".join(f"  - file: {path.stem}\n" for path in lectures)
    return f"format: jb-book\nroot: index\nchapters:\n{chapters}"


def _key_files(root: Path) -> list[Path]:
    """What executed outputs depend on besides the notebook: course_utils, the lock."""
    return [*sorted((root / "course_utils").rglob("*.py")), root / "requirements.lock"]


def cache_key(root: Path = ROOT) -> str:
    """A hash of ``_key_files``: the execution cache in use is the one of this key."""
    digest = hashlib.sha256()
    for path in _key_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already (Sphinx rebuilds what changed)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# The site's own files in site/, copied into _assets/ as they are.
OWN_ASSETS = ["course-widgets.js", "course-site.css"]


def copy_assets(site: Path, static: Path) -> None:
    """Copy the site's own files and the pages' JavaScript (``ASSETS``, from site/node_modules)
    into ``static``."""
    static.mkdir(parents=True, exist_ok=True)
    for name in OWN_ASSETS:
        shutil.copy2(site / name, static / name)
    node_modules = site / "node_modules"
    missing = [src for src, _ in ASSETS if not list(node_modules.glob(src))]
    if missing:
        raise RuntimeError(
            f"site: {node_modules} lacks {missing}: run `make site` (it runs `npm ci` in site/)"
        )
    for pattern, target in ASSETS:
        for src in node_modules.glob(pattern):
            dest = static / target / src.name if target.endswith("/") else static / target
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dest)


def stage(edition: str, book: Path, root: Path = ROOT) -> tuple[list[Path], list[str]]:
    """Write the book's sources for ``edition`` into ``book``.

    Returns the lectures staged and the names of those removed since the last build.
    """
    lectures = lecture_files(root / EDITIONS[edition])
    if not lectures:
        raise RuntimeError(f"site: no lectures ({LECTURE_GLOB}) in {root / EDITIONS[edition]}")
    book.mkdir(parents=True, exist_ok=True)
    removed = [
        old.name for old in book.glob("*.ipynb") if old.name not in {p.name for p in lectures}
    ]
    for name in removed:  # a lecture removed or renamed since the last build
        (book / name).unlink()
    for path in lectures:
        shutil.copy2(path, book / path.name)  # the same time stamp: Sphinx skips it if unchanged
    readme = (root / "README.md").read_text(encoding="utf-8")
    _write_if_changed(book / "index.md", index_page(readme, lectures, edition))
    _write_if_changed(book / "_toc.yml", toc(lectures))
    copy_assets(root / "site", book / "_assets")
    return lectures, removed


def config(edition: str, cache: Path, root: Path = ROOT) -> str:
    """site/_config.yml with the edition filled in: its title and whether it executes
    (through ``cache``)."""
    import yaml

    settings = yaml.safe_load((root / "site" / "_config.yml").read_text(encoding="utf-8"))
    if edition == "instructor":
        settings["title"] += " (instructor edition)"
        settings["execute"]["execute_notebooks"] = "off"
    settings["execute"]["cache"] = str(cache)
    return yaml.safe_dump(settings, sort_keys=False)


def seed_cache(cache: Path, lectures: list[Path], executed: Path, root: Path = ROOT) -> list[str]:
    """Add to the cache the executed copies in ``executed`` of ``lectures``.

    A copy counts only if it is newer than every file of ``_key_files`` (it ran with
    today's course_utils), its code cells are those of the lecture, in order, and all ran
    once in a fresh kernel (execution counts 1, 2, ...) without an error. What the cache
    stores is the lecture with the copy's outputs and widget state (the copy's other
    metadata, such as what JupyterLab adds on saving, is left out). Returns the names
    added.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    store = get_cache(str(cache))
    newest_input = max(path.stat().st_mtime for path in _key_files(root))
    added = []
    for path in lectures:
        if not (executed / path.name).exists():
            continue
        if (executed / path.name).stat().st_mtime <= newest_input:
            continue  # executed before course_utils or the lock last changed
        nb = nbformat.read(path, as_version=4)
        copy = nbformat.read(executed / path.name, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        ran = [cell for cell in copy.cells if cell.cell_type == "code"]
        if [cell.source for cell in code] != [cell.source for cell in ran]:
            continue  # a copy of another version of the lecture
        if [cell.execution_count for cell in ran] != list(range(1, len(ran) + 1)):
            continue
        if any(out.output_type == "error" for cell in ran for out in cell.outputs):
            continue
        for cell, result in zip(code, ran, strict=True):
            cell.outputs, cell.execution_count = result.outputs, result.execution_count
        if "widgets" in copy.metadata:
            nb.metadata["widgets"] = copy.metadata["widgets"]
        store.cache_notebook_bundle(CacheBundleIn(nb, str(path)), overwrite=True)
        added.append(path.name)
    return added


def _cache_records(cache: Path) -> dict[int, str]:
    """The cache's records: primary key -> the notebook it was made from."""
    if not cache.exists():
        return {}
    from jupyter_cache import get_cache

    return {record.pk: record.uri for record in get_cache(str(cache)).list_cache_records()}


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the kernels), user and system."""
    return sum(
        getattr(resource.getrusage(who), field)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for field in ("ru_utime", "ru_stime")
    )


@dataclass
class Built:
    """What a build made: the site's folder, the lectures, which of them were executed
    (the others came from the cache, or are shown with their stored outputs) and what it cost."""

    edition: str
    folder: Path
    cache: Path
    lectures: list[str]
    executed: list[str]
    seeded: list[str]
    seconds: float
    cpu_seconds: float


def build(
    edition: str = "student",
    *,
    root: Path = ROOT,
    out: Path | None = None,
    work: Path | None = None,
    caches: Path | None = None,
    seed: Path | None = None,
) -> Built:
    """Build ``edition``'s site into ``out`` (open its index.html).

    work: where the book is staged and Sphinx keeps its state (build/site-work/).
    caches: the folder of the execution cache (build/site-work/cache/).
    seed: executed copies of the student notebooks to add to the cache first.
    """
    from jupyter_book.sphinx import build_sphinx

    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {sorted(EDITIONS)}, got {edition!r}")
    out = Path(out or root / "build" / "site" / edition)
    work = Path(work or root / "build" / "site-work")
    book = work / edition / "book"
    caches = Path(caches or work / "cache")
    cache = caches / cache_key(root)
    if caches.exists():  # executed with another course_utils or lock
        for old in caches.iterdir():
            if old != cache:
                shutil.rmtree(old)
    html = work / edition / "html"  # Sphinx's output; myst-nb writes next to it
    lectures, removed = stage(edition, book, root)
    if removed:  # Sphinx would leave their pages behind
        shutil.rmtree(html, ignore_errors=True)
    _write_if_changed(book / "_config.yml", config(edition, cache, root))
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    seeded = seed_cache(cache, lectures, Path(seed), root) if seed and edition == "student" else []
    before = _cache_records(cache)
    status = build_sphinx(
        book,
        html,
        doctreedir=work / edition / "doctrees",
        noconfig=True,
        path_config=str(book / "_config.yml"),
        # What `jupyter-book build` passes as well.
        confoverrides={
            "external_toc_path": (book / "_toc.yml").as_posix(),
            "latex_individualpages": False,
        },
        warningiserror=True,
        keep_going=True,
        quiet=True,
    )
    if status != 0:
        raise RuntimeError(f"site: the {edition} edition did not build (see the messages above)")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(html, out, ignore=shutil.ignore_patterns(".buildinfo"))
    executed = sorted(
        Path(uri).name for pk, uri in _cache_records(cache).items() if pk not in before
    )
    built = Built(
        edition=edition,
        folder=out,
        cache=cache,
        lectures=[path.name for path in lectures],
        executed=executed,
        seeded=seeded,
        seconds=time.perf_counter() - start,
        cpu_seconds=_cpu_seconds() - cpu_start,
    )
    taken = f", {len(seeded)} taken from {seed}" if seed and edition == "student" else ""
    print(
        f"site: {edition} edition, {len(lectures)} lectures ({len(executed)} executed{taken}) "
        f"in {built.seconds:.0f} s, {built.cpu_seconds:.0f} s of CPU: {out / 'index.html'}",
        flush=True,
    )
    return built


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/build_site.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--solutions", action="store_true", help="the instructor edition, from solutions/"
    )
    parser.add_argument("--out", type=Path, help="the site's folder (build/site/<edition>/)")
    parser.add_argument(
        "--seed",
        type=Path,
        help="executed copies of the student notebooks to add to the cache (the student edition)",
    )
    args = parser.parse_args(argv)
    try:
        build("instructor" if args.solutions else "student", out=args.out, seed=args.seed)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
