"""Instant feedback on exercises, inside the student's notebook.

    check("01.softmax", softmax)

runs the exercise's visible cases (see course_utils.exercises) and prints one line per
case group; for the first failing case of a group it shows the input, the expected and
the actual values, the error, and a hint when the answer matches a known mistake
(an unstable formula, a forgotten 1/N, the wrong axis, ...).

    softmax_impl = use("01.softmax", softmax)

returns the student's function when it passes its checks and the reference otherwise,
with a one-line notice, so an unsolved notebook still runs top to bottom.

Grading is not done here: this runs in the student's own kernel, where anything can be
patched. `course grade` runs hidden cases in a sandbox instead.
"""

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from course_utils import exercises
from course_utils.exercises import Case, Exercise
from course_utils.sandbox import OutputError

__all__ = ["CheckReport", "check", "run_check", "use"]


@dataclass
class CheckReport:
    """What `check` found: per case group, None when it passed, else the failure text."""

    exercise: Exercise
    status: str  # "passed", "failed", "not implemented", "forbidden"
    groups: dict[str, str | None] = field(default_factory=dict)  # group -> problem or None
    details: str = ""  # input, expected and actual values of the first failing case
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def text(self) -> str:
        ex = self.exercise
        head = f"{ex.id}: {ex.title} ({ex.points} point{'s' if ex.points != 1 else ''})"
        if self.status in ("not implemented", "forbidden"):
            return f"{head}\n  {self.message}"
        lines = [head]
        for group, failure in self.groups.items():
            if failure is None:
                lines.append(f"  ok   {group}")
            else:
                lines.append(f"  FAIL {group}: {failure}")
        if self.details:
            lines.append(textwrap.indent(self.details, "  "))
        n_ok = sum(failure is None for failure in self.groups.values())
        verdict = "All checks passed." if self.passed else "Not yet: start with the first failure."
        lines.append(f"{n_ok}/{len(self.groups)} case groups pass. {verdict}")
        return "\n".join(lines)


def run_check(exercise_id: str, fn: Callable) -> CheckReport:
    """Run the visible cases of an exercise on ``fn`` and return a report (prints nothing)."""
    ex = exercises.get(exercise_id)
    if not callable(fn):
        raise TypeError(f"fn must be the function you wrote for {ex.name}, got {type(fn).__name__}")

    used = exercises.forbidden_uses(ex, _source(fn))
    if used:
        return CheckReport(
            ex,
            "forbidden",
            message=f"Your {ex.name} uses something this exercise asks you to write yourself: "
            + "; ".join(used),
        )

    report = CheckReport(ex, "passed")
    for case in ex.visible_cases():
        if report.groups.get(case.group) is not None:
            continue  # one failure per group is enough
        want, got = None, None
        try:
            with np.errstate(all="ignore"):
                got = exercises.run_case(ex, fn, case)
        except NotImplementedError:
            report.status = "not implemented"
            report.message = (
                f"not implemented yet: replace `raise NotImplementedError` in {ex.name} "
                "with your code."
            )
            return report
        except OutputError as err:
            problem = f"your function {err}"
        except Exception as err:
            problem = f"raised {type(err).__name__}: {err}"
        else:
            want = exercises.expected(ex, case)
            problem = exercises.judge(ex, case, want, got)
        report.groups[case.group] = problem
        if problem is not None and not report.details:
            hint = exercises.diagnose(ex, case, got) if got is not None else None
            if ex.kind == "stochastic":  # random outputs: nothing exact to expect
                want, got = None, None if got is None else got[0]
            report.details = _details(case, problem, want, got, hint)
    if any(problem is not None for problem in report.groups.values()):
        report.status = "failed"
    return report


def check(exercise_id: str, fn: Callable) -> None:
    """Check your function against the exercise's visible cases and print the report."""
    print(run_check(exercise_id, fn).text())


def use(exercise_id: str, fn: Callable) -> Callable:
    """Your function if it passes its checks, else the reference (with a one-line notice)."""
    report = run_check(exercise_id, fn)
    if report.passed:
        return fn
    why = (
        "is not implemented yet"
        if report.status == "not implemented"
        else "does not pass its checks yet"
    )
    print(f"Note: your {report.exercise.name} {why}; the experiments below use the reference.")
    return report.exercise.reference


def _source(fn: Callable) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return ""  # a builtin or a lambda typed at a prompt: nothing to inspect


def _show(value, indent: int = 0) -> str:
    """A value for the report; continuation lines of arrays are indented by ``indent``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v, indent + 1) for v in value) + ")"
    if isinstance(value, exercises.GeneratorSeed):
        return f"torch.Generator().manual_seed({value.seed})"
    if isinstance(value, np.ndarray) and value.size > 24 and (value == value.flat[0]).all():
        return f"all {value.flat[0]} (shape {value.shape}, {value.dtype})"
    if isinstance(value, np.ndarray):
        body = np.array2string(value, precision=4, threshold=24, edgeitems=3, suppress_small=True)
        body = body.replace("\n", "\n" + " " * indent)
        if value.ndim == 0:
            return f"{body} ({value.dtype})"
        return f"{body} (shape {value.shape}, {value.dtype})"
    return repr(value)


def _details(case: Case, problem: str, want=None, got=None, hint: str | None = None) -> str:
    lines = [f"First failure ({case.group}):", "  input:"]
    lines += [f"    {key} = {_show(value, len(key) + 7)}" for key, value in case.args.items()]
    if want is not None:
        lines += [f"  expected: {_show(want, 12)}", f"  got:      {_show(got, 12)}"]
    elif got is not None:
        lines.append(f"  got:      {_show(got, 12)}")
    lines.append(f"  problem: {problem}")
    if hint:
        lines.append(f"  hint: {hint}")
    return "\n".join(lines)
