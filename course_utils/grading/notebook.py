"""Notebooks: the released assignment, a submission's cells, its answer cells and the
integrity report (what differs from the released notebook).

Both notebooks are read as plain JSON (importing nbformat alone would cost seconds per
``course grade``). A submission is at most 20 MB and 2,000 cells; its answer cells are
found by their ``exercise:<id>`` tag, or by the function they define when the tag was
lost. Every other cell is compared with the released notebook: added, deleted,
duplicated and edited cells are reported, and never run.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from course_utils import exercises
from course_utils.exercises import Exercise
from course_utils.grading.files import Submission, SubmissionError, read_submission

ASSIGNMENT_ID = re.compile(r"[0-9]{2}_[A-Za-z0-9_]+")
MAX_CELLS = 2000  # a released notebook has about a hundred


@dataclass(frozen=True)
class Cell:
    """A notebook cell as the grader sees it."""

    kind: str  # "code", "markdown" or "raw"
    source: str
    exercise: str | None  # the id of its exercise:<id> tag

    def key(self) -> tuple[str, str]:
        """What may not change in a locked cell: its kind and source (up to trailing spaces)."""
        return self.kind, "\n".join(line.rstrip() for line in self.source.strip().splitlines())

    def preview(self) -> str:
        """The first non-empty line, shortened."""
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return first if len(first) <= 60 else first[:57] + "..."


@dataclass(frozen=True)
class Assignment:
    """A released notebook and the exercises of its answer cells, in notebook order."""

    id: str
    exercises: tuple[Exercise, ...]
    cells: tuple[Cell, ...]


def load_assignment(assignment_id: str, notebooks_dir: Path) -> Assignment:
    """The assignment ``<ID>``: the released notebook ``notebooks_dir/<ID>.ipynb``."""
    if not ASSIGNMENT_ID.fullmatch(assignment_id):
        raise ValueError(
            f"assignment must look like 01_losses_and_softmax_gradients: {assignment_id!r}"
        )
    path = Path(notebooks_dir) / f"{assignment_id}.ipynb"
    if not path.is_file():
        raise ValueError(f"unknown assignment {assignment_id!r}: there is no {path}")
    cells = tuple(read_cells(path))
    ids = dict.fromkeys(cell.exercise for cell in cells if cell.exercise)
    return Assignment(assignment_id, tuple(exercises.get(i) for i in ids), cells)


def read_cells(source: Path | Submission) -> list[Cell]:
    """The cells of a notebook; SubmissionError if it is not a readable notebook."""
    notebook = _read_json(source)
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise SubmissionError("not a Jupyter notebook (no list of cells)")
    if len(cells) > MAX_CELLS:
        raise SubmissionError(f"a notebook of {len(cells)} cells (at most {MAX_CELLS} are graded)")
    return [_cell(cell, number) for number, cell in enumerate(cells, 1)]


def assignment_of(source: Path | Submission) -> str | None:
    """The assignment id a submission names in its metadata (course.assignment), if any."""
    try:
        notebook = _read_json(source)
        name = notebook["metadata"]["course"]["assignment"]
    except (SubmissionError, OSError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) and ASSIGNMENT_ID.fullmatch(name) else None


def _read_json(source: Path | Submission):
    submission = source if isinstance(source, Submission) else Submission.of_file(source)
    data = read_submission(submission)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise SubmissionError(f"not a Jupyter notebook (not valid JSON: {err})") from None


def _cell(raw, number: int) -> Cell:
    if not isinstance(raw, dict):
        raise SubmissionError(f"malformed notebook: cell {number} is not an object")
    source = raw.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)
    metadata = raw.get("metadata", {})
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else None
    if (
        raw.get("cell_type") not in ("code", "markdown", "raw")
        or not isinstance(source, str)
        or not isinstance(tags, list)
        or not all(isinstance(tag, str) for tag in tags)
    ):
        raise SubmissionError(f"malformed notebook: cell {number} is not a valid cell")
    return Cell(raw["cell_type"], source, exercises.tagged_exercise(tags))


# --- answer cells and the integrity report --------------------------------------------


def find_answers(
    assignment: Assignment, cells: list[Cell]
) -> tuple[dict[str, list[int]], list[str]]:
    """Indices of each exercise's answer cells: by tag, else by the function they define.

    Returns them with notes on answer cells found by name only.
    """
    answers = {ex.id: [] for ex in assignment.exercises}
    for index, cell in enumerate(cells):
        if cell.kind == "code" and cell.exercise in answers:
            answers[cell.exercise].append(index)
    locked = {cell.key() for cell in assignment.cells if cell.exercise is None}
    notes = []
    missing = {ex.name: ex for ex in assignment.exercises if not answers[ex.id]}
    if missing:  # one pass over the cells, whatever their number
        for index, cell in enumerate(cells):
            if cell.kind == "code" and cell.exercise is None and cell.key() not in locked:
                for name in _defined_names(cell.source):
                    if name in missing:
                        answers[missing[name].id].append(index)
        for ex in missing.values():
            if answers[ex.id]:
                notes.append(
                    f"the answer cell of {ex.id} lost its tag exercise:{ex.id}; found "
                    f"{cell_numbers(answers[ex.id])} by the name {ex.name}"
                )
    return answers, notes


def _defined_names(source: str) -> set[str]:
    return set(re.findall(r"^(?:def|class)\s+(\w+)", source, flags=re.MULTILINE))


def cell_numbers(indices: list[int]) -> str:
    """ "cell 3" or "cells 3, 5, 8" (the first ten)."""
    shown = ", ".join(str(i + 1) for i in indices[:10])
    more = f" and {len(indices) - 10} more" if len(indices) > 10 else ""
    return ("cell " if len(indices) == 1 else "cells ") + shown + more


def integrity_notes(
    assignment: Assignment, cells: list[Cell], answers: dict[str, list[int]]
) -> list[str]:
    """What differs from the released notebook: missing or duplicated answer cells, and
    added, deleted, duplicated or edited locked cells (empty cells are ignored)."""
    notes = []
    for ex in assignment.exercises:
        found = answers[ex.id]
        if not found:
            notes.append(f"deleted: the answer cell of {ex.id} ({ex.name})")
        elif len(found) > 1:
            notes.append(
                f"duplicated: {ex.id} has {len(found)} answer cells ({cell_numbers(found)}); "
                f"they run in order, so the last definition of {ex.name} counts"
            )
    answer_indices = {index for found in answers.values() for index in found}
    released = [c for c in assignment.cells if c.exercise is None and c.source.strip()]
    submitted = [
        (index, cell)
        for index, cell in enumerate(cells)
        if index not in answer_indices and cell.source.strip()
    ]
    released_keys = [cell.key() for cell in released]
    released_set = set(released_keys)
    # The submission is the first sequence: SequenceMatcher indexes the second one (the
    # released notebook, about a hundred cells), so the work is linear in the submission.
    matcher = difflib.SequenceMatcher(
        None, [cell.key() for _, cell in submitted], released_keys, autojunk=False
    )
    for op, b0, b1, a0, a1 in matcher.get_opcodes():
        if op == "equal":
            continue
        n_edited = min(a1 - a0, b1 - b0)
        for k in range(n_edited):
            index, _ = submitted[b0 + k]
            notes.append(f"edited: cell {index + 1} (released: {released[a0 + k].preview()!r})")
        for cell in released[a0 + n_edited : a1]:
            notes.append(f"deleted: the {cell.kind} cell {cell.preview()!r}")
        for index, cell in submitted[b0 + n_edited : b1]:
            what = "duplicated" if cell.key() in released_set else "added"
            notes.append(f"{what}: cell {index + 1} ({cell.preview()!r})")
    return notes
