"""Result formats: a case's outcome, an exercise's TestResult, a submission's result and
its results.json in Gradescope's format.

Gradescope knows two test statuses, "passed" and "failed"; ours (one of STATUSES) is kept
in each test's ``extra_data.status``, next to the exercise id.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("passed", "failed", "error", "timeout", "memory", "not_attempted", "forbidden")


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
