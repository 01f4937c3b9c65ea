"""The Grader: one assignment, one secret seed, a pool of sandbox servers; the pipeline.

For each submission: read its cells (notebook), find the answer cells and the changes to
the released notebook (notebook), analyse the answer cells (program), and per exercise
run its program in a sandbox child (pool) and judge what came back (judging); then
results.json and the gradebook (results, files).
"""

from __future__ import annotations

import math
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from course_utils import exercises
from course_utils.exercises import Exercise
from course_utils.grading import program
from course_utils.grading.files import Submission, SubmissionError
from course_utils.grading.judging import hidden_cases, judge, result, test_name
from course_utils.grading.notebook import (
    Assignment,
    Cell,
    cell_numbers,
    find_answers,
    integrity_notes,
    read_cells,
)
from course_utils.grading.pool import SandboxPool
from course_utils.grading.program import AnswerCell
from course_utils.grading.results import SubmissionResult, TestResult


@dataclass(frozen=True)
class Limits:
    """What one submission may use in the sandbox."""

    exercise_seconds: float = 10.0  # wall clock, per exercise
    submission_seconds: float = 60.0  # wall clock, all exercises together
    memory_mb: int = 2048  # address space on top of the preloaded interpreter
    output_chars: int = 2000  # of printed output kept for the feedback


class IsolationError(RuntimeError):
    """The sandboxes cannot be isolated from each other (or from root) here."""


ISOLATION_HELP = (
    "the sandboxes cannot be isolated from each other here ({detail}). Grading several "
    "students at once needs Linux namespaces: run as root, or as a user allowed to create "
    "user namespaces, or in a container that may create them (see the README, "
    "'Grading in a container'). `course grade` grades one submission without them."
)


class _Budget:
    """A submission's sandbox time: only what its children ran is charged."""

    def __init__(self, seconds: float):
        self.left = seconds

    def charge(self, seconds: float) -> None:
        self.left -= seconds


