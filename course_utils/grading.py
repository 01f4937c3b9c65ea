"""Grade notebook submissions: the trusted side of ``course grade`` and ``course grade-all``.

How a submission is graded:

1. The reference notebook is ``notebooks/<ID>.ipynb``, the released student notebook --
   what the students were handed. ``course release --check`` (run by ``make test``) keeps
   it equal to a fresh release of solutions/. Both it and the submission are read as
   plain JSON (importing nbformat alone would cost seconds per ``course grade``).
2. The submission is read the same way (at most 20 MB). Its answer cells are found by
   their ``exercise:<id>`` tag, or by the function they define when the tag was lost.
   Every other cell is compared with the released notebook; added, deleted, duplicated
   and edited cells are reported in the feedback, and never run.
3. Hidden cases come from ``ex.cases(np.random.default_rng(seed))`` with a secret seed
   (from ``secrets`` unless one is given); their expected values are computed here, with
   the references, once per run.
4. Each exercise gets a fresh sandbox process (course_utils.sandbox): it runs a fixed
   preamble and the answer cells, calls the exercise's function on the hidden inputs and
   sends back plain arrays. Here they are validated (numeric .npy only, then shape, dtype
   and finiteness) and judged with ``exercises.judge`` (compared with the reference's
   output, or for a stochastic exercise tested for its distribution);
   ``exercises.diagnose`` adds a hint for known mistakes.
   Score: points x (case groups passed / case groups).
5. results.json (Gradescope's format) and the CSV gradebook are written atomically.

Threat model. A submission is hostile: inside its sandbox it can patch torch, numpy or
anything else, install IPython hooks, return objects that claim to equal anything, read
the files and environment around it, exit, crash, loop, allocate or print without end.
None of that reaches this process: the answer code runs in another process, forked from a
server that never held a seed or an expected value, with a scrubbed environment, a fresh
working directory, no inherited descriptors, rlimits and (when we are root) a user id of
its own; all it can do is send data, and data is validated and compared here. Timeouts,
crashes and garbage cost that exercise its points and nothing else.

Not defended: this is process isolation plus rlimits, not a kernel-level jail. The
sandbox can read world-readable files (course_utils' reference code, other students'
notebooks if they are world-readable) and use the network; a seed passed with ``--seed``
is visible in the process list. Copying the reference code is plagiarism, not an exploit.
For stronger isolation run the grader in a container (see the README).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course_utils import exercises, sandbox
from course_utils.exercises import Case, Exercise

STATUSES = ("passed", "failed", "error", "timeout", "memory", "not_attempted", "forbidden")
MAX_NOTEBOOK_BYTES = 20 * 2**20
ASSIGNMENT_ID = re.compile(r"[0-9]{2}_[A-Za-z0-9_]+")
# The whole environment of the sandbox processes: nothing of ours, one thread each.
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
SANDBOX_START_SECONDS = 120  # a cold `import torch` on a slow disk
SANDBOX_REPLY_SECONDS = 30


class SubmissionError(Exception):
    """The file cannot be graded (not a notebook, too large, ...); the message says why."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use in the sandbox."""

    exercise_seconds: float = 10.0  # wall clock, per exercise
    submission_seconds: float = 60.0  # wall clock, all exercises together
    memory_mb: int = 2048  # address space on top of the preloaded interpreter
    output_chars: int = 2000  # of printed output kept for the feedback


# --- notebooks ------------------------------------------------------------------------


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


def read_cells(path: Path) -> list[Cell]:
    """The cells of a submitted notebook; SubmissionError if it is not a readable notebook."""
    notebook = _read_json(Path(path))
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise SubmissionError("not a Jupyter notebook (no list of cells)")
    return [_cell(cell, number) for number, cell in enumerate(cells, 1)]


