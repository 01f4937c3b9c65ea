"""The website's course map comes from the README's table and the lectures found on disk.

(Building the site is tested by tests/test_site.py, under ``make test-site``.)
"""

import importlib.util
import shutil

import nbformat
import pytest

from conftest import NOTEBOOKS, ROOT

_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)

README = """# A course

An introduction, in two paragraphs.

The second.

## Course map

| notebook | topics | run time |
|---|---|---|
| `01_first` | the first topic | ~5 s |
| `02_second` | the second topic | coming |
| `04_fourth` | the fourth topic | ~9 s |

Run times are measured.

## Another section
"""


def _lecture(folder, name, title):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nText."), nbformat.v4.new_code_cell()]
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_the_real_readme_has_a_row_for_every_lecture():
    rows = build_site.course_map_rows((ROOT / "README.md").read_text(encoding="utf-8"))
    numbers = [row["number"] for row in rows]
    assert numbers == sorted(set(numbers)), "one row per lecture, in order"
    for path in build_site.lecture_files(NOTEBOOKS):
        assert path.name[:2] in numbers, f"README's course map has no row for {path.name}"


def test_rows_keep_their_columns_and_the_intro_stops_at_the_first_section():
    rows = build_site.course_map_rows(README)
    assert [(r["number"], r["notebook"], r["cells"]) for r in rows] == [
        ("01", "01_first", ["the first topic", "~5 s"]),
        ("02", "02_second", ["the second topic", "coming"]),
        ("04", "04_fourth", ["the fourth topic", "~9 s"]),
    ]
    assert rows[0]["header"] == ["topics", "run time"]
    assert build_site.readme_intro(README) == "An introduction, in two paragraphs.\n\nThe second."


def test_the_map_links_lectures_found_and_says_which_are_coming(tmp_path):
    first = _lecture(tmp_path, "01_first_renamed.ipynb", "Lecture 01 · First")
    extra = _lecture(tmp_path, "03_extra.ipynb", "Lecture 03 · Not in the README yet")
    page = build_site.index_page(README, [first, extra], "student")
    table = page[page.index("| lecture |") :].splitlines()
    assert table[:2] == ["| lecture | topics | run time |", "|---|---|---|"]
    assert table[2:] == [
        "| [Lecture 01 · First](01_first_renamed.ipynb) | the first topic | ~5 s |",
        "| `02_second` | the second topic | coming |",
        "| `04_fourth` (coming) | the fourth topic | ~9 s |",
        "| [Lecture 03 · Not in the README yet](03_extra.ipynb) |  |  |",
    ]
    assert "An introduction" in page and "student edition" in page
    assert "instructor edition" in build_site.index_page(README, [first], "instructor")


def test_a_readme_without_a_course_map_is_refused():
    with pytest.raises(ValueError, match="Course map"):
        build_site.course_map_rows("# A course\n\nNo map.\n")
    with pytest.raises(ValueError, match="NN_"):
        build_site.course_map_rows("## Course map\n\n| notebook |\n|---|\n| intro |\n")


def test_the_table_of_contents_lists_the_lectures_in_order(tmp_path):
    paths = [_lecture(tmp_path, name, name) for name in ("02_b.ipynb", "01_a.ipynb")]
    assert build_site.lecture_files(tmp_path) == sorted(paths)
    assert build_site.toc(build_site.lecture_files(tmp_path)) == (
        "format: jb-book\nroot: index\nchapters:\n  - file: 01_a\n  - file: 02_b\n"
    )


def test_the_cache_key_follows_course_utils_and_the_lock(tmp_path):
    (tmp_path / "course_utils").mkdir()
    (tmp_path / "course_utils" / "a.py").write_text("A = 1\n")
    (tmp_path / "requirements.lock").write_text("x==1\n")
    key = build_site.cache_key(tmp_path)
    (tmp_path / "course_utils" / "a.py").write_text("A = 2\n")
    assert build_site.cache_key(tmp_path) != key
    (tmp_path / "course_utils" / "a.py").write_text("A = 1\n")
    assert build_site.cache_key(tmp_path) == key
    (tmp_path / "requirements.lock").write_text("x==2\n")
    assert build_site.cache_key(tmp_path) != key


def _course(root, names):
    """A course folder as stage() reads it: notebooks, the README, site/ with fake npm files."""
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    for name in names:
        _lecture(root / "notebooks", name, f"Lecture {name[:2]} · {name[3:-6]}")
    (root / "README.md").write_text(README, encoding="utf-8")
    (root / "site").mkdir(exist_ok=True)
    for name in build_site.OWN_ASSETS:
        (root / "site" / name).write_text(f"/* {name} */\n")
    modules = root / "site" / "node_modules"
    for pattern, _ in build_site.ASSETS:
        src = modules / pattern.replace("*", "font")
        if "." in src.name:
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_text("x")
        else:  # a folder of MathJax's
            (src / "a").mkdir(parents=True, exist_ok=True)
            (src / "a" / "b.js").write_text("x")


def test_staging_follows_the_lectures_on_disk(tmp_path):
    root, book = tmp_path / "course", tmp_path / "book"
    _course(root, ["01_first.ipynb", "02_second.ipynb"])
    lectures, removed = build_site.stage("student", book, root)
    assert [path.name for path in lectures] == ["01_first.ipynb", "02_second.ipynb"]
    assert removed == []
    assert sorted(path.name for path in book.glob("*.ipynb")) == [p.name for p in lectures]
    assert "- file: 02_second" in (book / "_toc.yml").read_text()
    assert "[Lecture 02 · second](02_second.ipynb)" in (book / "index.md").read_text()
    assert (book / "_assets" / "html-manager" / "embed-amd.js").is_file()
    assert (book / "_assets" / "html-manager" / "font.woff2").is_file()
    assert (book / "_assets" / "mathjax" / "input" / "tex" / "a" / "b.js").is_file()

    # A lecture renamed and one added: the old copy leaves the book, the new ones enter it.
    (root / "notebooks" / "02_second.ipynb").rename(root / "notebooks" / "02_renamed.ipynb")
    _lecture(root / "notebooks", "03_third.ipynb", "Lecture 03 · third")
    lectures, removed = build_site.stage("student", book, root)
    assert removed == ["02_second.ipynb"]
    assert sorted(path.name for path in book.glob("*.ipynb")) == [
        "01_first.ipynb",
        "02_renamed.ipynb",
        "03_third.ipynb",
    ]
    assert "- file: 03_third" in (book / "_toc.yml").read_text()


def test_staging_without_npm_packages_or_lectures_says_what_to_run(tmp_path):
    root = tmp_path / "course"
    _course(root, ["01_first.ipynb"])
    shutil.rmtree(root / "site" / "node_modules" / "mathjax")
    with pytest.raises(RuntimeError, match=r"make site.*npm ci"):
        build_site.stage("student", tmp_path / "book", root)
    (root / "solutions").mkdir()
    with pytest.raises(RuntimeError, match="no lectures"):
        build_site.stage("instructor", tmp_path / "book", root)