class Grader:
    """Grades submissions of one assignment on hidden cases from one secret seed.

    Use it as a context manager: it owns ``workers`` sandbox servers, and ``grade_many``
    grades that many submissions at a time. With ``isolated`` (the default) it refuses
    (IsolationError) unless every sandbox child gets namespaces of its own; without, it
    grades with what the machine allows, which is enough for one submission at a time.
    ``namespaces=False`` does not even try namespaces (to test what runs without them).
    """

    def __init__(
        self,
        assignment: Assignment,
        *,
        seed: int | None = None,
        limits: Limits = Limits(),
        workers: int = 1,
        isolated: bool = True,
        namespaces: bool = True,
    ):
        if seed == exercises.VISIBLE_SEED:
            raise ValueError("seed must not be the seed of the cases `check` shows students")
        # The sandbox servers start before any hidden case exists here (they are fresh
        # interpreters, so they could not see one anyway).
        forbidden = sorted({name for ex in assignment.exercises for name in ex.forbidden})
        self.pool = SandboxPool(workers, namespaces, tuple(forbidden))
        if self.pool.isolation == "root" or (isolated and self.pool.isolation != "namespaces"):
            self.pool.close()
            raise IsolationError(ISOLATION_HELP.format(detail=self.pool.detail))
        self.assignment, self.limits, self.workers = assignment, limits, workers
        while seed is None or seed == exercises.VISIBLE_SEED:
            seed = secrets.randbits(63)
        self.seed = seed
        self.hidden = {ex.id: hidden_cases(ex, self.seed) for ex in assignment.exercises}

    @property
    def isolation(self) -> str:
        """How the sandbox children are isolated: "namespaces", "uids" or "none"."""
        return self.pool.isolation

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the sandbox servers. Never raises."""
        self.pool.close()

    def grade_many(self, submissions: list[Path | Submission]) -> list[SubmissionResult]:
        """Grade several submissions, ``workers`` at a time; one failure never stops the rest."""
        executor = ThreadPoolExecutor(self.workers)
        try:
            return list(executor.map(self.grade, submissions))
        finally:  # after Ctrl-C, do not start the submissions still waiting
            executor.shutdown(cancel_futures=True)

    def ungradable(self, problem: str) -> SubmissionResult:
        """A result with score 0 for a file that cannot be graded."""
        tests = [
            TestResult(ex.id, test_name(ex), 0, ex.points, "error", f"Not graded: {problem}.")
            for ex in self.assignment.exercises
        ]
        return SubmissionResult(self.assignment.id, tests, [], problem)

    def grade(self, submission: Path | Submission) -> SubmissionResult:
        """Grade one submission. Never raises: a file that cannot be graded scores 0."""
        if not isinstance(submission, Submission):
            submission = Submission.of_file(Path(submission))
        try:
            return self._grade(submission)
        except (SubmissionError, OSError) as err:
            return self.ungradable(str(err))
        except Exception as err:  # a bug of ours must not cost the other submissions
            return self.ungradable(f"the grader failed on this file ({type(err).__name__}: {err})")

    def _grade(self, submission: Submission) -> SubmissionResult:
        cells = read_cells(submission)
        answers, notes = find_answers(self.assignment, cells)
        notes += integrity_notes(self.assignment, cells, answers)
        analysed = program.analyse(cells, [i for found in answers.values() for i in found])
        budget, crashed = _Budget(self.limits.submission_seconds), {}
        tests = [
            self._grade_exercise(ex, cells, answers[ex.id], analysed, budget, crashed)
            for ex in self.assignment.exercises
        ]
        return SubmissionResult(self.assignment.id, tests, notes)

    def _grade_exercise(
        self,
        ex: Exercise,
        cells: list[Cell],
        own: list[int],
        analysed: dict[int, AnswerCell],
        budget: _Budget,
        crashed: dict[int, str],
    ) -> TestResult:
        stubs = {cell.key() for cell in self.assignment.cells if cell.exercise == ex.id}
        if not own:
            return result(ex, "not_attempted", 0, f"Not attempted: no answer cell for {ex.name}.")
        if all(cells[index].key() in stubs for index in own):
            return result(ex, "not_attempted", 0, f"Not attempted: {ex.name} is still the stub.")
        errors = [analysed[index].error for index in own if analysed[index].error]
        if errors:
            return result(ex, "error", 0, "Your answer cell does not compile: " + "; ".join(errors))
        needed = program.program_of(ex, analysed, own)
        violations = [v for index in needed for v in analysed[index].violations]
        if violations:
            shown = "\n  ".join(violations[:10]) + ("\n  ..." if len(violations) > 10 else "")
            message = "Score 0: your answer cells use what no answer may use (see the README):"
            return result(ex, "forbidden", 0, f"{message}\n  {shown}")
        used = program.forbidden_uses(ex, [analysed[index] for index in needed])
        if used:
            message = f"Score 0: {ex.name} uses what this exercise asks you to write yourself: "
            return result(ex, "forbidden", 0, message + "; ".join(used[:10]))
        runnable = [index for index in needed if analysed[index].error is None]
        while True:
            run_cells = [index for index in runnable if index not in crashed]
            if budget.left <= 0:
                used = f"the submission's {self.limits.submission_seconds:g} s were used up"
                return result(ex, "timeout", 0, f"Not run: {used}.")
            run = self.pool.run(
                self._job(ex, analysed, run_cells),
                self.hidden[ex.id].arrays,
                min(self.limits.exercise_seconds, budget.left),
            )
            budget.charge(run.seconds)
            crash = next((i for i in run_cells if analysed[i].label == run.crashed_in), None)
            if crash is None:
                break
            # That cell ended the process at its top level: leave it out, and run again
            # unless the exercise's function needs it (its own cell, say).
            if run.ending == "timeout":
                crashed[crash] = "ran until the time limit"
            else:
                crashed[crash] = f"ended the process running it ({run.detail})"
            rest = [index for index in run_cells if index != crash]
            if crash in own or not any(ex.name in analysed[index].binds for index in rest):
                break
        notes = [
            f"Left out {cell_numbers([index])}: at its top level it {crashed[index]}."
            for index in needed
            if index in crashed and index not in run_cells
        ]
        return judge(ex, self.hidden[ex.id], run, self.limits, notes)

    def _job(self, ex: Exercise, analysed: dict[int, AnswerCell], indices: list[int]) -> dict:
        hidden = self.hidden[ex.id]
        return {
            "kind": "job",
            "cells": [(analysed[index].label, analysed[index].source) for index in indices],
            "name": ex.name,
            "forbidden": list(ex.forbidden),
            "n_outputs": ex.n_outputs,
            "draws": ex.draws,
            "returns": list(hidden.returns),
            "cases": hidden.wire,
            "max_bytes": hidden.max_bytes,
            "limits": {
                "cpu_seconds": math.ceil(self.limits.exercise_seconds) + 1,
                "memory_bytes": self.limits.memory_mb * 2**20,
                "output_chars": self.limits.output_chars,
            },
        }