def assignment_of(path: Path) -> str | None:
    """The assignment id a submission names in its metadata (course.assignment), if any."""
    try:
        notebook = _read_json(Path(path))
        name = notebook["metadata"]["course"]["assignment"]
    except (SubmissionError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) and ASSIGNMENT_ID.fullmatch(name) else None


def _read_json(path: Path):
    if path.is_dir():
        raise SubmissionError("a folder without exactly one notebook (.ipynb) in it")
    if not path.is_file():
        raise SubmissionError("not a regular file")
    with path.open("rb") as file:
        data = file.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
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
    for ex in assignment.exercises:
        if answers[ex.id]:
            continue
        answers[ex.id] = [
            index
            for index, cell in enumerate(cells)
            if cell.kind == "code"
            and cell.exercise is None
            and cell.key() not in locked
            and ex.name in _defined_names(cell.source)
        ]
        if answers[ex.id]:
            notes.append(
                f"the answer cell of {ex.id} lost its tag exercise:{ex.id}; found "
                f"{_cell_numbers(answers[ex.id])} by the name {ex.name}"
            )
    return answers, notes


def _defined_names(source: str) -> list[str]:
    return re.findall(r"^(?:def|class)\s+(\w+)", source, flags=re.MULTILINE)


def _cell_numbers(indices: list[int]) -> str:
    return ("cell " if len(indices) == 1 else "cells ") + ", ".join(str(i + 1) for i in indices)


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
                f"duplicated: {ex.id} has {len(found)} answer cells ({_cell_numbers(found)}); "
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
    matcher = difflib.SequenceMatcher(
        None, released_keys, [cell.key() for _, cell in submitted], autojunk=False
    )
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        n_edited = min(a1 - a0, b1 - b0)
        for k in range(n_edited):
            index, _ = submitted[b0 + k]
            notes.append(f"edited: cell {index + 1} (released: {released[a0 + k].preview()!r})")
        for cell in released[a0 + n_edited : a1]:
            notes.append(f"deleted: the {cell.kind} cell {cell.preview()!r}")
        for index, cell in submitted[b0 + n_edited : b1]:
            what = "duplicated" if cell.key() in released_keys else "added"
            notes.append(f"{what}: cell {index + 1} ({cell.preview()!r})")
    return notes


@dataclass(frozen=True)
class Program:
    """The answer cells that will run (label, source) and the ones that do not compile."""

    cells: list[tuple[str, str]]
    sources: dict[int, str]  # index -> source as run (IPython magics commented out)
    errors: dict[int, str]  # index -> the SyntaxError


