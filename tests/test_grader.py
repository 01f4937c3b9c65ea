"""The grader: honest submissions get their exact score; hostile ones cannot raise theirs,
take points from anyone else or stop the gradebook from being written.

Every submission is a real notebook built from the released lecture 01 (see
tests/submissions.py), graded end to end through the sandbox. The hostile ones are graded
together in ``course grade-all`` runs; each must get exactly the score its honest content
deserves, and each run must finish with a row for every entry. The classes of weakness
(issue 10) are named where their attacks are.
"""

import contextlib
import csv
import io
import json
import os
import secrets
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import submissions as subs

from course_utils import cli, exercises, grading, sandbox
from course_utils.exercises import Case
from course_utils.grading import files, pool, program

from conftest import NOTEBOOKS, ROOT, SOLUTIONS

exercises._load_all()
LIMITS = grading.Limits(exercise_seconds=3, submission_seconds=6, memory_mb=256)
LIMIT_OPTIONS = ["--exercise-timeout", "3", "--submission-timeout", "6", "--memory-mb", "256"]
SOLUTION = subs.solution_answers()


def problems(result: dict) -> dict[str, str]:
    """Exercise id -> status, for the tests of a results.json that did not pass."""
    return {
        test["extra_data"]["exercise"]: test["extra_data"]["status"]
        for test in result["tests"]
        if test["extra_data"]["status"] != "passed"
    }


def output_of(result: dict, exercise_id: str) -> str:
    return next(t["output"] for t in result["tests"] if t["name"].startswith(exercise_id + ":"))


