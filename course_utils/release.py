"""Build the student notebooks (notebooks/) from the solutions (solutions/).

solutions/ is the only place notebooks are edited. Release turns each solution into
the student version:

- the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``raise NotImplementedError("<name>: your code here")`` at the same indentation;
- cells tagged ``solution-only`` are dropped;
- outputs and execution counts are cleared, cell metadata keeps only the tags, and the
  notebook metadata is reduced to the kernel, the language and ``course.assignment``
  (the notebook's stem, which the grader reads);

and writes it byte-identically from run to run, so ``release --check`` can tell when
notebooks/ is stale.
"""

import re
from pathlib import Path

import nbformat

from course_utils import exercises

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SOLUTION_ONLY = "solution-only"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

_REGION = re.compile(
    rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*(\n|$)",
    re.MULTILINE | re.DOTALL,
)


def exercise_id(cell) -> str | None:
    """The exercise id of an answer cell (its ``exercise:<id>`` tag), else None."""
    return exercises.tagged_exercise(cell.get("metadata", {}).get("tags", []))


def stub(name: str, indent: str = "") -> str:
    """The line that replaces a solution region."""
    return f'{indent}raise NotImplementedError("{name}: your code here")\n'


def strip_solutions(source: str, name: str) -> str:
    """Replace every solution region of a cell's source with the stub."""
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced {BEGIN!r}/{END!r} markers in cell:\n{source}")
    return _REGION.sub(lambda m: stub(name, m.group("indent")), source).rstrip("\n")


def student_version(solution: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """The student notebook made from a solution notebook."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "course": {"assignment": assignment},
    }
    for cell in solution.cells:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if SOLUTION_ONLY in tags:
            continue
        if cell.cell_type == "code":
            ex_id = exercise_id(cell)
            name = exercises.get(ex_id).name if ex_id else "this exercise"
            new = nbformat.v4.new_code_cell(strip_solutions(cell.source, name))
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        new.id = cell.get("id") or f"cell-{len(nb.cells)}"
        new.metadata = {"tags": tags} if tags else {}
        nb.cells.append(new)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """Serialise deterministically (sorted keys, one-space indent, final newline)."""
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def release(solutions: Path, notebooks: Path, *, check: bool = False) -> list[str]:
    """Write notebooks/ from solutions/; with ``check``, only report what is stale.

    Returns the problems found (``check``) or the files written.
    """
    wanted = {}
    for path in sorted(solutions.glob("[0-9][0-9]_*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        wanted[path.name] = render(student_version(solution, path.stem))
    if check:
        problems = []
        for name, text in wanted.items():
            target = notebooks / name
            if not target.exists():
                problems.append(f"{target} is missing")
            elif target.read_text(encoding="utf-8") != text:
                problems.append(f"{target} is stale")
        for target in sorted(notebooks.glob("*.ipynb")):
            if target.name not in wanted:
                problems.append(f"{target} has no solution in {solutions}")
        return problems
    notebooks.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        (notebooks / name).write_text(text, encoding="utf-8")
    return [str(notebooks / name) for name in wanted]


def execute_in_place(path: Path, timeout: int = 300) -> None:
    """Run a notebook top to bottom in a fresh kernel and store its outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,  # timestamps would change solutions/ on every release
    )
    client.execute()
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
