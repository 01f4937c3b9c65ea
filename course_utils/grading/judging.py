"""Judging: hidden cases and their expected outputs, and what a sandbox run earns.

Hidden cases come from ``ex.cases(np.random.default_rng(seed))`` with a secret seed (never
the public seed of ``check``); their expected outputs are computed here, with the
references, once per run. What comes back from the sandbox was already checked for
count and size (course_utils.grading.pool); here it is judged with ``exercises.judge``
(compared with the reference's output, or for a stochastic exercise tested for its
distribution), and ``exercises.diagnose`` adds a hint for known mistakes.

Score: points x (case groups passed / case groups), 0 if anything was forbidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course_utils import conversion, exercises, sandbox
from course_utils.exercises import Case, Exercise
from course_utils.grading.pool import SandboxRun
from course_utils.grading.results import PASSED, Outcome, TestResult

OUTPUT_SLACK = 4  # an output may be this many times the expected bytes (a wrong shape) ...
OUTPUT_ALLOWANCE = 64 * 2**10  # ... plus this much, before the sandbox refuses to send it


@dataclass(frozen=True)
class HiddenCases:
    """An exercise's hidden cases, their expected outputs, and what goes to the sandbox."""

    cases: list[Case]
    wants: list
    wire: list[dict]  # the cases' arguments as JSON (arrays by index)
    arrays: list[np.ndarray]
    returns: tuple[str, ...]  # per output, "tensor" or "float" (what the reference returns)
    max_bytes: list[int]  # per case, the most output bytes the sandbox may send


def hidden_cases(ex: Exercise, seed: int) -> HiddenCases:
    """Make an exercise's cases from ``seed`` and compute the expected outputs."""
    cases = ex.cases(np.random.default_rng(seed))
    wants = [exercises.expected(ex, case) for case in cases]
    first = {key: conversion.to_torch(value) for key, value in cases[0].args.items()}
    returns = conversion.result_kinds(ex.reference(**first), ex.n_outputs)
    arrays: list[np.ndarray] = []
    wire = [{key: sandbox.to_wire(v, arrays) for key, v in case.args.items()} for case in cases]
    max_bytes = [OUTPUT_SLACK * _nbytes(want) + OUTPUT_ALLOWANCE for want in wants]
    return HiddenCases(cases, wants, wire, arrays, returns, max_bytes)


def _nbytes(output) -> int:
    return sum(_nbytes(o) for o in output) if isinstance(output, tuple) else output.nbytes


def judge(
    ex: Exercise, hidden: HiddenCases, run: SandboxRun, limits, notes: list[str]
) -> TestResult:
    """Turn what a sandbox sent back into a scored TestResult (``limits``: the Limits the
    grader used); ``notes`` go at the end of the feedback."""
    outcomes = [None] * len(hidden.cases)
    for index, (header, arrays) in run.cases.items():
        case, want = hidden.cases[index], hidden.wants[index]
        outcomes[index] = _judge_case(ex, case, want, header, arrays, limits.memory_mb)
    unfinished = _unfinished(run, limits)
    outcomes = [outcome or unfinished for outcome in outcomes]

    groups: dict[str, Outcome] = {}  # per group, its first failure (else PASSED)
    for case, outcome in zip(hidden.cases, outcomes, strict=True):
        if groups.get(case.group, PASSED).status == "passed":
            groups[case.group] = outcome
    status = status_of({outcome.status for outcome in outcomes})
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
    cell_errors = [_raised(h).message for h in run.cells.values() if h.get("ok") is False]
    if cell_errors:
        lines.append("Your answer cells raised an error when they ran:")
        lines += [f"  {error}" for error in cell_errors[:10]]
        if len(cell_errors) > 10:
            lines.append(f"  ... and {len(cell_errors) - 10} more")
    lines += notes
    if run.output:
        lines.append(f"Your code printed (first {limits.output_chars} characters):")
        lines.append(text(run.output, limits.output_chars + 50))
    return result(ex, status, score, "\n".join(lines))


def _judge_case(ex: Exercise, case: Case, want, header: dict, arrays: list, memory_mb: int):
    outcome = header.get("outcome")
    if outcome == "raised":
        raised = _raised(header)
        if raised.status == "memory":
            return Outcome("memory", f"{raised.message} (limit {memory_mb} MB)")
        return raised
    if outcome == "bad_output":
        return Outcome("error", f"your function {text(header.get('message'))}")
    if outcome != "ok" or len(arrays) != ex.n_outputs * ex.draws:
        return Outcome("error", "the sandbox sent an invalid result")
    got = exercises.outputs_from_arrays(ex, arrays)
    with np.errstate(all="ignore"):
        problem = exercises.judge(ex, case, want, got)
        if problem is None:
            return PASSED
        hint = exercises.diagnose(ex, case, got)
    return Outcome("failed", problem + (f"\nhint: {hint}" if hint else ""))


def _unfinished(run: SandboxRun, limits) -> Outcome:
    """The outcome of the cases that got no result."""
    during = f" while it ran {run.crashed_in} at the top level" if run.crashed_in else ""
    if run.ending == "timeout":
        detail = f"; {run.detail}" if run.detail else ""
        return Outcome(
            "timeout",
            f"stopped at the time limit{during} ({limits.exercise_seconds:g} s per exercise, "
            f"{limits.submission_seconds:g} s per submission{detail})",
        )
    if run.ending == "exited":
        why = "" if during else ": did it exit, kill itself or crash?"
        return Outcome("error", f"the process running your code ended ({run.detail}){during}{why}")
    if run.ending == "invalid":
        return Outcome("error", f"the sandbox sent invalid data ({run.detail})")
    return Outcome("error", "no result")


def status_of(statuses: set[str]) -> str:
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
    kind, message = text(header.get("type"), 100), text(header.get("message"))
    where = text(header.get("where"), 100)
    said = f"raised {kind}" + (f": {message}" if message else "") + (f" ({where})" if where else "")
    if kind == "NotImplementedError":
        return Outcome("not_attempted", said)
    if kind == "ForbiddenCallError":
        return Outcome("forbidden", message)
    if kind == "MemoryError" or "allocate memory" in message:
        return Outcome("memory", said)
    return Outcome("error", said)


def text(value, limit: int = 500) -> str:
    """A string from the sandbox, shortened; anything else becomes ''."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= limit else value[:limit] + " [...]"


def test_name(ex: Exercise) -> str:
    return f"{ex.id}: {ex.title}"


def result(ex: Exercise, status: str, score: float, output: str) -> TestResult:
    return TestResult(ex.id, test_name(ex), score, ex.points, status, output)
