"""Build the course website from scratch and after typical edits; print the times (not a test).

    python benchmarks/bench_site.py      (make bench runs it; it needs make site's set-up)

In a temporary copy of the course (README.md, notebooks/, solutions/, course_utils/,
requirements.lock and site/, with site/node_modules linked) and an empty execution cache:

1. the student edition from scratch: every lecture executed;
2. again, nothing changed;
3. after a prose edit in one lecture (a markdown cell): re-rendered from the cache;
4. after a code edit in one lecture (a comment added to its last code cell): that lecture
   alone is executed again;
5. the instructor edition (solutions/ with their stored outputs, never executed).

Wall time depends on what else the machine runs; CPU time (this process and the kernels)
much less.
"""

import importlib.util
import shutil
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)


def copy_course(root: Path) -> None:
    for folder in ("notebooks", "solutions", "course_utils"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("README.md", "requirements.lock"):
        shutil.copy2(ROOT / name, root / name)
    (root / "site").mkdir()
    for name in ("_config.yml", *build_site.OWN_ASSETS):
        shutil.copy2(ROOT / "site" / name, root / "site" / name)
    (root / "site" / "node_modules").symlink_to(ROOT / "site" / "node_modules")


def edit(path: Path, cell_type: str, text: str) -> None:
    """Append ``text`` to the last cell of ``cell_type`` in a notebook."""
    nb = nbformat.read(path, as_version=4)
    cell = [cell for cell in nb.cells if cell.cell_type == cell_type][-1]
    cell.source += text
    nbformat.write(nb, path)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-site-") as folder:
        root = Path(folder)
        copy_course(root)
        lecture = build_site.lecture_files(root / "notebooks")[-1]
        steps = [
            ("student edition, from scratch", None),
            ("student edition, nothing changed", None),
            (f"after a prose edit in {lecture.stem}", ("markdown", "\n\nOne more sentence.")),
            (f"after a code edit in {lecture.stem}", ("code", "\n# one more comment")),
        ]
        rows = []
        for label, change in steps:
            if change:
                edit(lecture, *change)
            built = build_site.build("student", root=root)
            rows.append((label, len(built.lectures), len(built.executed), built))
        built = build_site.build("instructor", root=root)
        rows.append(("instructor edition, from scratch", len(built.lectures), 0, built))

    print(f"\n{'site build':<58} {'lectures':>8} {'executed':>8} {'wall (s)':>9} {'CPU (s)':>8}")
    for label, lectures, executed, built in rows:
        print(
            f"{label:<58} {lectures:>8} {executed:>8} {built.seconds:>9.1f} "
            f"{built.cpu_seconds:>8.1f}"
        )


if __name__ == "__main__":
    main()
