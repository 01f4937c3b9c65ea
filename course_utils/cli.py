"""The ``course`` command: release notebooks and grade submissions.

course release [--check] [--no-execute]
course grade SUBMISSION.ipynb [--assignment ID] [--seed S] [--out results.json]
course grade-all DIR --out grades.csv [--assignment ID] [--workers N] [--seed S]
                 [--results-dir DIR] [--shard K/N]
course merge-gradebooks SHARD.csv... --out grades.csv

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


def _grader(args, assignment_id: str, workers: int = 1, isolated: bool = True):
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
    try:
        grader = grading.Grader(
            assignment, seed=args.seed, limits=limits, workers=workers, isolated=isolated
        )
    except (grading.IsolationError, ValueError) as err:
        raise SystemExit(f"course: {err}") from None
    if grader.isolation != "namespaces":
        print(
            f"course: grading without namespaces ({grader.pool.detail}); each sandbox "
            f"runs as {'a user id of its own' if grader.isolation == 'uids' else 'your user'}",
            file=sys.stderr,
        )
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
    # One submission: no other student's sandbox runs next to it, so it may be graded
    # where namespaces are not available.
    with _grader(args, assignment_id, isolated=False) as grader:
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
    if args.shard and args.seed is None:
        raise SystemExit("course: --shard needs --seed: every shard must grade the same cases")
    submissions = grading.find_submissions(directory, args.assignment)
    assignment_id = args.assignment
    if assignment_id is None:
        named = {grading.assignment_of(s) for s in submissions if not s.problem} - {None}
        if len(named) != 1:
            raise SystemExit(
                f"course: the submissions name {len(named)} assignments; pass --assignment ID"
            )
        assignment_id = named.pop()
    if args.shard:
        submissions = grading.in_shard(submissions, *args.shard)
    if args.results_dir:
        Path(args.results_dir).mkdir(parents=True, exist_ok=True)
    with _grader(args, assignment_id, workers=args.workers) as grader:
        results = grader.grade_many(submissions)
        # Written before the sandbox servers stop, so that nothing in their teardown
        # can keep the gradebook from being written.
        rows = []
        for submission, result in zip(submissions, results, strict=True):
            rows.append(grading.gradebook_row(submission, result))
            print(f"{result.score:6.2f} / {result.max_score:<3g} {submission.student}")
            if args.results_dir:
                path = Path(args.results_dir) / grading.results_name(submission.entry)
                try:
                    grading.write_results(result, path)
                except OSError as err:
                    print(f"course: could not write {path}: {err}", file=sys.stderr)
        ids = [ex.id for ex in grader.assignment.exercises]
        grading.write_gradebook(rows, grading.gradebook_header(ids), Path(args.out))
    print(f"graded {len(rows)} submissions; wrote {args.out}")
    return 0


def cmd_merge_gradebooks(args) -> int:
    from course_utils import grading

    try:
        count = grading.merge_gradebooks([Path(p) for p in args.gradebooks], Path(args.out))
    except (ValueError, OSError) as err:
        raise SystemExit(f"course: {err}") from None
    print(f"merged {len(args.gradebooks)} gradebooks, {count} students; wrote {args.out}")
    return 0


def _shard(text: str) -> tuple[int, int]:
    """An argparse type: "K/N" with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 3/8, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"K/N needs 1 <= K <= N, got {text}")
    return k, n


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
    p.add_argument(
        "--shard", type=_shard, help="grade only shard K of N (1 <= K <= N; needs --seed)"
    )
    _add_grading_options(p)
    p.set_defaults(func=cmd_grade_all)

    p = sub.add_parser("merge-gradebooks", help="merge the gradebooks of the shards of one run")
    p.add_argument("gradebooks", nargs="+", help="the shards' grades.csv files")
    p.add_argument("--out", default="grades.csv", help="where to write the merged gradebook")
    p.set_defaults(func=cmd_merge_gradebooks)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
