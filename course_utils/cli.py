"""The ``course`` command: release notebooks and grade submissions.

course release [--check] [--no-execute]
course grade SUBMISSION.ipynb [--assignment ID] [--seed S] [--out results.json]
course grade-all DIR --out grades.csv [--assignment ID] [--workers N] [--seed S]
                 [--results-dir DIR]

Both grade commands also take --exercise-timeout, --submission-timeout and --memory-mb.
"""

import argparse
import sys
from pathlib import Path


def _repo_root() -> Path:
    """The course repository: the current directory or the one holding course_utils."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (candidate / "solutions").is_dir():
            return candidate
    raise SystemExit("course: run this from the course repository (no solutions/ folder here)")


def cmd_release(args) -> int:
    from course_utils import release

    root = _repo_root()
    solutions, notebooks = root / "solutions", root / "notebooks"
    if args.check:
        problems = release.release(solutions, notebooks, check=True)
        for problem in problems:
            print(problem)
        if problems:
            print("notebooks/ is out of date: run `make release` and commit both folders.")
            return 1
        print("notebooks/ is up to date with solutions/.")
        return 0
    if not args.no_execute:
        for path in sorted(solutions.glob("[0-9][0-9]_*.ipynb")):
            print(f"executing {path.relative_to(root)}", flush=True)
            release.execute_in_place(path)
    for written in release.release(solutions, notebooks):
        print(f"wrote {Path(written).relative_to(root)}")
    return 0


def _grader(args, assignment_id: str, workers: int = 1):
    """A Grader for the assignment, with the limits and seed the options give."""
    from course_utils import grading

    try:
        assignment = grading.load_assignment(assignment_id, _repo_root() / "notebooks")
    except ValueError as err:
        raise SystemExit(f"course: {err}") from None
    limits = grading.Limits(
        exercise_seconds=args.exercise_timeout,
        submission_seconds=args.submission_timeout,
        memory_mb=args.memory_mb,
    )
    grader = grading.Grader(assignment, seed=args.seed, limits=limits, workers=workers)
    if args.seed is None:  # to stderr, so that it stays out of saved output
        print(f"seed {grader.seed} (pass --seed to grade the same cases again)", file=sys.stderr)
    return grader


def cmd_grade(args) -> int:
    from course_utils import grading

    submission = Path(args.submission)
    assignment_id = args.assignment or grading.assignment_of(submission)
    if assignment_id is None:
        raise SystemExit(
            f"course: {submission} does not name its assignment (metadata.course.assignment); "
            "pass --assignment ID"
        )
    with _grader(args, assignment_id) as grader:
        result = grader.grade(submission)
    grading.write_results(result, Path(args.out))
    print(result.table())
    print(f"wrote {args.out}")
    return 0


def cmd_grade_all(args) -> int:
    from course_utils import grading

    directory = Path(args.directory)
    if not directory.is_dir():
        raise SystemExit(f"course: {directory} is not a folder")
    submissions = grading.find_submissions(directory, args.assignment)
    assignment_id = args.assignment
    if assignment_id is None:
        named = {grading.assignment_of(path) for _, path in submissions} - {None}
        if len(named) != 1:
            raise SystemExit(
                f"course: the submissions name {len(named)} assignments; pass --assignment ID"
            )
        assignment_id = named.pop()
    if args.results_dir:
        Path(args.results_dir).mkdir(parents=True, exist_ok=True)
    with _grader(args, assignment_id, workers=args.workers) as grader:
        results = grader.grade_many([path for _, path in submissions])
    rows = []
    for (student, path), result in zip(submissions, results, strict=True):
        rows.append((student, path.relative_to(directory), result))
        print(f"{result.score:6.2f} / {result.max_score:<3g} {student}")
        if args.results_dir:
            grading.write_results(result, Path(args.results_dir) / f"{student}.json")
    grading.write_gradebook(rows, grader.assignment, Path(args.out))
    print(f"graded {len(rows)} submissions; wrote {args.out}")
    return 0


def _add_grading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--assignment", help="notebook stem, e.g. 01_losses_and_softmax_gradients")
    p.add_argument(
        "--seed", type=_at_least(0), help="seed of the hidden cases (default: secret, random)"
    )
    p.add_argument(
        "--exercise-timeout", type=_at_least(0.1, float), default=10.0, help="seconds per exercise"
    )
    p.add_argument(
        "--submission-timeout",
        type=_at_least(0.1, float),
        default=60.0,
        help="seconds per submission",
    )
    p.add_argument(
        "--memory-mb", type=_at_least(64), default=2048, help="memory limit of the sandbox"
    )


def _at_least(low, kind=int):
    """An argparse type: a number of ``kind`` that is >= ``low``."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value

    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="build notebooks/ from solutions/")
    p.add_argument("--check", action="store_true", help="exit 1 if notebooks/ is stale")
    p.add_argument("--no-execute", action="store_true", help="do not re-execute solutions/")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade", help="grade one submission in a sandbox")
    p.add_argument("submission", help="the submitted notebook")
    p.add_argument("--out", default="results.json", help="where to write results.json")
    _add_grading_options(p)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("grade-all", help="grade a folder of submissions into a CSV gradebook")
    p.add_argument("directory", help="one file or folder per student")
    p.add_argument("--out", default="grades.csv", help="where to write the gradebook")
    p.add_argument("--workers", type=_at_least(1), default=2, help="submissions graded in parallel")
    p.add_argument("--results-dir", help="also write <student>.json results here")
    _add_grading_options(p)
    p.set_defaults(func=cmd_grade_all)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
