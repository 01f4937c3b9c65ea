"""Grading throughput for lecture 01: how long `course grade` takes per submission.

Setup: the released notebook with every answer cell replaced by the solution's (a
submission that scores 14/14). Measured, as wall-clock seconds:

- cold: `course grade SUBMISSION` in a fresh process (Python start, `import torch` in the
  grader and in its sandbox server, grading, writing results.json); median of COLD_RUNS;
- batch: `course grade-all` of N_COPIES copies with --workers 2, end to end;
- batch, servers running: the same copies through grading.Grader.grade_many, timed
  after the sandbox servers have started (their start-up is reported separately).

Target: well under 1 s per submission amortized (torch is imported once per sandbox
server, which forks a fresh child per exercise).

    python benchmarks/bench_grader.py
"""

import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_utils import grading, release

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_losses_and_softmax_gradients"
N_COPIES = 100
WORKERS = 2
COLD_RUNS = 3


def solved_notebook() -> dict:
    """The released notebook with the solution's answer cells (as plain JSON)."""
    released = json.loads((ROOT / "notebooks" / f"{ASSIGNMENT}.ipynb").read_text())
    solution = json.loads((ROOT / "solutions" / f"{ASSIGNMENT}.ipynb").read_text())
    answers = {
        release.exercise_id(cell): cell["source"]
        for cell in solution["cells"]
        if release.exercise_id(cell)
    }
    for cell in released["cells"]:
        if release.exercise_id(cell):
            cell["source"] = answers[release.exercise_id(cell)]
    return released


def run(command: list[str]) -> float:
    """Run a `course` command from the repository; return its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    course = [sys.executable, "-m", "course_utils.cli"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "submissions"
        folder.mkdir()
        text = json.dumps(solved_notebook())
        paths = [folder / f"student{i:03d}.ipynb" for i in range(N_COPIES)]
        for path in paths:
            path.write_text(text)

        results = Path(scratch) / "results.json"
        cold = statistics.median(
            run([*course, "grade", str(paths[0]), "--out", str(results)]) for _ in range(COLD_RUNS)
        )
        assert json.loads(results.read_text())["score"] == 14

        grades = Path(scratch) / "grades.csv"
        batch = run(
            [*course, "grade-all", str(folder), "--workers", str(WORKERS), "--out", str(grades)]
        )
        with grades.open(newline="") as file:
            assert {row["total"] for row in csv.DictReader(file)} == {"14"}

        assignment = grading.load_assignment(ASSIGNMENT, ROOT / "notebooks")
        start = time.perf_counter()
        with grading.Grader(assignment, workers=WORKERS) as grader:
            started = time.perf_counter() - start
            start = time.perf_counter()
            scores = {result.score for result in grader.grade_many(paths)}
            warm = time.perf_counter() - start
        assert scores == {14}

    rows = [
        ("course grade, 1 submission, cold", 1, cold),
        (f"course grade-all, {N_COPIES} copies, --workers {WORKERS}", N_COPIES, batch),
        ("  the same, sandbox servers already running", N_COPIES, warm),
    ]
    print(f"Grading lecture 01 ({ASSIGNMENT}), a 14/14 submission, on this machine")
    print(f"{'run':<48} {'wall s':>8} {'subm./s':>8} {'s/subm.':>8}")
    for label, count, seconds in rows:
        print(f"{label:<48} {seconds:8.2f} {count / seconds:8.1f} {seconds / count:8.3f}")
    print(f"{f'sandbox servers start-up ({WORKERS}, in parallel)':<48} {started:8.2f}")


if __name__ == "__main__":
    main()