def build_program(cells: list[Cell], answers: dict[str, list[int]]) -> Program:
    """All answer cells in notebook order; a cell that does not parse is left out."""
    program = Program([], {}, {})
    for index in sorted({i for found in answers.values() for i in found}):
        label = f"cell {index + 1}"
        # Lines starting with % or ! (IPython magics, shell escapes) are not Python.
        source = re.sub(r"^(\s*)([%!])", r"\1# \2", cells[index].source, flags=re.MULTILINE)
        try:
            compile(source, f"<{label}>", "exec", flags=0, dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
            line = f", line {err.lineno}" if getattr(err, "lineno", None) else ""
            message = err.args[0] if err.args else ""
            program.errors[index] = f"{type(err).__name__}: {message} ({label}{line})"
            continue
        program.cells.append((label, source))
        program.sources[index] = source
    return program


# --- the sandbox servers --------------------------------------------------------------


@dataclass
class SandboxRun:
    """What came back from one sandbox process."""

    messages: list[tuple[dict, list[np.ndarray]]]
    ending: str  # "done", "timeout", "exited" or "invalid"
    detail: str = ""  # how the process ended, or what was invalid
    output: str = ""  # what the answer code printed (truncated)


class SandboxCrashed(Exception):
    """The sandbox server (not just one child) stopped answering."""


class Zygote:
    """A sandbox server process (``python -I -S sandbox.py``) and our control socket to it."""

    def __init__(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The children's working directories go in here: they may enter their own (mode
        # 0711 lets them through) but not list the others'. Removed in close().
        self.scratch = tempfile.mkdtemp(prefix="course-grader-")
        os.chmod(self.scratch, 0o711)
        site_dirs = sorted({str(Path(m.__file__).parent.parent) for m in (np, torch)})
        command = [sys.executable, "-I", "-S", sandbox.__file__, str(theirs.fileno())]
        self.process = subprocess.Popen(
            [*command, self.scratch, *site_dirs],
            env=SANDBOX_ENV,
            cwd=self.scratch,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
            start_new_session=True,  # Ctrl-C reaches us; we stop it by closing the socket
        )
        theirs.close()
        self.ctrl = ours

    def wait_ready(self) -> None:
        """Wait until the server has imported torch and serves requests."""
        try:
            self._reply(SANDBOX_START_SECONDS)
        except SandboxCrashed:
            raise RuntimeError("the sandbox server did not start (see its error above)") from None

    def run(self, job: dict, arrays: list, deadline: float) -> SandboxRun:
        """Fork a child for ``job``, talk to it until it is done or the deadline, kill it."""
        ours, theirs = socket.socketpair()
        with ours:
            try:
                socket.send_fds(self.ctrl, [b"run"], [theirs.fileno()])
            finally:
                theirs.close()
            run = _converse(ours, job, arrays, deadline)
            self.ctrl.send(b"stop")
            ended = self._reply(SANDBOX_REPLY_SECONDS)
        if run.ending == "exited" and ended.get("signal") == signal.SIGXCPU:
            run.ending, run.detail = "timeout", "the CPU time limit was reached"
        elif run.ending == "exited" and "signal" in ended:
            run.detail = f"killed by {_signal_name(ended['signal'])}"
        elif run.ending == "exited":
            run.detail = f"exit code {ended.get('exit')}"
        return run

    def _reply(self, timeout: float) -> dict:
        self.ctrl.settimeout(timeout)
        try:
            reply = self.ctrl.recv(4096)
        except OSError as err:
            raise SandboxCrashed(str(err)) from None
        if not reply:
            raise SandboxCrashed("the sandbox server has stopped")
        return json.loads(reply)

    def close(self) -> None:
        """Stop the server (it kills its current child when our socket closes), clean up."""
        self.ctrl.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _converse(sock: socket.socket, job: dict, arrays: list, deadline: float) -> SandboxRun:
    """Send the job, then collect messages until "done", the deadline, EOF or bad data."""
    messages = []
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sandbox.send_message(sock, job, arrays)
        while len(messages) <= len(job["cells"]) + len(job["cases"]):
            header, received = sandbox.recv_message(sock, deadline)
            if header.get("kind") == "done":
                return SandboxRun(messages, "done", output=_text(header.get("output"), 10**5))
            messages.append((header, received))
        return SandboxRun(messages, "invalid", "too many messages")
    except TimeoutError:
        return SandboxRun(messages, "timeout")
    except (EOFError, ConnectionError):
        return SandboxRun(messages, "exited")
    except sandbox.ProtocolError as err:
        return SandboxRun(messages, "invalid", str(err))


def _signal_name(number) -> str:
    try:
        return signal.Signals(number).name
    except (ValueError, TypeError):
        return f"signal {number}"


class SandboxPool:
    """``size`` sandbox servers shared by grading threads; one that dies is replaced."""

    def __init__(self, size: int):
        zygotes = [Zygote() for _ in range(size)]  # they import torch in parallel
        self._idle: queue.Queue[Zygote] = queue.Queue()
        for zygote in zygotes:
            zygote.wait_ready()
            self._idle.put(zygote)

    def run(self, job: dict, arrays: list, deadline: float) -> SandboxRun:
        """Run one job on an idle server (waiting for one if needed)."""
        zygote = self._idle.get()
        try:
            return zygote.run(job, arrays, deadline)
        except (SandboxCrashed, OSError) as err:
            zygote.close()
            zygote = Zygote()
            zygote.wait_ready()
            return SandboxRun([], "exited", f"the sandbox server stopped ({err})")
        finally:
            self._idle.put(zygote)

    def close(self) -> None:
        """Stop every server."""
        while not self._idle.empty():
            self._idle.get_nowait().close()


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one hidden case went: a status from STATUSES and, unless passed, why."""

    status: str
    message: str = ""


PASSED = Outcome("passed")


@dataclass(frozen=True)
class TestResult:
    """One exercise's result: a test in results.json."""

    exercise: str
    name: str
    score: float
    max_score: float
    status: str
    output: str

    def to_json(self) -> dict:
        """The Gradescope test object.

        Gradescope knows two test statuses, "passed" and "failed"; ours (one of
        STATUSES) is kept in ``extra_data.status``, next to the exercise id.
        """
        return {
            "name": self.name,
            "score": self.score,
            "max_score": self.max_score,
            "status": "passed" if self.status == "passed" else "failed",
            "output": self.output,
            "visibility": "visible",
            "extra_data": {"exercise": self.exercise, "status": self.status},
        }


@dataclass(frozen=True)
class SubmissionResult:
    """One submission's result: its tests, notebook-integrity notes, or why it was not graded."""

    assignment: str
    tests: list[TestResult]
    notes: list[str]
    problem: str | None = None  # set when the file could not be graded at all

    @property
    def score(self) -> float:
        return round(sum(test.score for test in self.tests), 2)

    @property
    def max_score(self) -> float:
        return sum(test.max_score for test in self.tests)

    def summary(self) -> str:
        """The general feedback: why the file was not graded, or the integrity report."""
        if self.problem:
            return f"This file could not be graded: {self.problem}."
        if not self.notes:
            return "Notebook check: every cell outside the answer cells is as released."
        lines = [
            "Notebook check: these cells differ from the released notebook. Only answer "
            "cells are run, so changes elsewhere are neither run nor graded."
        ]
        lines += [f"- {note}" for note in self.notes[:20]]
        if len(self.notes) > 20:
            lines.append(f"- ... and {len(self.notes) - 20} more")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """results.json in Gradescope's format."""
        return {
            "score": self.score,
            "output": self.summary(),
            "visibility": "visible",
            "tests": [test.to_json() for test in self.tests],
            "extra_data": {
                "assignment": self.assignment,
                "max_score": self.max_score,
                "notes": self.notes,
            },
        }

    def table(self) -> str:
        """A short text table for the terminal."""
        lines = [
            f"{test.score:6.2f} / {test.max_score:<3g} {test.status:<14} {test.name}"
            for test in self.tests
        ]
        lines.append(f"{self.score:6.2f} / {self.max_score:<3g} total")
        return "\n".join(([self.summary()] if self.problem or self.notes else []) + lines)


# --- grading --------------------------------------------------------------------------


@dataclass(frozen=True)
class HiddenCases:
    """An exercise's hidden cases, their expected outputs, and their inputs as sent."""

    cases: list[Case]
    wants: list
    wire: list[dict]
    arrays: list[np.ndarray]


def hidden_cases(ex: Exercise, seed: int) -> HiddenCases:
    """Make an exercise's cases from ``seed`` and compute the expected outputs."""
    cases = ex.cases(np.random.default_rng(seed))
    wants = [exercises.expected(ex, case) for case in cases]
    arrays: list[np.ndarray] = []
    wire = [{key: sandbox.to_wire(v, arrays) for key, v in case.args.items()} for case in cases]
    return HiddenCases(cases, wants, wire, arrays)


class Grader:
    """Grades submissions of one assignment on hidden cases from one secret seed.

    Use it as a context manager: it owns ``workers`` sandbox servers, and ``grade_many``
    grades that many submissions at a time.
    """

    def __init__(
        self,
        assignment: Assignment,
        *,
        seed: int | None = None,
        limits: Limits = Limits(),
        workers: int = 1,
    ):
        # The sandbox servers start before any hidden case exists here (they are fresh
        # interpreters, so they could not see one anyway).
        self.pool = SandboxPool(workers)
        self.assignment, self.limits, self.workers = assignment, limits, workers
        self.seed = secrets.randbits(63) if seed is None else seed
        self.hidden = {ex.id: hidden_cases(ex, self.seed) for ex in assignment.exercises}

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the sandbox servers."""
        self.pool.close()

    def grade_many(self, paths: list[Path]) -> list[SubmissionResult]:
        """Grade several submissions, ``workers`` at a time; one failure never stops the rest."""
        executor = ThreadPoolExecutor(self.workers)
        try:
            return list(executor.map(self.grade, paths))
        finally:  # after Ctrl-C, do not start the submissions still waiting
            executor.shutdown(cancel_futures=True)

    def ungradable(self, problem: str) -> SubmissionResult:
        """A result with score 0 for a file that cannot be graded."""
        tests = [
            TestResult(ex.id, _test_name(ex), 0, ex.points, "error", f"Not graded: {problem}.")
            for ex in self.assignment.exercises
        ]
        return SubmissionResult(self.assignment.id, tests, [], problem)

    def grade(self, path: Path) -> SubmissionResult:
        """Grade one submission file. Never raises: a file that cannot be graded scores 0."""
        try:
            return self._grade(Path(path))
        except (SubmissionError, OSError) as err:
            return self.ungradable(str(err))
        except Exception as err:  # a bug of ours must not cost the other submissions
            return self.ungradable(f"the grader failed on this file ({type(err).__name__}: {err})")

    def _grade(self, path: Path) -> SubmissionResult:
        cells = read_cells(path)
        answers, notes = find_answers(self.assignment, cells)
        notes += integrity_notes(self.assignment, cells, answers)
        program = build_program(cells, answers)
        deadline = time.monotonic() + self.limits.submission_seconds
        tests = [
            self._grade_exercise(ex, cells, answers[ex.id], program, deadline)
            for ex in self.assignment.exercises
        ]
        return SubmissionResult(self.assignment.id, tests, notes)

    def _grade_exercise(
        self, ex: Exercise, cells: list[Cell], own: list[int], program: Program, deadline: float
    ) -> TestResult:
        stubs = {cell.key() for cell in self.assignment.cells if cell.exercise == ex.id}
        if not own:
            return _result(ex, "not_attempted", 0, f"Not attempted: no answer cell for {ex.name}.")
        if all(cells[index].key() in stubs for index in own):
            return _result(ex, "not_attempted", 0, f"Not attempted: {ex.name} is still the stub.")
        errors = [program.errors[index] for index in own if index in program.errors]
        if errors:
            return _result(
                ex, "error", 0, "Your answer cell does not compile: " + "; ".join(errors)
            )
        used = [
            use for index in own for use in exercises.forbidden_uses(ex, program.sources[index])
        ]
        if used:
            message = f"Score 0: {ex.name} uses what this exercise asks you to write yourself: "
            return _result(ex, "forbidden", 0, message + "; ".join(used))
        now = time.monotonic()
        if now >= deadline:
            limit = self.limits.submission_seconds
            return _result(ex, "timeout", 0, f"Not run: the submission's {limit:g} s were used up.")
        hidden = self.hidden[ex.id]
        job = {
            "kind": "job",
            "cells": program.cells,
            "name": ex.name,
            "forbidden": list(ex.forbidden),
            "n_outputs": ex.n_outputs,
            "draws": ex.draws,
            "cases": hidden.wire,
            "limits": {
                "cpu_seconds": math.ceil(self.limits.exercise_seconds) + 1,
                "memory_bytes": self.limits.memory_mb * 2**20,
                "output_chars": self.limits.output_chars,
            },
        }
        run = self.pool.run(job, hidden.arrays, min(now + self.limits.exercise_seconds, deadline))
        return self._judge(ex, hidden, run, [f"cell {index + 1}" for index in own])

    def _judge(self, ex: Exercise, hidden: HiddenCases, run: SandboxRun, labels) -> TestResult:
        """Turn what a sandbox sent back into a scored TestResult."""
        outcomes: list[Outcome | None] = [None] * len(hidden.cases)
        cell_errors = []
        for header, arrays in run.messages:
            index = header.get("index")
            if header.get("kind") == "cell_error" and header.get("cell") in labels:
                cell_errors.append(_raised(header).message)
            elif header.get("kind") == "case" and type(index) is int and 0 <= index < len(outcomes):
                if outcomes[index] is None:
                    case, want = hidden.cases[index], hidden.wants[index]
                    outcomes[index] = self._judge_case(ex, case, want, header, arrays)
        unfinished = self._unfinished(run)
        outcomes = [outcome or unfinished for outcome in outcomes]

        groups: dict[str, Outcome] = {}  # per group, its first failure (else PASSED)
        for case, outcome in zip(hidden.cases, outcomes, strict=True):
            if groups.get(case.group, PASSED).status == "passed":
                groups[case.group] = outcome
        status = _status({outcome.status for outcome in outcomes})
        n_passed = sum(outcome.status == "passed" for outcome in groups.values())
        score = 0 if status == "forbidden" else round(ex.points * n_passed / len(groups), 2)

        lines = [f"{n_passed} of {len(groups)} case groups pass."]
        problems = {outcome.message for outcome in groups.values()}
        if n_passed == 0 and len(problems) == 1:  # one reason for everything: say it once
            lines.append(f"  FAIL every group: {problems.pop()}".replace("\n", "\n       "))
        else:
            for group, outcome in groups.items():
                mark = "ok  " if outcome.status == "passed" else "FAIL"
                detail = f": {outcome.message}" if outcome.message else ""
                lines.append(f"  {mark} {group}{detail}".replace("\n", "\n         "))
        if cell_errors:
            lines.append("Your answer cell raised an error when it ran:")
            lines += [f"  {error}" for error in cell_errors]
        if run.output:
            lines.append(f"Your code printed (first {self.limits.output_chars} characters):")
            lines.append(_text(run.output, self.limits.output_chars + 50))
        return _result(ex, status, score, "\n".join(lines))

    def _judge_case(self, ex: Exercise, case: Case, want, header: dict, arrays: list) -> Outcome:
        outcome = header.get("outcome")
        if outcome == "raised":
            raised = _raised(header)
            if raised.status == "memory":
                return Outcome("memory", f"{raised.message} (limit {self.limits.memory_mb} MB)")
            return raised
        if outcome == "bad_output":
            return Outcome("error", f"your function {_text(header.get('message'))}")
        if outcome != "ok" or len(arrays) != ex.n_outputs * ex.draws:
            return Outcome("error", "the sandbox sent an invalid result")
        got = exercises.outputs_from_arrays(ex, arrays)
        with np.errstate(all="ignore"):
            problem = exercises.judge(ex, case, want, got)
            if problem is None:
                return PASSED
            hint = exercises.diagnose(ex, case, got)
        return Outcome("failed", problem + (f"\nhint: {hint}" if hint else ""))

    def _unfinished(self, run: SandboxRun) -> Outcome:
        """The outcome of the cases that got no result."""
        if run.ending == "timeout":
            limits = self.limits
            return Outcome(
                "timeout",
                f"stopped at the time limit ({limits.exercise_seconds:g} s per exercise, "
                f"{limits.submission_seconds:g} s per submission){_also(run.detail)}",
            )
        if run.ending == "exited":
            return Outcome(
                "error",
                f"the process running your code ended ({run.detail}): did it exit, "
                "kill itself or crash?",
            )
        if run.ending == "invalid":
            return Outcome("error", f"the sandbox sent invalid data ({run.detail})")
        return Outcome("error", "no result")


def _status(statuses: set[str]) -> str:
    """An exercise's status from its cases' statuses."""
    for status in ("forbidden", "memory", "timeout"):
        if status in statuses:
            return status
    if statuses == {"passed"}:
        return "passed"
    if statuses == {"not_attempted"}:
        return "not_attempted"
    return "error" if statuses & {"error", "not_attempted"} else "failed"


def _raised(header: dict) -> Outcome:
    """The outcome for an exception the answer code raised (as reported by the sandbox)."""
    kind, message = _text(header.get("type"), 100), _text(header.get("message"))
    where = _text(header.get("where"), 100)
    text = f"raised {kind}" + (f": {message}" if message else "") + (f" ({where})" if where else "")
    if kind == "NotImplementedError":
        return Outcome("not_attempted", text)
    if kind == "ForbiddenCallError":
        return Outcome("forbidden", message)
    if kind == "MemoryError" or "allocate memory" in message:
        return Outcome("memory", text)
    return Outcome("error", text)


def _text(value, limit: int = 500) -> str:
    """A string from the sandbox, shortened; anything else becomes ''."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= limit else value[:limit] + " [...]"


def _also(detail: str) -> str:
    return f"; {detail}" if detail else ""


def _test_name(ex: Exercise) -> str:
    return f"{ex.id}: {ex.title}"


def _result(ex: Exercise, status: str, score: float, output: str) -> TestResult:
    return TestResult(ex.id, _test_name(ex), score, ex.points, status, output)


# --- files ----------------------------------------------------------------------------


def find_submissions(directory: Path, assignment_id: str | None = None) -> list[tuple[str, Path]]:
    """(student, path) for each entry of ``directory``: a file, or the notebook in a folder.

    A folder counts as one student; its notebook is found recursively (the one named
    ``<assignment_id>.ipynb`` if there are several). A folder without exactly one such
    notebook is returned as is, and grading it reports why.
    """
    found = []
    for entry in sorted(Path(directory).iterdir()):
        if entry.name.startswith("."):
            continue
        path = entry
        if entry.is_dir():
            notebooks = [
                p
                for p in sorted(entry.rglob("*.ipynb"))
                if not any(part.startswith(".") for part in p.relative_to(entry).parts)
            ]
            named = [p for p in notebooks if p.name == f"{assignment_id}.ipynb"]
            notebooks = named if len(named) == 1 else notebooks
            path = notebooks[0] if len(notebooks) == 1 else entry
        found.append((entry.name, path))
    return found


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path`` (mode 0600), then os.replace it.

    Readers never see half a file, and whatever stood at ``path`` before -- say, something
    a submission managed to write there -- is replaced as a whole.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_results(result: SubmissionResult, path: Path) -> None:
    """Write results.json (Gradescope's format) atomically."""
    write_atomically(path, json.dumps(result.to_json(), indent=1) + "\n")


def write_gradebook(
    rows: list[tuple[str, Path, SubmissionResult]], assignment: Assignment, path: Path
) -> None:
    """Write the CSV gradebook atomically: one row per student, one column per exercise."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    ids = [ex.id for ex in assignment.exercises]
    writer.writerow(["student", "file", *ids, "total", "max_score", "notes"])
    for student, file, result in rows:
        scores = [f"{test.score:g}" for test in result.tests]
        issues = [f"{t.exercise} {t.status}" for t in result.tests if t.status != "passed"]
        notes = result.problem or "; ".join(issues + result.notes)
        writer.writerow(
            [student, str(file), *scores, f"{result.score:g}", f"{result.max_score:g}", notes]
        )
    write_atomically(path, buffer.getvalue())
