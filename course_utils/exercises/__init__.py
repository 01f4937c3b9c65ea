"""The exercise registry: every exercise of the course, declared once.

An exercise says which function the student writes (``name``), how many points it is
worth, the reference it is compared with (a public function of its topic module), a
seeded generator of test cases, how answers are judged, and the calls the answer may
not use. Two consumers read it:

- ``course_utils.checks.check(id, fn)`` runs the *visible* cases (a fixed public seed)
  in the student's kernel and prints precise feedback;
- ``course grade`` makes *hidden* cases from a secret seed, sends their inputs to a
  sandboxed process and judges what comes back in its own process.

So cases are plain data in, plain data out: a case's ``args`` hold NumPy arrays,
Python numbers, strings, booleans, ``GeneratorSeed``s and tuples of these; an output is
a NumPy array or a tuple of NumPy arrays. ``run_case(ex, fn, case)`` is the one place
that turns a case into call arguments, calls a function and turns its result back into
arrays.

Two kinds of exercise:

- *deterministic* (``judge=None``): the answer's output is compared with the
  reference's, exactly for integer and boolean arrays, within ``rtol``/``atol`` for
  floating-point ones (``compare``);
- *stochastic* (``judge`` set): the answer receives a seeded ``torch.Generator`` (a
  ``GeneratorSeed`` among the case's arguments) and is called twice with the same seed.
  The two outputs must be identical (the answer draws from the generator it was given),
  have the reference's shapes and dtypes, and pass ``judge(case, output)``, which tests
  distribution properties on a large sample with ``course_utils.exercises.stats``.

Lecture modules (``lecture01.py``, ...) register their exercises when imported; they
are found automatically, so a new lecture adds its module and edits nothing here.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from course_utils import _lectures
from course_utils.conversion import GeneratorSeed, to_arrays, to_torch

__all__ = [
    "EXERCISE_TAG",
    "FLOAT32_TOL",
    "REGISTRY",
    "VISIBLE_SEED",
    "Case",
    "Exercise",
    "GeneratorSeed",
    "Mistake",
    "compare",
    "diagnose",
    "expected",
    "for_lecture",
    "forbidden_uses",
    "get",
    "judge",
    "register",
    "run_case",
    "tagged_exercise",
]

VISIBLE_SEED = 20260101  # the seed of the cases `check` shows; the grader uses a secret one

Output = np.ndarray | tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Case:
    """One test input: the case group it belongs to and the keyword arguments."""

    group: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation and the message shown when an answer matches it."""

    message: str
    fn: Callable


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``cases(rng)`` must return the same groups for every seed."""

    id: str  # "01.softmax": lecture number, dot, short name
    name: str  # the function the answer cell defines
    title: str
    points: int
    reference: Callable  # a public function of the exercise's topic module
    cases: Callable[[np.random.Generator], list[Case]]
    rtol: float = 1e-6  # float64 tolerances; float32 outputs get at least FLOAT32_TOL
    atol: float = 1e-8
    forbidden: tuple[str, ...] = ()  # attribute names the answer may not use (torch.softmax, ...)
    mistakes: tuple[Mistake, ...] = field(default=())
    n_outputs: int = 1  # how many tensors the function returns (a tuple when > 1)
    # None: deterministic. Else stochastic: judge(case, output) -> what is wrong, or None.
    judge: Callable[[Case, Output], str | None] | None = None

    @property
    def kind(self) -> str:
        """ "deterministic" or "stochastic"."""
        return "deterministic" if self.judge is None else "stochastic"

    @property
    def draws(self) -> int:
        """How many times the answer is called per case (stochastic: twice, same seed)."""
        return 1 if self.judge is None else 2

    def visible_cases(self) -> list[Case]:
        return self.cases(np.random.default_rng(VISIBLE_SEED))

    def groups(self) -> list[str]:
        return list(dict.fromkeys(case.group for case in self.visible_cases()))


FLOAT32_TOL = (1e-5, 1e-6)  # (rtol, atol)

REGISTRY: dict[str, Exercise] = {}


def register(*exercises: Exercise) -> None:
    for ex in exercises:
        if ex.id in REGISTRY:
            raise ValueError(f"exercise id {ex.id!r} is registered twice")
        REGISTRY[ex.id] = ex


def get(exercise_id: str) -> Exercise:
    """The exercise with this id, e.g. ``get("01.softmax")``."""
    _load_all()
    if exercise_id not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"exercise_id must be one of: {known}; got {exercise_id!r}")
    return REGISTRY[exercise_id]


def for_lecture(lecture: str) -> list[Exercise]:
    """The exercises of one lecture, by its two-digit number ("01") or notebook stem."""
    _load_all()
    number = lecture[:2]
    return [ex for ex in REGISTRY.values() if ex.id.split(".")[0] == number]


EXERCISE_TAG = "exercise:"  # an answer cell carries the cell tag "exercise:<id>"


def tagged_exercise(tags: list[str]) -> str | None:
    """The exercise id in a cell's tags (``"exercise:01.softmax"`` -> ``"01.softmax"``), if any."""
    return next((t.removeprefix(EXERCISE_TAG) for t in tags if t.startswith(EXERCISE_TAG)), None)


