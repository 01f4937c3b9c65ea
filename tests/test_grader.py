"""The grader: honest submissions get their exact score; hostile ones cannot raise theirs.

Every submission is a real notebook built from the released lecture 01 (see
tests/submissions.py), graded end to end through the sandbox. The hostile ones are graded
together in one ``course grade-all`` run; each must get exactly the score its honest
content deserves, and the run must finish with a row for every file.
"""

import csv
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import submissions as subs

from course_utils import cli, exercises, grading, sandbox
from course_utils.exercises import Case

from conftest import NOTEBOOKS, ROOT

LIMITS = grading.Limits(exercise_seconds=3, submission_seconds=6, memory_mb=256)
LIMIT_OPTIONS = ["--exercise-timeout", "3", "--submission-timeout", "6", "--memory-mb", "256"]


def problems(result: dict) -> dict[str, str]:
    """Exercise id -> status, for the tests of a results.json that did not pass."""
    return {
        test["extra_data"]["exercise"]: test["extra_data"]["status"]
        for test in result["tests"]
        if test["extra_data"]["status"] != "passed"
    }


def output_of(result: dict, exercise_id: str) -> str:
    return next(t["output"] for t in result["tests"] if t["name"].startswith(exercise_id + ":"))


# student -> (answers replaced in the full solution, score, statuses other than passed)
ATTACKS = {
    "monkeypatch": (dict(softmax=subs.MONKEYPATCH), 12, {"01.softmax": "failed"}),
    "imports_reference": (
        dict(log_softmax=subs.IMPORTS_REFERENCE, huber_loss=subs.SMUGGLES_REFERENCE),
        10,
        {"01.log_softmax": "forbidden", "01.huber_loss": "error"},
    ),
    "input_transformer": (dict(softmax=subs.INPUT_TRANSFORMER), 12, {"01.softmax": "failed"}),
    "always_equal": (
        dict(softmax=subs.ALWAYS_EQUAL, log_softmax=subs.TENSOR_SUBCLASS),
        10,
        {"01.softmax": "error", "01.log_softmax": "error"},
    ),
    "exits": (
        dict(softmax=subs.SYS_EXIT, log_softmax=subs.OS_EXIT, cross_entropy=subs.SIGKILL),
        7,
        {"01.softmax": "error", "01.log_softmax": "error", "01.cross_entropy": "error"},
    ),
    "infinite_loop": (dict(softmax=subs.INFINITE_LOOP), 12, {"01.softmax": "timeout"}),
    "memory_bomb": (
        dict(log_softmax=subs.MEMORY_BOMB, huber_loss=subs.TORCH_MEMORY_BOMB),
        10,
        {"01.log_softmax": "memory", "01.huber_loss": "memory"},
    ),
    "fork": (dict(cross_entropy_grad=subs.FORK), 11, {"01.cross_entropy_grad": "error"}),
    "prints_100mb": (dict(softmax=subs.PRINTS_100MB), 14, {}),
    "syntax_error": (dict(softmax=subs.SYNTAX_ERROR), 12, {"01.softmax": "error"}),
    "forbidden_at_run_time": (
        dict(softmax=subs.FORBIDDEN_AT_RUN_TIME),
        12,
        {"01.softmax": "forbidden"},
    ),
    "deleted_answer_cell": (dict(softmax=None), 12, {"01.softmax": "not_attempted"}),
    "duplicated_answer_cell": (dict(edit=subs.duplicate_softmax_cell), 14, {}),
    "edited_locked_cells": (dict(edit=subs.edit_locked_cells), 14, {}),
}
# Reasons given for files that are not notebook submissions.
NOT_NOTEBOOKS = {
    "garbage.ipynb": "not valid JSON",
    "empty.ipynb": "not valid JSON",
    "list.ipynb": "no list of cells",
    "essay.txt": "not valid JSON",
    "bad_cells.ipynb": "cell 1 is not a valid cell",
    "huge.ipynb": "larger than 20 MB",
    "no_notebook": "a folder without exactly one notebook",
}


@pytest.fixture(scope="module")
def assignment():
    return grading.load_assignment(subs.ASSIGNMENT, NOTEBOOKS)


