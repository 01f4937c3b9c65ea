"""The ``course`` command: release notebooks and grade submissions.

course release [--check] [--no-execute]
course grade SUBMISSION.ipynb [--assignment ID] [--seed S] [--out results.json]
course grade-all DIR --out grades.csv [--assignment ID] [--workers N] [--seed S]
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="build notebooks/ from solutions/")
    p.add_argument("--check", action="store_true", help="exit 1 if notebooks/ is stale")
    p.add_argument("--no-execute", action="store_true", help="do not re-execute solutions/")
    p.set_defaults(func=cmd_release)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