def _load_all() -> None:
    # Import the lecture modules; each registers its exercises on import.
    _lectures.lecture_modules(__name__, __path__)


# --- running a case -------------------------------------------------------------------


def outputs_from_arrays(ex: Exercise, arrays: list[np.ndarray]):
    """A flat list of ``ex.draws * ex.n_outputs`` arrays -> an Output, or for a stochastic
    exercise the pair (first draw, second draw) of Outputs."""
    n = ex.n_outputs
    outputs = [tuple(arrays[i : i + n]) if n > 1 else arrays[i] for i in range(0, len(arrays), n)]
    return outputs[0] if ex.draws == 1 else tuple(outputs)


def run_case(ex: Exercise, fn: Callable, case: Case):
    """Call ``fn`` on a case's arguments (as tensors) and return plain arrays.

    A deterministic exercise gives its Output; a stochastic one calls ``fn`` twice, each
    time with a fresh generator seeded alike, and gives the pair of Outputs.
    """
    arrays = []
    for _ in range(ex.draws):
        args = {key: to_torch(value) for key, value in case.args.items()}
        arrays += to_arrays(fn(**args), ex.n_outputs)
    return outputs_from_arrays(ex, arrays)


def expected(ex: Exercise, case: Case):
    """The reference's output for a case (for a stochastic exercise: its two draws)."""
    return run_case(ex, ex.reference, case)


# --- judging --------------------------------------------------------------------------


def judge(ex: Exercise, case: Case, want, got) -> str | None:
    """None when ``got`` is a right answer for ``case``; otherwise what is wrong, in words.

    ``want`` and ``got`` are what ``run_case`` returns for the reference and the answer,
    as plain data (exact numpy.ndarray types). The message never contains expected
    values, so the grader can show it for hidden cases.
    """
    if ex.draws == 1:
        return compare(ex, want, got)
    (want_first, _), (first, again) = want, got
    problem = _compare_layout(want_first, first)
    if problem:
        return problem
    if _compare_layout(first, again) or not _identical(first, again):
        return (
            "two calls with generators in the same state gave different results: draw every "
            "random number from the `generator` argument (e.g. torch.randn(..., generator=g))"
        )
    with np.errstate(all="ignore"):
        return ex.judge(case, first)


def compare(ex: Exercise, want: Output, got: Output) -> str | None:
    """None when ``got`` equals ``want`` within the exercise's tolerances; else what differs."""
    with np.errstate(all="ignore"):  # inf and NaN in an answer are reported, not warned about
        problem = _compare_layout(want, got)
        if problem:
            return problem
        wants = want if isinstance(want, tuple) else (want,)
        gots = got if isinstance(got, tuple) else (got,)
        for i, (w, g) in enumerate(zip(wants, gots, strict=True)):
            problem = _compare_values(ex, w, g)
            if problem:
                return (f"output {i}: " if len(wants) > 1 else "") + problem
    return None


def _compare_layout(want: Output, got: Output) -> str | None:
    """Types, shapes and dtypes of the outputs."""
    wants = want if isinstance(want, tuple) else (want,)
    gots = got if isinstance(got, tuple) else (got,)
    if len(gots) != len(wants):
        return f"expected {len(wants)} outputs, got {len(gots)}"
    for i, (w, g) in enumerate(zip(wants, gots, strict=True)):
        what = f"output {i}: " if len(wants) > 1 else ""
        if type(g) is not np.ndarray:
            return f"{what}expected an array, got {type(g).__name__}"
        if g.shape != w.shape:
            return f"{what}wrong shape: expected {w.shape}, got {g.shape}"
        if g.dtype != w.dtype:
            return f"{what}wrong dtype: expected {w.dtype}, got {g.dtype}"
    return None