@pytest.fixture(scope="module")
def grader(assignment):
    with grading.Grader(assignment, limits=LIMITS) as grader:
        yield grader


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every attack graded by one `course grade-all` run: gradebook rows and results."""
    root = tmp_path_factory.mktemp("batch")
    folder = root / "submissions"
    seed = secrets.randbits(48)  # exists nowhere but in this process and the grader
    for student, (answers, _, _) in ATTACKS.items():
        subs.solved(folder / f"{student}.ipynb", **answers)
    subs.solved(folder / "snoops.ipynb", softmax=subs.snoops(str(seed)))
    # A student folder with a scratch notebook next to the one named like the assignment.
    subs.solved(folder / "in_a_folder" / "work" / f"{subs.ASSIGNMENT}.ipynb")
    subs.untouched(folder / "in_a_folder" / "scratch.ipynb")
    # An answer cell that loops at the top level: every exercise times out, until the
    # submission's time is used up.
    loop = subs.solution_answers()["01.huber_loss"] + "\n\nwhile True:\n    pass"
    subs.solved(folder / "top_level_loop.ipynb", huber_loss=loop)
    subs.write_not_notebooks(folder)

    gradebook, results_dir = root / "grades.csv", root / "results"
    argv = ["grade-all", str(folder), "--assignment", subs.ASSIGNMENT, "--workers", "2"]
    argv += ["--out", str(gradebook), "--results-dir", str(results_dir), "--seed", str(seed)]
    assert cli.main(argv + LIMIT_OPTIONS) == 0
    with gradebook.open(newline="") as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    results = {
        path.name.removesuffix(".json"): json.loads(path.read_text())
        for path in results_dir.iterdir()
    }
    return SimpleNamespace(rows=rows, results=results)


class TestHonestSubmissions:
    def test_the_full_solution_scores_full_marks(self, grader, tmp_path):
        result = grader.grade(subs.solved(tmp_path / "full.ipynb")).to_json()
        assert result["score"] == result["extra_data"]["max_score"] == subs.TOTAL == 14
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
        assert result["score"] == pytest.approx(14 - 0.4 - 2 - 2.4)
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


class TestHostileSubmissions:
    """All attacks in one `course grade-all` run (two workers)."""

    def test_every_file_and_folder_gets_a_row(self, batch):
        students = {f"{name}.ipynb" for name in ATTACKS}
        students |= {"snoops.ipynb", "in_a_folder", "top_level_loop.ipynb", *NOT_NOTEBOOKS}
        assert set(batch.rows) == set(batch.results) == students
        assert batch.rows["in_a_folder"]["file"] == f"in_a_folder/work/{subs.ASSIGNMENT}.ipynb"
        assert float(batch.rows["in_a_folder"]["total"]) == 14

    @pytest.mark.parametrize("student", ATTACKS)
    def test_an_attack_scores_exactly_what_its_honest_content_deserves(self, batch, student):
        _, score, statuses = ATTACKS[student]
        result = batch.results[f"{student}.ipynb"]
        assert result["score"] == pytest.approx(score)
        assert problems(result) == statuses
        row = batch.rows[f"{student}.ipynb"]
        assert float(row["total"]) == pytest.approx(score) and float(row["max_score"]) == 14

    def test_every_status_is_a_known_one(self, batch):
        statuses = {
            test["extra_data"]["status"] for r in batch.results.values() for test in r["tests"]
        }
        assert statuses == set(grading.STATUSES)

    def test_snooping_finds_no_seed_no_environment_no_descriptor_and_no_root(self, batch):
        result = batch.results["snoops.ipynb"]
        assert result["score"] == 12 and problems(result) == {"01.softmax": "failed"}

    def test_the_submission_time_limit_stops_a_top_level_loop(self, batch):
        tests = batch.results["top_level_loop.ipynb"]["tests"]
        assert {test["extra_data"]["status"] for test in tests} == {"timeout"}
        assert sum(test["score"] for test in tests) == 0
        # 3 s for each of the first two exercises use up the 6 s; the rest never start.
        not_run = [test for test in tests if "Not run" in test["output"]]
        assert len(not_run) == 4

    def test_printed_output_is_truncated(self, batch):
        output = output_of(batch.results["prints_100mb.ipynb"], "01.softmax")
        assert len(output) < LIMITS.output_chars + 1000
        assert "more characters]" in output

    def test_feedback_names_what_was_wrong(self, batch):
        results = batch.results
        assert "returned a AlwaysEqual" in output_of(results["always_equal.ipynb"], "01.softmax")
        subclass = output_of(results["always_equal.ipynb"], "01.log_softmax")
        assert "returned a AgreeableTensor" in subclass
        assert "SyntaxError" in output_of(results["syntax_error.ipynb"], "01.softmax")
        forbidden = output_of(results["forbidden_at_run_time.ipynb"], "01.softmax")
        assert "torch.softmax is not allowed" in forbidden
        imports = output_of(results["imports_reference.ipynb"], "01.log_softmax")
        assert "import of course_utils.losses" in imports
        smuggled = output_of(results["imports_reference.ipynb"], "01.huber_loss")
        assert "cannot import course_utils" in smuggled
        assert "get_ipython" in output_of(results["input_transformer.ipynb"], "01.softmax")
        assert "MemoryError" in output_of(results["memory_bomb.ipynb"], "01.log_softmax")
        assert "killed by SIGKILL" in output_of(results["exits.ipynb"], "01.cross_entropy")
        assert "time limit" in output_of(results["infinite_loop.ipynb"], "01.softmax")

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
    def test_a_file_that_is_not_a_notebook_scores_0_with_a_reason(self, batch, name):
        result, row = batch.results[name], batch.rows[name]
        assert result["score"] == 0 and float(row["total"]) == 0
        assert NOT_NOTEBOOKS[name] in result["output"]
        assert NOT_NOTEBOOKS[name] in row["notes"]


class TestSandboxServer:
    def test_a_server_that_dies_costs_one_exercise_and_is_replaced(self, assignment, tmp_path):
        limits = grading.Limits(exercise_seconds=2, submission_seconds=20, memory_mb=256)
        loop = "def huber_loss(pred, target, delta=1.0):\n    while True:\n        pass"
        with grading.Grader(assignment, limits=limits) as grader:
            server = grader.pool._idle.queue[0].process  # the one sandbox server
            threading.Timer(1.0, server.kill).start()  # dies while huber_loss loops
            result = grader.grade(subs.solved(tmp_path / "loop.ipynb", huber_loss=loop))
            assert server.poll() is not None
            assert result.score == 12
            assert problems(result.to_json()) == {"01.huber_loss": "error"}
            assert "the sandbox server stopped" in result.tests[0].output
            assert grader.grade(subs.solved(tmp_path / "full.ipynb")).score == 14


class TestCommandLine:
    def test_course_grade_replaces_what_the_submission_wrote_to_the_results_path(self, tmp_path):
        # A results folder the sandbox user may write to, so that the attack gets through
        # to the file; the grader's atomic replace must still have the last word.
        out_dir = Path(tempfile.mkdtemp(prefix="course-grade-test-"))
        out_dir.chmod(0o777)
        try:
            submission = subs.solved(tmp_path / "forger.ipynb", softmax=subs.FORGES_RESULTS)
            out = out_dir / "results.json"
            command = [sys.executable, "-m", "course_utils.cli", "grade", str(submission)]
            command += ["--out", str(out), *LIMIT_OPTIONS]  # no --assignment: from metadata
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert "pass --seed to grade the same cases again" in done.stderr
            assert (out_dir / "results.json.forged").exists()  # the attack did write there
            result = json.loads(out.read_text())
            assert result["score"] == 12 and problems(result) == {"01.softmax": "failed"}
            assert stat.S_IMODE(out.stat().st_mode) == 0o600
        finally:
            shutil.rmtree(out_dir)

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


class TestPieces:
    """The parts that need no sandbox."""

    def test_arrays_come_back_only_as_numeric_npy(self):
        good = np.arange(6.0).reshape(2, 3)
        assert np.array_equal(sandbox.decode_array(sandbox.encode_array(good)), good)
        pickled = np.array([{"a": 1}], dtype=object)
        buffer = __import__("io").BytesIO()
        np.save(buffer, pickled, allow_pickle=True)
        records = np.zeros(2, dtype=[("x", "f8")])
        short = sandbox.encode_array(good)[:-8]
        for data in (buffer.getvalue(), sandbox.encode_array(records), short, b"PK\x03\x04zip"):
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
        assert found == [
            ("ada", tmp_path / "ada" / "a.ipynb"),
            ("bob.ipynb", tmp_path / "bob.ipynb"),
        ]

    def test_results_replace_a_symlink_instead_of_following_it(self, tmp_path):
        target = tmp_path / "precious.txt"
        target.write_text("keep me")
        link = tmp_path / "results.json"
        os.symlink(target, link)
        grading.write_atomically(link, "{}")
        assert target.read_text() == "keep me" and not link.is_symlink()
        assert link.read_text() == "{}"


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
        assert grading._status(statuses) == expected

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

    def test_each_forbidden_namespace_is_blocked_at_run_time(self):
        # In a forked child, since blocking changes torch for the whole process.
        import torch
        import torch.nn.functional as F

        x = torch.zeros(2, requires_grad=True)
        calls = {
            "torch": lambda: torch.softmax(x, 0),
            "torch.Tensor": lambda: x.softmax(0),
            "torch.nn": lambda: torch.nn.Softmax(0),
            "torch.nn.functional": lambda: F.softmax(x, 0),
            "torch.special": lambda: torch.special.xlogy(x, x),
            "torch.autograd": lambda: torch.autograd.grad(x.sum(), x),
            "torch.Tensor property": lambda: x.grad,
        }
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: block, call each, report which raised
            try:
                sandbox._forbid(["softmax", "Softmax", "xlogy", "grad"])
                blocked = []
                for name, call in calls.items():
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
        assert blocked == list(calls)
        assert torch.softmax(x, 0).shape == (2,)  # this process is untouched


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