def grade_all(folder: Path, out: Path, *options: str) -> SimpleNamespace:
    """Run `course grade-all` in this process: gradebook rows, results, printed lines."""
    results_dir = out.parent / f"{out.stem}-results"
    argv = ["grade-all", str(folder), "--out", str(out), "--results-dir", str(results_dir)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main([*argv, *options]) == 0
    with out.open(newline="") as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    results = {
        path.name.removesuffix(".json"): json.loads(path.read_text())
        for path in results_dir.iterdir()
    }
    return SimpleNamespace(rows=rows, results=results, printed=printed.getvalue())


@contextlib.contextmanager
def past_the_check():
    """Grade as if the answer-cell check had a hole: it reports nothing."""
    original = program._Policy.problem
    program._Policy.problem = lambda self, node, text: None
    try:
        yield
    finally:
        program._Policy.problem = original


def huber_with(extra: str) -> str:
    return SOLUTION["01.huber_loss"] + extra


# student -> (answers replaced in the full solution, score, statuses other than passed)
ATTACKS = {
    # Imports, dunder names, patches of torch, getattr: refused on the syntax tree.
    "monkeypatch": (dict(softmax=subs.MONKEYPATCH), subs.TOTAL - 2, {"01.softmax": "forbidden"}),
    "patches_torch": (
        dict(softmax=subs.PATCHES_TORCH),
        subs.TOTAL - 2,
        {"01.softmax": "forbidden"},
    ),
    "imports_reference": (
        dict(log_softmax=subs.IMPORTS_REFERENCE, huber_loss=subs.SMUGGLES_REFERENCE),
        subs.TOTAL - 4,
        {"01.log_softmax": "forbidden", "01.huber_loss": "forbidden"},
    ),
    "input_transformer": (
        dict(softmax=subs.INPUT_TRANSFORMER),
        subs.TOTAL - 2,
        {"01.softmax": "failed"},
    ),
    "always_equal": (
        dict(softmax=subs.ALWAYS_EQUAL, log_softmax=subs.TENSOR_SUBCLASS),
        subs.TOTAL - 4,
        {"01.softmax": "error", "01.log_softmax": "error"},
    ),
    "dunder_methods": (
        dict(softmax=subs.DUNDER_METHODS),
        subs.TOTAL - 2,
        {"01.softmax": "forbidden"},
    ),
    "exits": (
        dict(softmax=subs.SYS_EXIT, log_softmax=subs.OS_EXIT, cross_entropy=subs.SIGKILL),
        subs.TOTAL - 7,
        {"01.softmax": "forbidden", "01.log_softmax": "forbidden", "01.cross_entropy": "forbidden"},
    ),
    "forbidden_at_run_time": (
        dict(softmax=subs.FORBIDDEN_AT_RUN_TIME),
        subs.TOTAL - 2,
        {"01.softmax": "forbidden"},
    ),
    # Class 1: the forbidden function reached anyway.
    "internal_namespace": (
        dict(softmax=subs.INTERNAL_SOFTMAX, log_softmax=subs.INTERNAL_LOG_SOFTMAX),
        subs.TOTAL - 4,
        {"01.softmax": "forbidden", "01.log_softmax": "forbidden"},
    ),
    "deletes_blocker": (
        dict(softmax=subs.DELETES_BLOCKER),
        subs.TOTAL - 2,
        {"01.softmax": "forbidden"},
    ),
    "public_function": (
        dict(softmax=subs.ATTENTION_SOFTMAX, log_softmax=subs.CROSS_ENTROPY_LOG_SOFTMAX),
        subs.TOTAL - 4,
        {"01.softmax": "forbidden", "01.log_softmax": "forbidden"},
    ),
    "other_cell_operator": (
        dict(huber_loss=huber_with(subs.OTHER_CELL_OPERATOR), softmax=subs.SOFTMAX_FROM_OTHER_CELL),
        subs.TOTAL - 4,
        {"01.huber_loss": "forbidden", "01.softmax": "forbidden"},
    ),
    # An answer's own generator frame holds the full builtins (__import__, getattr): with
    # them it would undo the run-time blocks and call torch.softmax. Refused: frames.
    "frame_escape": (dict(softmax=subs.FRAME_ESCAPE), subs.TOTAL - 2, {"01.softmax": "forbidden"}),
    "distribution_routes": (
        dict(softmax=subs.DISTRIBUTION_SOFTMAX, log_softmax=subs.DISTRIBUTION_LOG_SOFTMAX),
        subs.TOTAL - 4,
        {"01.softmax": "forbidden", "01.log_softmax": "forbidden"},
    ),
    "named_transform": (
        dict(softmax=subs.NAMED_TRANSFORM),
        subs.TOTAL - 2,
        {"01.softmax": "forbidden"},
    ),
    # logsumexp and softplus under other names, and BCE as the soft-margin loss.
    "renamed_logsumexp": (
        dict(softmax=subs.LOGADDEXP_SOFTMAX, log_softmax=subs.LOGCUMSUMEXP_LOG_SOFTMAX),
        subs.TOTAL - 4,
        {"01.softmax": "forbidden", "01.log_softmax": "forbidden"},
    ),
    "renamed_losses": (
        dict(
            binary_cross_entropy_with_logits=subs.SOFT_MARGIN_BCE,
            cross_entropy_grad=subs.LOGADDEXP_CE_GRAD,
        ),
        subs.TOTAL - 5,
        {"01.binary_cross_entropy_with_logits": "forbidden", "01.cross_entropy_grad": "forbidden"},
    ),
    "other_cell_helper": (
        dict(huber_loss=huber_with(subs.OTHER_CELL_HELPER), softmax=subs.SOFTMAX_FROM_HELPER),
        subs.TOTAL - 2,
        {"01.softmax": "forbidden"},
    ),
    # Class 7: far more output than expected.
    "huge_output": (dict(softmax=subs.HUGE_OUTPUT), subs.TOTAL - 2, {"01.softmax": "error"}),
    # Class 7: 750 KB of Huber answer code whose analysis was quadratic (huge_huber_cells).
    "huge_answer_cells": (
        dict(edit=subs.huge_huber_cells),
        subs.TOTAL - 2,
        {"01.huber_loss": "error"},
    ),
    # Class 8: a table of the memorised outputs of the cases `check` shows.
    "memorised": (
        dict(
            binary_cross_entropy_with_logits=subs.memorised("01.binary_cross_entropy_with_logits"),
            huber_loss=subs.memorised("01.huber_loss"),
        ),
        subs.TOTAL - 4,
        {"01.huber_loss": "failed", "01.binary_cross_entropy_with_logits": "failed"},
    ),
    # Class 9: a float where the exercise's reference returns a tensor.
    "returns_float": (
        dict(cross_entropy=subs.RETURNS_FLOAT),
        subs.TOTAL - 3,
        {"01.cross_entropy": "error"},
    ),
    # Class 11: top-level code that ends the process costs only the exercises needing it.
    "crash_at_definition": (
        dict(huber_loss=huber_with(subs.CRASHES)),
        subs.TOTAL - 2,
        {"01.huber_loss": "error"},
    ),
    "crash_in_a_helper": (
        dict(
            log_softmax=SOLUTION["01.log_softmax"] + subs.CRASHES,
            cross_entropy=subs.CROSS_ENTROPY_WITH_LOG_SOFTMAX,
        ),
        subs.TOTAL - 5,
        {"01.log_softmax": "error", "01.cross_entropy": "error"},
    ),
    "top_level_loop": (
        dict(huber_loss=huber_with("\n\nwhile True:\n    pass")),
        subs.TOTAL - 2,
        {"01.huber_loss": "timeout"},
    ),
    # Limits, feedback, the integrity report.
    "infinite_loop": (dict(softmax=subs.INFINITE_LOOP), subs.TOTAL - 2, {"01.softmax": "timeout"}),
    "memory_bomb": (
        dict(log_softmax=subs.MEMORY_BOMB, huber_loss=subs.TORCH_MEMORY_BOMB),
        subs.TOTAL - 4,
        {"01.log_softmax": "memory", "01.huber_loss": "memory"},
    ),
    "prints_100mb": (dict(softmax=subs.PRINTS_100MB), subs.TOTAL, {}),
    "syntax_error": (dict(softmax=subs.SYNTAX_ERROR), subs.TOTAL - 2, {"01.softmax": "error"}),
    "deleted_answer_cell": (dict(softmax=None), subs.TOTAL - 2, {"01.softmax": "not_attempted"}),
    "duplicated_answer_cell": (dict(edit=subs.duplicate_softmax_cell), subs.TOTAL, {}),
    "edited_locked_cells": (dict(edit=subs.edit_locked_cells), subs.TOTAL, {}),
}
# Reasons given for entries that cannot be graded.
NOT_NOTEBOOKS = {
    "garbage.ipynb": "not valid JSON",
    "empty.ipynb": "not valid JSON",
    "list.ipynb": "no list of cells",
    "essay.txt": "not valid JSON",
    "bad_cells.ipynb": "cell 1 is not a valid cell",
    "huge.ipynb": "larger than 20 MB",
    "no_notebook": "a folder without exactly one notebook",
    "many_cells.ipynb": "at most 2000 are graded",  # class 7
    # Class 2: links are never followed.
    "linked_solution.ipynb": "a symbolic link",
    "linked_folder": "a symbolic link",
    "folder_with_a_link": "not following 1 symbolic link",
    # Class 6: entries that used to stop grade-all.
    "deep": "nested more than 16 levels deep",
    "fifo.ipynb": "not a regular file",
}
# Class 6: names graded normally, shown escaped ('student' column: CSV, formula-proof).
STRANGE_NAMES = {
    b"\xff\xfe.ipynb": "\\xff\\xfe.ipynb",
    b"ada.ipynb\n 14.00 of 14  mallory.ipynb": "ada.ipynb\\n 14.00 of 14  mallory.ipynb",
    b"\x1b[2Jwiped.ipynb": "\\x1b[2Jwiped.ipynb",
    b"=HYPERLINK(1).ipynb": "'=HYPERLINK(1).ipynb",
    b"-2+3.ipynb": "'-2+3.ipynb",
    b"x" * 249 + b".ipynb": "x" * 249 + ".ipynb",  # 255 bytes: the longest name there is
}


def _deep_folder(top: Path, depth: int) -> None:
    """A notebook ``depth`` folders below ``top``, made without long paths."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    data = subs.RELEASED.read_bytes()
    out = os.open("hw.ipynb", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(out, data)
    os.close(out)
    os.close(fd)


@pytest.fixture(scope="module")
def assignment():
    return grading.load_assignment(subs.ASSIGNMENT, NOTEBOOKS)


@pytest.fixture(scope="module")
def grader(assignment):
    with grading.Grader(assignment, limits=LIMITS) as grader:
        yield grader


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every attack within the answer-cell check, and every strange entry, graded by one
    `course grade-all` run with two workers."""
    root = tmp_path_factory.mktemp("batch")
    folder = root / "submissions"
    for student, (answers, _, _) in ATTACKS.items():
        subs.solved(folder / f"{student}.ipynb", **answers)
    # A student folder with a scratch notebook next to the one named like the assignment.
    subs.solved(folder / "in_a_folder" / "work" / f"{subs.ASSIGNMENT}.ipynb")
    subs.untouched(folder / "in_a_folder" / "scratch.ipynb")
    subs.write_not_notebooks(folder)
    subs.solved(folder / "many_cells.ipynb", edit=subs.many_cells(2001))
    os.symlink(SOLUTIONS / f"{subs.ASSIGNMENT}.ipynb", folder / "linked_solution.ipynb")
    os.symlink(folder / "in_a_folder", folder / "linked_folder")
    (folder / "folder_with_a_link").mkdir()
    os.symlink(folder / "in_a_folder" / "scratch.ipynb", folder / "folder_with_a_link" / "a.ipynb")
    _deep_folder(folder / "deep", 17)
    os.mkfifo(folder / "fifo.ipynb")
    for name in STRANGE_NAMES:
        subs.solved(Path(os.fsdecode(bytes(folder) + b"/" + name)))
    options = ["--assignment", subs.ASSIGNMENT, "--workers", "2", *LIMIT_OPTIONS]
    return grade_all(folder, root / "grades.csv", *options)


class TestHonestSubmissions:
    def test_the_full_solution_scores_full_marks(self, grader, tmp_path):
        result = grader.grade(subs.solved(tmp_path / "full.ipynb")).to_json()
        assert result["score"] == result["extra_data"]["max_score"] == subs.TOTAL == 19
        assert problems(result) == {}
        assert "every cell outside the answer cells is as released" in result["output"]

    def test_the_untouched_student_notebook_scores_0_not_attempted(self, grader, tmp_path):
        result = grader.grade(subs.untouched(tmp_path / "untouched.ipynb"))
        assert result.score == 0
        assert {test.status for test in result.tests} == {"not_attempted"}
        assert result.notes == []  # notebooks/ is what the grader rebuilds from solutions/

    def test_a_partly_correct_notebook_gets_credit_per_case_group(self, grader, tmp_path):
        path = subs.solved(
            tmp_path / "partly.ipynb",
            softmax=subs.NAIVE_SOFTMAX,  # fails 1 of 5 groups (extreme logits): 2 * 4/5
            huber_loss=subs.HUBER_NO_HALF,  # fails all 6 groups
            cross_entropy_grad=subs.CE_GRAD_NO_MEAN,  # right only for a batch of one: 3 * 1/5
        )
        result = grader.grade(path).to_json()
        assert result["score"] == pytest.approx(subs.TOTAL - 0.4 - 2 - 2.4)
        scores = {test["name"].split(":")[0]: test["score"] for test in result["tests"]}
        assert scores["01.softmax"] == pytest.approx(1.6)
        assert scores["01.cross_entropy_grad"] == pytest.approx(0.6)
        assert problems(result) == {
            "01.softmax": "failed",
            "01.huber_loss": "failed",
            "01.cross_entropy_grad": "failed",
        }
        softmax = output_of(result, "01.softmax")
        assert "4 of 5 case groups pass" in softmax
        assert "FAIL extreme logits" in softmax and "subtract the maximum logit" in softmax
        assert "forgot the 1/N" in output_of(result, "01.cross_entropy_grad")

    def test_wrong_answers_score_0_and_the_feedback_shows_no_expected_value(self, grader, tmp_path):
        result = grader.grade(subs.solved(tmp_path / "wrong.ipynb", **subs.WRONG))
        assert result.score == 0
        assert {test.status for test in result.tests} == {"failed"}
        for test in result.tests:
            wants = grader.hidden[test.exercise].wants
            values = np.concatenate([np.ravel(want) for want in wants])
            shown = {f"{v:.5f}" for v in values if abs(v) > 1e-3}
            assert not [text for text in shown if text in test.output], test.exercise

    def test_every_answer_cell_of_every_solution_passes_the_answer_cell_check(self):
        for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
            cells = grading.read_cells(path)
            answers = [i for i, cell in enumerate(cells) if cell.exercise]
            for index, cell in program.analyse(cells, answers).items():
                assert (cell.error, cell.violations) == (None, ()), (path.name, index)


class TestHostileSubmissions:
    """Every attack within the answer-cell check, in one `course grade-all` run."""

    def test_every_entry_gets_a_row_and_one_summary_line(self, batch):
        students = {f"{name}.ipynb" for name in ATTACKS}
        students |= {"in_a_folder", *NOT_NOTEBOOKS, *STRANGE_NAMES.values()}
        assert set(batch.rows) == students
        assert len(batch.results) == len(students)
        lines = batch.printed.splitlines()
        assert len(lines) == len(students) + 1 and lines[-1].startswith("graded ")
        assert batch.rows["in_a_folder"]["file"] == f"in_a_folder/work/{subs.ASSIGNMENT}.ipynb"
        assert float(batch.rows["in_a_folder"]["total"]) == subs.TOTAL

    @pytest.mark.parametrize("student", ATTACKS)
    def test_an_attack_scores_exactly_what_its_honest_content_deserves(self, batch, student):
        _, score, statuses = ATTACKS[student]
        result = batch.results[f"{student}.ipynb"]
        assert result["score"] == pytest.approx(score)
        assert problems(result) == statuses
        row = batch.rows[f"{student}.ipynb"]
        assert float(row["total"]) == pytest.approx(score) and float(row["max_score"]) == subs.TOTAL

    def test_every_status_is_a_known_one(self, batch):
        statuses = {
            test["extra_data"]["status"] for r in batch.results.values() for test in r["tests"]
        }
        assert statuses == set(grading.STATUSES)

    def test_printed_output_is_truncated(self, batch):
        output = output_of(batch.results["prints_100mb.ipynb"], "01.softmax")
        assert len(output) < LIMITS.output_chars + 1000
        assert "more characters]" in output

    def test_feedback_names_what_was_wrong(self, batch):
        results = batch.results

        def says(student, exercise, *texts):
            output = output_of(results[f"{student}.ipynb"], exercise)
            assert all(text in output for text in texts), output

        says("always_equal", "01.softmax", "returned a AlwaysEqual, expected a torch.Tensor")
        says("always_equal", "01.log_softmax", "returned a AgreeableTensor")
        says("syntax_error", "01.softmax", "SyntaxError")
        says("forbidden_at_run_time", "01.softmax", "getattr is not available to answers")
        says("imports_reference", "01.log_softmax", "import: the preamble gives you")
        says("imports_reference", "01.huber_loss", "__import__: names that start with __")
        says("monkeypatch", "01.softmax", "import")
        says("patches_torch", "01.softmax", "torch.Tensor.allclose: do not assign to")
        says("dunder_methods", "01.softmax", "__eq__: names that start with __")
        says("input_transformer", "01.softmax", "get_ipython")
        says("memory_bomb", "01.log_softmax", "MemoryError")
        says("infinite_loop", "01.softmax", "time limit")
        says("internal_namespace", "01.softmax", "torch.ops is a module answers may not use")
        says("internal_namespace", "01.log_softmax", "torch._log_softmax: attributes that start")
        says("deletes_blocker", "01.softmax", "delattr is not available", "getattr is not")
        says("public_function", "01.softmax", "computes softmax (through the operator aten::")
        says("public_function", "01.log_softmax", "computes log_softmax (through the operator")
        says("other_cell_operator", "01.softmax", "torch.ops is a module")
        says("other_cell_helper", "01.softmax", "z.softmax (cell ")
        says("huge_output", "01.softmax", "bytes are accepted for this case")
        # The second extra cell (1-based number: its index + 1) takes the code past 256 KB.
        released = nbformat.read(subs.RELEASED, as_version=4).cells
        crossing = subs.answer_index(released, "01.huber_loss") + 2
        says(
            "huge_answer_cells", "01.huber_loss", f"up to cell {crossing + 1} hold more than 256 KB"
        )
        says("returns_float", "01.cross_entropy", "returned a float, expected a torch.Tensor")
        says("crash_at_definition", "01.huber_loss", "killed by SIGSEGV", "at the top level")
        says("crash_in_a_helper", "01.cross_entropy", "Left out cell", "(killed by SIGSEGV)")
        says("crash_in_a_helper", "01.cross_entropy", "log_softmax' is not defined")
        says("top_level_loop", "01.huber_loss", "time limit while it ran cell")

    def test_the_integrity_report_lists_changed_cells(self, batch):
        deleted = batch.results["deleted_answer_cell.ipynb"]["extra_data"]["notes"]
        assert deleted == ["deleted: the answer cell of 01.softmax (softmax)"]
        duplicated = batch.results["duplicated_answer_cell.ipynb"]["extra_data"]["notes"]
        assert len(duplicated) == 1 and duplicated[0].startswith("duplicated: 01.softmax has 2")
        edited = batch.results["edited_locked_cells.ipynb"]
        notes = edited["extra_data"]["notes"]
        assert len(notes) == 4
        assert notes[0].startswith("the answer cell of 01.huber_loss lost its tag")
        assert notes[1].startswith("edited: cell 1 ")
        assert notes[2].startswith("edited: cell ") and "check(" in notes[2]
        assert notes[3].startswith("added: cell ") and "def helper" in notes[3]
        assert "neither run nor graded" in edited["output"]

    @pytest.mark.parametrize("name", NOT_NOTEBOOKS)
    def test_an_entry_that_cannot_be_graded_scores_0_with_a_reason(self, batch, name):
        result, row = batch.results[name], batch.rows[name]
        assert result["score"] == 0 and float(row["total"]) == 0
        assert NOT_NOTEBOOKS[name] in result["output"]
        assert NOT_NOTEBOOKS[name] in row["notes"]

    @pytest.mark.parametrize("name", STRANGE_NAMES)
    def test_a_strange_name_is_graded_and_shown_escaped(self, batch, name):
        shown = STRANGE_NAMES[name]
        row = batch.rows[shown]
        assert float(row["total"]) == subs.TOTAL and row["file"] == shown
        results_file = grading.results_name(os.fsdecode(name)).removesuffix(".json")
        assert batch.results[results_file]["score"] == subs.TOTAL
        assert not any(ch in shown for ch in "\n\r\x1b")
        assert f" {shown.lstrip(chr(39))}\n" in batch.printed  # one line, escaped


@pytest.fixture(scope="module")
def past_batch(tmp_path_factory):
    """Attacks past the answer-cell check, graded in this order by one worker, so that
    each can try to hurt the submissions graded after it."""
    root = tmp_path_factory.mktemp("past")
    folder = root / "submissions"
    seed = secrets.randbits(48)  # exists nowhere but in this process and the grader
    submissions = {
        "a_desync": dict(softmax=subs.DESYNC),
        "b_huge_frame": dict(softmax=subs.HUGE_FRAME),
        "c_deep_tree": dict(huber_loss=subs.DEEP_TREE),
        "d_sharer": dict(softmax=subs.SHARER),
        "d_sharer_keyring": dict(softmax=subs.KEYRING_WRITER),
        "e_reader": dict(softmax=subs.READER),
        "e_reader_keyring": dict(softmax=subs.KEYRING_READER),
        "f_exits": subs.EXITS_PAST,
        "g_fork": dict(cross_entropy_grad=subs.FORK_PAST),
        "h_snoops": dict(softmax=subs.snoops(str(seed))),
        "i_smuggles": dict(huber_loss=subs.SMUGGLES_PAST),
        "j_dispatcher": subs.DISPATCHER_PAST,
        "k_forges": dict(softmax=subs.FORGES_RESULTS),
        "l_undoes_blocks": dict(softmax=subs.UNDOES_BLOCKS_PAST),
        "z_victim": {},
    }
    for student, answers in submissions.items():
        subs.solved(folder / f"{student}.ipynb", **answers)
    options = ["--assignment", subs.ASSIGNMENT, "--workers", "1", "--seed", str(seed)]
    with past_the_check():
        return grade_all(folder, root / "grades.csv", *options, *LIMIT_OPTIONS)


PAST_ATTACKS = {  # student -> (score, statuses other than passed)
    "a_desync": (subs.TOTAL - 2, {"01.softmax": "error"}),  # class 3
    "b_huge_frame": (subs.TOTAL - 2, {"01.softmax": "error"}),  # class 7
    "c_deep_tree": (subs.TOTAL, {}),  # class 4
    "d_sharer": (subs.TOTAL, {}),  # class 10
    "e_reader": (subs.TOTAL - 2, {"01.softmax": "failed"}),  # class 10
    "d_sharer_keyring": (subs.TOTAL, {}),  # class 10
    "e_reader_keyring": (subs.TOTAL - 2, {"01.softmax": "failed"}),  # class 10
    "f_exits": (
        subs.TOTAL - 7,
        {"01.softmax": "error", "01.log_softmax": "error", "01.cross_entropy": "error"},
    ),
    "g_fork": (subs.TOTAL - 3, {"01.cross_entropy_grad": "error"}),
    "h_snoops": (subs.TOTAL - 2, {"01.softmax": "failed"}),
    "i_smuggles": (subs.TOTAL - 2, {"01.huber_loss": "error"}),
    "j_dispatcher": (
        subs.TOTAL - 4,
        {"01.softmax": "forbidden", "01.log_softmax": "forbidden"},
    ),  # class 1
    "k_forges": (subs.TOTAL - 2, {"01.softmax": "failed"}),
    "l_undoes_blocks": (subs.TOTAL - 2, {"01.softmax": "forbidden"}),  # class 1
    "z_victim": (subs.TOTAL, {}),
}


class TestPastTheCheck:
    """What the sandbox contains when answer code can do anything Python can."""

    @pytest.mark.parametrize("student", PAST_ATTACKS)
    def test_an_attack_scores_exactly_what_its_honest_content_deserves(self, past_batch, student):
        score, statuses = PAST_ATTACKS[student]
        result = past_batch.results[f"{student}.ipynb"]
        assert (result["score"], problems(result)) == (pytest.approx(score), statuses)
        assert float(past_batch.rows[f"{student}.ipynb"]["total"]) == pytest.approx(score)

    def test_feedback_names_what_was_wrong(self, past_batch):
        results = past_batch.results
        desync = output_of(results["a_desync.ipynb"], "01.softmax")
        assert "the sandbox sent invalid data (bad array shape (-2, -4))" in desync
        huge = output_of(results["b_huge_frame.ipynb"], "01.softmax")
        assert "exceeds the" in huge and "bytes expected" in huge
        assert "killed by SIGKILL" in output_of(results["f_exits.ipynb"], "01.cross_entropy")
        assert "cannot import course_utils" in output_of(
            results["i_smuggles.ipynb"], "01.huber_loss"
        )
        dispatcher = output_of(results["j_dispatcher.ipynb"], "01.log_softmax")
        assert "through the operator aten::_log_softmax" in dispatcher

    def test_nothing_is_forged_next_to_the_results(self, past_batch):
        assert not [name for name in past_batch.results if "forged" in name]


class TestSandboxServer:
    def test_a_server_that_dies_costs_one_exercise_and_is_replaced(self, assignment, tmp_path):
        limits = grading.Limits(exercise_seconds=2, submission_seconds=20, memory_mb=256)
        loop = "def huber_loss(pred, target, delta=1.0):\n    while True:\n        pass"
        with grading.Grader(assignment, limits=limits) as grader:
            server = grader.pool._idle.queue[0].process  # the one sandbox server
            threading.Timer(1.0, server.kill).start()  # dies while huber_loss loops
            result = grader.grade(subs.solved(tmp_path / "loop.ipynb", huber_loss=loop))
            assert server.poll() is not None
            assert result.score == subs.TOTAL - 2
            assert problems(result.to_json()) == {"01.huber_loss": "error"}
            assert "the sandbox server stopped" in result.tests[0].output
            assert grader.grade(subs.solved(tmp_path / "full.ipynb")).score == subs.TOTAL

    def test_a_server_that_sent_invalid_data_is_not_reused(self, assignment, tmp_path):
        with past_the_check(), grading.Grader(assignment, limits=LIMITS) as grader:
            first = grader.pool._idle.queue[0]
            result = grader.grade(subs.solved(tmp_path / "desync.ipynb", softmax=subs.DESYNC))
            assert problems(result.to_json()) == {"01.softmax": "error"}
            assert first.process.poll() is not None  # closed
            assert grader.pool._idle.queue[0] is not first
            assert grader.grade(subs.solved(tmp_path / "full.ipynb")).score == subs.TOTAL

    def test_without_namespaces_a_tree_left_behind_is_removed(self, assignment, tmp_path):
        # Class 4 where the children share the file system: the tree is removed however
        # deep, the next submission is graded, and closing does not raise.
        with (
            past_the_check(),
            grading.Grader(assignment, limits=LIMITS, isolated=False, namespaces=False) as grader,
        ):
            assert grader.isolation == "uids"
            tree = grader.grade(subs.solved(tmp_path / "tree.ipynb", huber_loss=subs.DEEP_TREE))
            assert tree.score == subs.TOTAL
            assert grader.grade(subs.solved(tmp_path / "full.ipynb")).score == subs.TOTAL
            scratch = grader.pool._idle.queue[0].scratch
            assert os.listdir(scratch) == []

    def test_a_tree_however_deep_is_removed_without_following_links(self, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("keep")
        top = tmp_path / "tree"
        top.mkdir()
        os.symlink(outside, top / "link")
        fd = os.open(top, os.O_RDONLY)
        for _ in range(3000):  # deeper than the recursion limit and PATH_MAX
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.fchmod(fd, 0)
            os.close(fd)
            fd = inner
        os.close(fd)
        assert sandbox.remove_tree(str(top)) is True
        assert not top.exists() and (outside / "keep.txt").read_text() == "keep"
        assert sandbox.remove_tree(str(top)) is True  # already gone

    def test_the_conversation_accepts_only_what_it_asked_for(self):
        job = {"cells": [["cell 1", "x = 1"]], "cases": [{}], "n_outputs": 1, "draws": 1}
        job["max_bytes"] = [64]
        good = np.zeros(8)

        def talk(*messages):
            ours, theirs = __import__("socket").socketpair()
            with ours, theirs:
                for header, arrays in messages:
                    sandbox.send_message(theirs, header, arrays)
                theirs.shutdown(__import__("socket").SHUT_WR)
                return pool._converse(ours, job, [], __import__("time").monotonic() + 5)

        start = ({"kind": "start"}, [])
        cell = ({"kind": "cell", "cell": "cell 1", "ok": True}, [])
        case = ({"kind": "case", "index": 0, "outcome": "ok"}, [good])
        done = ({"kind": "done", "output": ""}, [])
        run = talk(start, cell, case, done)
        assert run.ending == "done" and np.array_equal(run.cases[0][1][0], good)
        for bad in (
            [cell, case, done],  # no start
            [start, cell, cell, case, done],  # a cell twice
            [start, cell, case, case, done],  # a case twice
            [start, ({"kind": "cell", "cell": "cell 9", "ok": True}, []), done],  # not asked
            [start, ({"kind": "case", "index": 1, "outcome": "ok"}, [good]), done],
            [start, ({"kind": "case", "index": 0, "outcome": "ok"}, [good, good]), done],
            [start, ({"kind": "case", "index": 0, "outcome": "raised"}, [good]), done],
            [start, ({"kind": "case", "index": 0, "outcome": "ok"}, [np.zeros(1000)]), done],
            [start, ({"kind": "cell", "cell": ["cell 1"], "ok": True}, []), done],
            [start, ({"kind": "news"}, []), done],
        ):
            assert talk(*bad).ending == "invalid", bad

    def test_a_uid_of_its_own_for_each_server_inside_the_map(self, monkeypatch):
        maps = {"uid_map": {(0, 1), (1, 65536)}, "gid_map": {(0, 1), (1, 65536)}}
        monkeypatch.setattr(pool, "_mapped", lambda name: maps[name])
        uids = {pool.sandbox_uid() for _ in range(50)}
        assert len(uids) == 50 and all(1 <= uid < 65535 for uid in uids)
        maps["uid_map"] = maps["gid_map"] = {(0, 2**32 - 1)}
        assert pool.sandbox_uid() >= pool.SANDBOX_UID_BASE


USERNS_SCRIPT = """
import json, sys
sys.path[:0] = [{tests!r}]
from course_utils import cli
from course_utils.grading import program
program._Policy.problem = lambda self, node, text: None  # past the check
try:
    code = cli.main(json.loads(sys.argv[1]))
except SystemExit as err:
    print(err, file=sys.stderr)
    code = 3
sys.exit(code)
"""


def _in_a_user_namespace(argv: list[str], *, namespaces: bool) -> subprocess.CompletedProcess:
    """Run `course` inside a new user namespace with a 65,536-id map (0 is our root, 1 to
    65,535 map to 100,001 and up), as in a rootless container; optionally with the creation
    of further namespaces refused (as Docker's default seccomp profile does)."""
    script = USERNS_SCRIPT.format(tests=str(ROOT / "tests"))
    command = [sys.executable, "-c", script, json.dumps(argv)]
    limits = "" if namespaces else "user pid mnt ipc net uts cgroup"
    launcher = textwrap.dedent(
        f"""
        import ctypes, os, sys
        (read, write), (read_back, write_back) = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:
            assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0
            os.write(write_back, b"x")  # in the new user namespace: map it
            assert os.read(read, 1) == b"x"
            for kind in {limits.split()!r}:
                with open(f"/proc/sys/user/max_{{kind}}_namespaces", "w") as file:
                    file.write("0")
            os.execv(sys.executable, {command!r})
        assert os.read(read_back, 1) == b"x"
        for kind in ("uid_map", "gid_map"):
            with open(f"/proc/{{pid}}/{{kind}}", "w") as file:
                file.write("0 0 1\\n1 100001 65535\\n")
        os.write(write, b"x")
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", launcher], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="writing a 65,536-id map needs root")
class TestRootlessContainers:
    """Class 5: where per-child user ids are scarce, one sandbox must not kill another."""

    def test_a_sandbox_cannot_kill_the_others(self, tmp_path):
        folder = tmp_path / "submissions"
        subs.solved(folder / "killer.ipynb", huber_loss=subs.KILLER)
        for k in range(3):
            subs.solved(folder / f"victim{k}.ipynb")
        out = tmp_path / "grades.csv"
        argv = ["grade-all", str(folder), "--out", str(out), "--workers", "2", "--seed", "7"]
        argv += ["--exercise-timeout", "5", "--submission-timeout", "30", "--memory-mb", "512"]
        done = _in_a_user_namespace(argv, namespaces=True)
        assert done.returncode == 0, done.stderr
        with out.open(newline="") as file:
            totals = {row["student"]: row["total"] for row in csv.DictReader(file)}
        assert totals == {
            "killer.ipynb": str(subs.TOTAL),
            "victim0.ipynb": str(subs.TOTAL),
            "victim1.ipynb": str(subs.TOTAL),
            "victim2.ipynb": str(subs.TOTAL),
        }

    def test_without_namespaces_grade_all_refuses_and_grade_works(self, tmp_path):
        submission = subs.solved(tmp_path / "ada.ipynb")
        argv = ["grade-all", str(tmp_path), "--out", str(tmp_path / "grades.csv")]
        done = _in_a_user_namespace(argv, namespaces=False)
        assert done.returncode == 3
        assert "cannot be isolated from each other" in done.stderr
        assert "`course grade` grades one submission without them" in done.stderr
        out = tmp_path / "results.json"
        argv = ["grade", str(submission), "--out", str(out), *LIMIT_OPTIONS]
        done = _in_a_user_namespace(argv, namespaces=False)
        assert done.returncode == 0, done.stderr
        assert "grading without namespaces" in done.stderr
        assert json.loads(out.read_text())["score"] == subs.TOTAL


class TestCommandLine:
    def test_course_grade_replaces_what_stood_at_the_results_path(self, tmp_path):
        out = tmp_path / "results.json"
        out.write_text('{"score": 1000}')
        os.chmod(out, 0o666)
        submission = subs.solved(tmp_path / "forger.ipynb", softmax=subs.FORGES_RESULTS)
        printed = io.StringIO()
        with past_the_check(), contextlib.redirect_stdout(printed):
            assert cli.main(["grade", str(submission), "--out", str(out), *LIMIT_OPTIONS]) == 0
        assert not (tmp_path / "results.json.forged").exists()  # it could not see us
        result = json.loads(out.read_text())
        assert result["score"] == subs.TOTAL - 2 and problems(result) == {"01.softmax": "failed"}
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

    def test_course_grade_prints_the_seed_in_a_fresh_process(self, tmp_path):
        submission = subs.untouched(tmp_path / "ada.ipynb")
        command = [sys.executable, "-m", "course_utils.cli", "grade", str(submission)]
        command += ["--out", str(tmp_path / "results.json"), *LIMIT_OPTIONS]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "pass --seed to grade the same cases again" in done.stderr

    def test_course_grade_refuses_a_link(self, tmp_path):
        link = tmp_path / "mallory.ipynb"
        os.symlink(SOLUTIONS / f"{subs.ASSIGNMENT}.ipynb", link)
        out = tmp_path / "results.json"
        argv = ["grade", str(link), "--assignment", subs.ASSIGNMENT, "--out", str(out)]
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(argv + LIMIT_OPTIONS) == 0
        result = json.loads(out.read_text())
        assert result["score"] == 0 and "a symbolic link" in result["output"]

    def test_course_grade_needs_the_assignment_of_a_file_that_names_none(self, tmp_path):
        essay = tmp_path / "essay.txt"
        essay.write_text("no notebook here")
        with pytest.raises(SystemExit, match="pass --assignment"):
            cli.main(["grade", str(essay), "--out", str(tmp_path / "results.json")])
        with pytest.raises(SystemExit, match="unknown assignment"):
            cli.main(["grade", str(essay), "--assignment", "99_nothing"])

    def test_course_grade_all_takes_the_assignment_from_the_notebooks(self, assignment, tmp_path):
        folder = tmp_path / "class"
        subs.untouched(folder / "ada.ipynb")
        (folder / "bob.ipynb").write_text("{}")
        out = tmp_path / "grades.csv"
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["grade-all", str(folder), "--out", str(out), "--workers", "1"]) == 0
        with out.open(newline="") as file:
            rows = list(csv.DictReader(file))
        ids = [ex.id for ex in assignment.exercises]  # in notebook order
        assert list(rows[0]) == ["student", "file", *ids, "total", "max_score", "notes"]
        assert [(row["student"], row["total"]) for row in rows] == [
            ("ada.ipynb", "0"),
            ("bob.ipynb", "0"),
        ]
        assert "no list of cells" in rows[1]["notes"]

    def test_a_shard_needs_the_seed(self, tmp_path):
        subs.untouched(tmp_path / "ada.ipynb")
        with pytest.raises(SystemExit, match="--shard needs --seed"):
            cli.main(["grade-all", str(tmp_path), "--shard", "1/2"])
        with pytest.raises(SystemExit):
            cli.main(["grade-all", str(tmp_path), "--shard", "3/2", "--seed", "1"])

    def test_merged_shards_equal_the_single_run(self, tmp_path):
        folder = tmp_path / "submissions"
        subs.solved(folder / "ada.ipynb")
        subs.untouched(folder / "bob.ipynb")
        subs.solved(folder / "cy" / "hw.ipynb", softmax=subs.NAIVE_SOFTMAX)
        subs.solved(folder / "dee.ipynb", huber_loss=subs.HUBER_NO_HALF)
        subs.solved(Path(os.fsdecode(bytes(folder) + b"/=\xff.ipynb")), **subs.WRONG)
        (folder / "eve.ipynb").write_text("not json")
        os.symlink(folder / "ada.ipynb", folder / "fay.ipynb")
        options = ["--assignment", subs.ASSIGNMENT, "--seed", "424242", "--workers", "1"]
        options += LIMIT_OPTIONS
        single, shards = tmp_path / "single.csv", []
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["grade-all", str(folder), "--out", str(single), *options]) == 0
            for k in (1, 2, 3):
                shards.append(tmp_path / f"shard{k}.csv")
                argv = ["grade-all", str(folder), "--out", str(shards[-1]), "--shard", f"{k}/3"]
                assert cli.main(argv + options) == 0
            merged = tmp_path / "merged.csv"
            assert cli.main(["merge-gradebooks", *map(str, shards), "--out", str(merged)]) == 0
        counts = [len(path.read_text().splitlines()) - 1 for path in shards]
        assert sum(counts) == 7 and all(count < 7 for count in counts)  # really split
        assert merged.read_bytes() == single.read_bytes()

    def test_merging_refuses_other_assignments_and_a_student_twice(self, tmp_path):
        header = ["student", "file", "01.a", "total", "max_score", "notes"]
        grading.write_gradebook([["ada", "ada.ipynb", "1", "1", "2", ""]], header, tmp_path / "a")
        grading.write_gradebook([["ada", "ada.ipynb", "2", "2", "2", ""]], header, tmp_path / "b")
        other = [*header[:2], "02.b", *header[3:]]
        grading.write_gradebook([["bob", "bob.ipynb", "1", "1", "2", ""]], other, tmp_path / "c")
        with pytest.raises(ValueError, match="ada is in both"):
            grading.merge_gradebooks([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
        with pytest.raises(ValueError, match="other columns"):
            grading.merge_gradebooks([tmp_path / "a", tmp_path / "c"], tmp_path / "out")


class TestTimeAndSize:
    """Class 7: only the sandbox's time is charged, and only what is expected is accepted."""

    def test_the_graders_own_time_is_not_charged(self, grader, tmp_path, monkeypatch):
        from course_utils.grading import grader as grader_module

        judge = grader_module.judge

        def slow_judge(*args, **kwargs):
            __import__("time").sleep(1.5)  # e.g. many diagnoses of a failing answer
            return judge(*args, **kwargs)

        monkeypatch.setattr(grader_module, "judge", slow_judge)
        result = grader.grade(subs.solved(tmp_path / "full.ipynb"))
        assert result.score == subs.TOTAL  # 6 x 1.5 s of judging > the 6 s limit, yet no "Not run"

    def test_the_sandbox_is_told_the_most_output_it_may_send(self, grader):
        hidden = grader.hidden["01.softmax"]
        for want, limit in zip(hidden.wants, hidden.max_bytes, strict=True):
            assert want.nbytes < limit <= 4 * want.nbytes + 64 * 2**10


class TestPieces:
    """The parts that need no sandbox."""

    def test_arrays_come_back_only_as_numeric_npy(self):
        good = np.arange(6.0).reshape(2, 3)
        assert np.array_equal(sandbox.decode_array(sandbox.encode_array(good)), good)
        pickled = np.array([{"a": 1}], dtype=object)
        buffer = io.BytesIO()
        np.save(buffer, pickled, allow_pickle=True)
        records = np.zeros(2, dtype=[("x", "f8")])
        short = sandbox.encode_array(good)[:-8]
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (-2, -4), }"
        header += " " * (117 - len(header)) + "\n"
        negative = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
        negative += bytes(64)
        for data in (
            buffer.getvalue(),
            sandbox.encode_array(records),
            short,
            b"PK\x03\x04zip",
            negative,
            b"\x93NUMPY\x03\x00",
            b"",
        ):
            with pytest.raises(sandbox.ProtocolError):
                sandbox.decode_array(data)

    def test_case_arguments_survive_the_wire(self):
        args = {"z": np.ones((2, 3), np.float32), "dim": 0, "pair": (np.arange(2), 2.5)}
        arrays = []
        wire = json.loads(json.dumps({k: sandbox.to_wire(v, arrays) for k, v in args.items()}))
        back = {k: sandbox.from_wire(v, arrays) for k, v in wire.items()}
        assert back["dim"] == 0 and back["pair"][1] == 2.5
        assert back["z"].dtype == np.float32 and np.array_equal(back["pair"][0], np.arange(2))

    def test_hidden_cases_depend_on_the_seed_only(self):
        ex = exercises.get("01.softmax")
        first, again, other = (grading.hidden_cases(ex, seed) for seed in (7, 7, 8))
        assert all(
            np.array_equal(a.args["z"], b.args["z"])
            for a, b in zip(first.cases, again.cases, strict=True)
        )
        assert not np.array_equal(first.cases[0].args["z"], other.cases[0].args["z"])
        assert [c.group for c in first.cases] == [c.group for c in other.cases]
        assert isinstance(first.cases[0], Case)

    @pytest.mark.parametrize("exercise_id", sorted(exercises.REGISTRY))
    def test_every_case_group_depends_on_the_seed(self, exercise_id):
        # Class 8: a group whose cases are the same for every seed can be passed by a table
        # of memorised outputs (check shows them for the public seed).
        ex = exercises.get(exercise_id)
        seeds = (*range(1, 8), exercises.VISIBLE_SEED)
        runs = [ex.cases(np.random.default_rng(seed)) for seed in seeds]
        varies = {}
        for i, case in enumerate(runs[0]):
            others = [run[i] for run in runs[1:]]
            changed = any(not _same(case.args, other.args) for other in others)
            varies[case.group] = varies.get(case.group, False) or changed
        assert [group for group, changed in varies.items() if not changed] == []

    def test_the_public_seed_is_refused(self, assignment):
        with pytest.raises(ValueError, match="seed of the cases `check` shows"):
            grading.Grader(assignment, seed=exercises.VISIBLE_SEED)

    def test_integrity_notes(self, assignment):
        cells = grading.read_cells(subs.RELEASED)
        answers, notes = grading.find_answers(assignment, cells)
        assert notes == [] and grading.integrity_notes(assignment, cells, answers) == []
        markdown = next(i for i, c in enumerate(cells) if c.kind == "markdown" and i > 5)
        changed = [*cells, cells[markdown]]  # duplicated at the end
        changed[markdown] = grading.Cell("markdown", "my own words", None)
        del changed[1]  # the setup cell
        answers, _ = grading.find_answers(assignment, changed)
        notes = grading.integrity_notes(assignment, changed, answers)
        assert [note.split(":")[0] for note in notes] == ["deleted", "edited", "duplicated"]

    def test_find_submissions_takes_one_entry_per_student(self, tmp_path):
        (tmp_path / "ada").mkdir()
        (tmp_path / "ada" / "a.ipynb").write_text("{}")
        (tmp_path / "ada" / ".ipynb_checkpoints").mkdir()
        (tmp_path / "ada" / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
        (tmp_path / "bob.ipynb").write_text("{}")
        (tmp_path / ".hidden").write_text("")
        found = grading.find_submissions(tmp_path)
        assert [(s.student, s.file, s.problem) for s in found] == [
            ("ada", "ada/a.ipynb", None),
            ("bob.ipynb", "bob.ipynb", None),
        ]

    def test_names_are_escaped_one_to_one(self):
        names = ["a\\b", "a\\\\b", "a\nb", "a\\nb", "\udcff", "\\xff", "\u202e", "é"]
        shown = [grading.display(name) for name in names]
        assert len(set(shown)) == len(names)
        assert all(char.isprintable() for text in shown for char in text)
        assert shown[-1] == "é"
        # In the gradebook the student column is the key (merge_gradebooks): still one to one.
        fields = [files.spreadsheet_text(name) for name in ["=x", "'=x", "''=x", "x", "'x"]]
        assert len(set(fields)) == 5 and not any(f.startswith("=") for f in fields)

    def test_results_replace_a_symlink_instead_of_following_it(self, tmp_path):
        target = tmp_path / "precious.txt"
        target.write_text("keep me")
        link = tmp_path / "results.json"
        os.symlink(target, link)
        grading.write_atomically(link, "{}")
        assert target.read_text() == "keep me" and not link.is_symlink()
        assert link.read_text() == "{}"


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


class TestAnswerCellCheck:
    """What an answer may use (course_utils.grading.program), cell by cell."""

    @staticmethod
    def violations(source: str, other: str = "") -> list[str]:
        cells = [grading.Cell("code", source, "01.softmax"), grading.Cell("code", other, None)]
        return list(program.analyse(cells, [0, 1])[0].violations)

    @pytest.mark.parametrize(
        "source",
        [
            "def f(x):\n    return torch.linalg.vector_norm(x) + np.linalg.norm(x.numpy())",
            "def f(x, g=None):\n    return x.normal_(0.0, math.sqrt(2), generator=g)",
            "def f(x):\n    for _ in range(3):\n        x = F.relu(x)\n    return x",
            "def f(open):\n    return open + len([1])",  # its own `open`
            "class Helper:\n    def scale(self, x):\n        return 2 * x",
            "def f(x):\n    y = torch.nn.Linear(2, 2)\n    y.weight.data = x\n    return y.weight",
        ],
    )
    def test_what_answers_use_is_accepted(self, source):
        assert self.violations(source) == []

    @pytest.mark.parametrize(
        ("source", "says"),
        [
            ("import os", "import:"),
            ("from math import pi", "import:"),
            ("x = torch.autograd.grad", "torch.autograd is a module answers may not use"),
            ("x = torch.utils.checkpoint", "torch.utils is a module answers may not use"),
            ("x = torch.os.getpid", "torch.os is a module answers may not use"),
            ("x = np.lib.stride_tricks", "np.lib is a module answers may not use"),
            ("t = torch", "torch is a module: only look up names in it"),
            ("x = torch.linalg", "torch.linalg is a module: only look up names in it"),
            ("x = [np][0].sum", "np is a module"),
            ("np = torch", "np is the preamble's module: do not rebind it"),
            ("torch.Tensor.softmax = None", "do not assign to or delete it"),
            ("del torch.Tensor.softmax", "do not assign to or delete it"),
            ("x = torch._C", "attributes that start with _ are private"),
            ("def f(z):\n    return z.__class__", "attributes that start with _ are private"),
            ("x = __builtins__", "__builtins__: names that start with __"),
            ("def __init__(self):\n    pass", "__init__: names that start with __"),
            ("x = getattr(torch, 'softmax')", "getattr is not available to answers"),
            ("x = eval('1')", "eval is not available"),
            ("x = open('/etc/passwd')", "open is not available"),
            ("x = torch.load('x.pt')", "torch.load is not allowed: loading pickled data"),
            ("x = np.load('x.npy', allow_pickle=True)", "np.load is not allowed"),
            ("f = torch.compile(len, backend=print)", "torch.compile is not allowed"),
            ("x = torch.nonexistent", "torch.nonexistent is not available to answers"),
            ("x = (y for y in ()).gi_frame", "frames, code objects and tracebacks are not"),
            ("def f(frame):\n    return frame.f_builtins", "frames, code objects and"),
            ("def f(frame):\n    return frame.f_back.f_globals", "frames, code objects and"),
            ("async def f():\n    pass\nx = f().cr_frame", "frames, code objects and"),
            ("def f(g):\n    return g.co_consts", "frames, code objects and tracebacks"),
        ],
    )
    def test_tricks_are_refused_with_a_reason(self, source, says):
        found = self.violations(source)
        assert any(says in violation for violation in found), found
        assert all("(cell 1, line " in violation for violation in found)

    def test_a_builtin_defined_in_another_answer_cell_is_the_students(self):
        assert self.violations("x = getattr(1)", other="def getattr(x):\n    return x") == []

    def test_forbidden_names_are_words_of_any_attribute(self):
        assert sandbox.mentions("LogSoftmax", "softmax")
        assert sandbox.mentions("gumbel_softmax", "softmax")
        assert sandbox.mentions("_log_softmax", "log_softmax")
        assert sandbox.mentions("cross_entropy_loss", "CrossEntropyLoss")
        assert sandbox.mentions("requires_grad_", "grad")
        assert sandbox.mentions("_fused_adamw_", "AdamW")
        assert not sandbox.mentions("gradient", "grad")
        assert not sandbox.mentions("isfinite", "init")
        assert not sandbox.mentions("logcumsumexp", "logsumexp")
        # Names are matched as runs of at most MENTION_WORDS words (linear in a name's length).
        longest = max(
            len(sandbox.name_words(n)) for e in exercises.REGISTRY.values() for n in e.forbidden
        )
        assert longest <= sandbox.MENTION_WORDS
        assert sandbox.mentions("x_" * 100_000 + "soft_max", "SoftMax")

    def test_an_exercise_runs_the_cells_it_needs(self):
        source = [
            "def helper(x):\n    return x + offset",
            "offset = 1",
            "def unused():\n    return 0",
            "def softmax(z, dim=-1):\n    return helper(z)",
            "def f():\n    global late\n    late = 2",
        ]
        cells = [grading.Cell("code", text, None) for text in source]
        analysed = program.analyse(cells, range(len(cells)))
        ex = exercises.get("01.softmax")
        assert program.program_of(ex, analysed, [3]) == [0, 1, 3]
        assert analysed[4].binds == {"f", "late"}


class TestRules:
    """Status precedence, the results.json format, the run-time blocks."""

    @pytest.mark.parametrize(
        ("statuses", "expected"),
        [
            ({"passed"}, "passed"),
            ({"not_attempted"}, "not_attempted"),
            ({"passed", "failed"}, "failed"),
            ({"failed", "error"}, "error"),
            ({"passed", "not_attempted"}, "error"),  # raised NotImplementedError on some cases
            ({"failed", "timeout", "error"}, "timeout"),
            ({"timeout", "memory"}, "memory"),
            ({"memory", "forbidden", "passed"}, "forbidden"),
        ],
    )
    def test_status_precedence_when_several_problems_occur(self, statuses, expected):
        assert grading.status_of(statuses) == expected

    def test_results_json_follows_gradescopes_format(self, grader, tmp_path):
        top_keys = {
            "score",
            "execution_time",
            "output",
            "output_format",
            "test_output_format",
            "test_name_format",
            "visibility",
            "stdout_visibility",
            "extra_data",
            "tests",
            "leaderboard",
        }
        test_keys = {
            "score",
            "max_score",
            "status",
            "name",
            "name_format",
            "number",
            "output",
            "output_format",
            "tags",
            "visibility",
            "extra_data",
        }
        visibilities = {"hidden", "after_due_date", "after_published", "visible"}
        partly = subs.solved(
            tmp_path / "partly.ipynb", softmax=subs.NAIVE_SOFTMAX, log_softmax=None
        )
        result = json.loads(json.dumps(grader.grade(partly).to_json()))
        assert set(result) <= top_keys and result["visibility"] in visibilities
        assert isinstance(result["score"], int | float) and isinstance(result["output"], str)
        assert result["score"] == pytest.approx(sum(t["score"] for t in result["tests"]))
        for test in result["tests"]:
            assert set(test) <= test_keys, set(test) - test_keys
            assert test["status"] in ("passed", "failed")  # Gradescope knows these two
            assert isinstance(test["score"], int | float) and isinstance(test["max_score"], int)
            assert 0 <= test["score"] <= test["max_score"]
            assert isinstance(test["name"], str) and isinstance(test["output"], str)
            assert test["visibility"] in visibilities
            ours = test["extra_data"]["status"]
            assert ours in grading.STATUSES and (ours == "passed") == (test["status"] == "passed")
        assert {t["extra_data"]["status"] for t in result["tests"]} == {
            "passed",
            "failed",
            "not_attempted",
        }

    def test_forbidden_operators_are_blocked_at_the_dispatcher(self):
        # In a forked child, since blocking changes torch for the whole process.
        import torch
        import torch.nn.functional as F

        z = torch.randn(3, 4, dtype=torch.float64)
        calls = {
            "torch.softmax": lambda: torch.softmax(z, 1),
            "Tensor.softmax": lambda: z.softmax(1),
            "F.softmax": lambda: F.softmax(z, 1),
            "nn.Softmax": lambda: torch.nn.Softmax(1)(z),
            "nn.LogSoftmax": lambda: torch.nn.LogSoftmax(1)(z),
            "F.cross_entropy": lambda: F.cross_entropy(z, torch.tensor([0, 1, 2])),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(z),
            "attention": lambda: F.scaled_dot_product_attention(z, z, z),
            "Categorical": lambda: torch.distributions.Categorical(logits=z).probs,
            "torch.ops": lambda: torch.ops.aten._softmax(z, 1, False),
            "torch._C": lambda: torch._C._VariableFunctions.log_softmax(z, 1),
            "sparse": lambda: torch.softmax(z.to_sparse(), 1),
            "vmap": lambda: torch.vmap(lambda r: torch.softmax(r, 0))(z),
            "with grad": lambda: z.clone().requires_grad_().softmax(1),
            "out=": lambda: torch.softmax(z, 1, out=torch.empty_like(z)),
        }
        allowed = {"torch.exp": lambda: torch.exp(z), "logcumsumexp": lambda: z.logcumsumexp(1)}
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: block, call each, report which raised
            try:
                sandbox._block_operators(["softmax", "log_softmax", "logsumexp"])
                blocked = []
                for name, call in {**calls, **allowed}.items():
                    try:
                        call()
                    except sandbox.ForbiddenCallError:
                        blocked.append(name)
                os.write(write, json.dumps(blocked).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            blocked = json.loads(pipe.read() or "null")
        os.waitpid(pid, 0)
        assert blocked == list(calls)  # and the rest of torch still works
        assert torch.softmax(z, 1).shape == (3, 4)  # this process is untouched


class TestResultTypes:
    """Class 9: an exercise's result type is its reference's."""

    def test_a_tensor_where_the_reference_returns_a_float_is_an_error(self, tmp_path):
        assignment = grading.load_assignment("02_sgd_variants", NOTEBOOKS)
        answers = subs.solution_answers("02_sgd_variants")
        answers["02.cosine_annealing_lr"] = subs.COSINE_RETURNS_TENSOR
        path = subs.write_submission(tmp_path / "cos.ipynb", answers, assignment="02_sgd_variants")
        with grading.Grader(assignment, limits=LIMITS) as grader:
            result = grader.grade(path)
        statuses = {test.exercise: test.status for test in result.tests if test.status != "passed"}
        assert statuses == {"02.cosine_annealing_lr": "error"}
        assert result.score == result.max_score - 1
        cosine = next(test for test in result.tests if test.exercise == "02.cosine_annealing_lr")
        assert "returned a Tensor of shape (), expected a float" in cosine.output
        assert grader.hidden["02.cosine_annealing_lr"].returns == ("float",)
        assert grader.hidden["02.adam_step"].returns == ("tensor",) * 3


HE_NORMAL = (
    "def he_normal_(tensor, gain=1.0, generator=None):\n"
    "    fan_in = tensor.shape[1] * math.prod(tensor.shape[2:])\n"
    "    return tensor.normal_(0.0, gain * math.sqrt(2.0 / fan_in){generator})\n"
)
HE_NORMAL_ANSWERS = {
    "correct": HE_NORMAL.format(generator=", generator=generator"),
    "ignores its generator": HE_NORMAL.format(generator=""),
    "fan_out": HE_NORMAL.format(generator=", generator=generator").replace("shape[1]", "shape[0]"),
}


@pytest.fixture(scope="module")
def he_normal_graded(tmp_path_factory):
    """The answers above, graded by one grader: name -> TestResult."""
    ex = exercises.get("03.he_normal_")
    stub = grading.Cell(
        "code", "def he_normal_(tensor, gain=1.0, generator=None):\n    pass", ex.id
    )
    assignment = grading.Assignment("03_test", (ex,), (stub,))
    folder = tmp_path_factory.mktemp("stochastic")
    paths = []
    for i, source in enumerate(HE_NORMAL_ANSWERS.values()):
        cell = {
            "cell_type": "code",
            "source": source,
            "metadata": {"tags": [f"exercise:{ex.id}"]},
        }
        paths.append(folder / f"{i}.ipynb")
        paths[-1].write_text(json.dumps({"cells": [cell], "metadata": {}}))
    with grading.Grader(assignment, limits=LIMITS) as grader:
        results = grader.grade_many(paths)
    return {name: result.tests[0] for name, result in zip(HE_NORMAL_ANSWERS, results, strict=True)}


class TestStochasticExercises:
    """A stochastic exercise goes through the sandbox like the others: called twice there
    with generators seeded alike, judged here on the distribution."""

    def test_a_correct_answer_scores_full_points(self, he_normal_graded):
        test = he_normal_graded["correct"]
        assert (test.status, test.score) == ("passed", 2), test.output

    def test_an_answer_that_ignores_its_generator_fails(self, he_normal_graded):
        test = he_normal_graded["ignores its generator"]
        assert (test.status, test.score) == ("failed", 0)
        assert "two calls with generators in the same state" in test.output

    def test_a_wrong_fan_gets_its_hint(self, he_normal_graded):
        test = he_normal_graded["fan_out"]
        assert (test.status, test.score) == ("failed", 0)
        assert "not fan_out" in test.output  # the hint of the known mistake