def _identical(a: Output, b: Output) -> bool:
    pairs = zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]
    return all(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc") for x, y in pairs)


def _compare_values(ex: Exercise, want: np.ndarray, got: np.ndarray) -> str | None:
    if want.dtype.kind not in "fc":
        bad = int(np.sum(got != want))
        return f"{bad} of {want.size} entries differ" if bad else None
    n_nan, n_inf = int(np.isnan(got).sum()), int(np.isinf(got).sum())
    if (n_nan or n_inf) and np.isfinite(want).all():
        return f"got {n_nan} NaN and {n_inf} inf entries where every value should be finite"
    rtol, atol = ex.rtol, ex.atol
    if want.dtype == np.float32:
        rtol, atol = max(rtol, FLOAT32_TOL[0]), max(atol, FLOAT32_TOL[1])
    if np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
        return None
    # Counts and a relative error only: absolute errors would reveal expected values.
    w, g = want.astype(np.float64), got.astype(np.float64)
    outside = ~np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    rel = np.abs(g - w)[outside] / np.maximum(np.abs(w[outside]), atol)
    tolerance = f"rtol={rtol:g}, atol={atol:g}"
    if want.size == 1:
        message = f"wrong value: relative error {rel.max():.3g} ({tolerance})"
    else:
        message = (
            f"values differ: {int(outside.sum())} of {want.size} entries outside the "
            f"tolerance ({tolerance}), max relative error {rel.max():.3g}"
        )
    factor = _constant_factor(want, got)
    if factor is not None:
        message += f"; your values are {factor:.4g} times the expected ones"
    return message


def _constant_factor(want: np.ndarray, got: np.ndarray) -> float | None:
    """If got == c * want for one constant c != 1, return c (a forgotten 1/N, say)."""
    mask = np.abs(want) > 1e-6
    if mask.sum() < 1 or not np.isfinite(got).all():
        return None
    ratios = got[mask].astype(np.float64) / want[mask].astype(np.float64)
    c = float(np.median(ratios))
    if math.isclose(c, 1.0, rel_tol=1e-3) or not np.allclose(ratios, c, rtol=1e-4):
        return None
    return c


def diagnose(ex: Exercise, case: Case, got) -> str | None:
    """The message of the first known mistake whose output ``got`` matches, if any.

    Deterministic: the mistake's output equals ``got`` within the tolerances.
    Stochastic: the mistake is wrong for this case (it fails the judge) and, called
    with the same generator seed, gives the same output, or (an answer may draw its
    numbers in another order) every output array looks like a sample from the same
    distribution as the mistake's (``stats.same_distribution``).
    """
    from course_utils.exercises import stats

    for mistake in ex.mistakes:
        try:
            with np.errstate(all="ignore"):
                theirs = run_case(ex, mistake.fn, case)
        except Exception:
            continue
        if ex.draws == 1:
            if compare(ex, theirs, got) is None:
                return mistake.message
        elif (
            _compare_layout(theirs[0], got[0]) is None
            and ex.judge(case, theirs[0]) is not None  # the mistake is wrong for this case
            and (_identical(theirs[0], got[0]) or stats.same_distribution(theirs[0], got[0]))
        ):
            return mistake.message
    return None


# --- forbidden calls ------------------------------------------------------------------

ALWAYS_FORBIDDEN_MODULES = ("course_utils",)


def forbidden_uses(ex: Exercise, source: str) -> list[str]:
    """Forbidden calls in an answer's source: ``x.softmax``, ``F.softmax``, ``import course_utils``.

    An answer may define and call its own helper named like a forbidden function; only
    attribute access (``torch.softmax``, ``z.softmax()``) and imports are flagged. The
    grader also disables the forbidden functions at run time, which catches
    ``getattr(torch, "soft" + "max")``.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ex.forbidden:
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [alias.name for alias in node.names]
            if isinstance(node, ast.ImportFrom):
                imported = [alias.name for alias in node.names]
                if any(name in ex.forbidden for name in imported):
                    found.append(f"import of {', '.join(imported)} (line {node.lineno})")
                modules = [node.module or ""]
            for module in modules:
                if module.split(".")[0] in ALWAYS_FORBIDDEN_MODULES:
                    found.append(f"import of {module} (line {node.lineno})")
    return found
