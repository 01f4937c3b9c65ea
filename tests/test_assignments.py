"""Every assignment in solutions/, graded end to end through the sandbox (a new lecture gets
these tests by adding its notebook).

Per assignment, one grader grades: the released notebook with the solution's answers
(full marks), the released notebook untouched (0, every exercise not attempted), and for
each exercise the solution with that one answer wrong (exactly its points lost). The
seed is random: the solutions must pass whatever hidden cases the grader makes.
"""

import shutil

import pytest
import submissions as subs

from course_utils import grading

from conftest import NOTEBOOKS, SOLUTIONS

ASSIGNMENTS = sorted(path.stem for path in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
LIMITS = grading.Limits(exercise_seconds=10, submission_seconds=60, memory_mb=1024)


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """(assignment, {submission name: SubmissionResult})."""
    assignment = grading.load_assignment(request.param, NOTEBOOKS)
    folder = tmp_path_factory.mktemp(request.param)
    answers = subs.solution_answers(request.param)
    paths = {"solution": folder / "solution.ipynb", "untouched": folder / "untouched.ipynb"}
    subs.write_submission(paths["solution"], answers, assignment=request.param)
    shutil.copy(NOTEBOOKS / f"{request.param}.ipynb", paths["untouched"])
    for ex in assignment.exercises:
        wrong = answers | {ex.id: subs.wrong_answer(answers[ex.id], ex.name)}
        paths[ex.id] = subs.write_submission(
            folder / f"wrong_{ex.id}.ipynb", wrong, assignment=request.param
        )
    # One sandbox server: the submissions are small, and a second one costs an import of torch.
    with grading.Grader(assignment, limits=LIMITS, workers=1) as grader:
        results = grader.grade_many(list(paths.values()))
    return assignment, dict(zip(paths, results, strict=True))


def _statuses(result) -> dict[str, str]:
    return {test.exercise: test.status for test in result.tests}


def test_the_solution_scores_the_maximum(graded):
    assignment, results = graded
    result = results["solution"]
    assert _statuses(result) == {ex.id: "passed" for ex in assignment.exercises}, [
        test.output for test in result.tests if test.status != "passed"
    ]
    assert result.score == result.max_score == sum(ex.points for ex in assignment.exercises)
    assert result.notes == []


def test_the_released_notebook_scores_0_not_attempted(graded):
    assignment, results = graded
    result = results["untouched"]
    assert result.score == 0
    assert _statuses(result) == {ex.id: "not_attempted" for ex in assignment.exercises}


def test_one_wrong_answer_costs_exactly_its_points(graded):
    assignment, results = graded
    for ex in assignment.exercises:
        result = results[ex.id]
        others = {other.id: "passed" for other in assignment.exercises if other is not ex}
        assert _statuses(result) == others | {ex.id: "failed"}, ex.id
        assert result.score == pytest.approx(result.max_score - ex.points), ex.id
