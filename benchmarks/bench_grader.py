"""Grading throughput and the grader's memory: how long `course grade` takes per submission,
and how much memory the trusted side holds for an honest and for a hostile submission.

Throughput, for lecture 01 and lecture 02: the released notebook with every answer cell
replaced by the solution's (a submission that scores full marks), as wall-clock seconds:

- cold: `course grade SUBMISSION` in a fresh process (Python start, `import torch` in the
  grader and in its sandbox server, grading, writing results.json); median of COLD_RUNS;
- batch: `course grade-all` of N_COPIES copies with --workers 2, end to end;
- batch, servers running: the same copies through grading.Grader.grade_many, timed
  after the sandbox servers have started (their start-up is reported separately);
- the CPU time of that batch per submission, in the grader and in the sandbox servers
  and their children, without the servers' start-up: less sensitive than wall-clock
  time to other work on the machine (with 2 idle cores and 2 workers, the wall-clock
  time per submission is about half of it).

Memory: the peak resident set (ru_maxrss) of a fresh grader process that grades one
submission of lecture 01 -- honest, or hostile: answers that return 16 MB per case,
2,000 answer cells that each raise, a 20 MB notebook of tiny cells. The sandbox's memory
is not counted (it has its own limit); what is shown is what a submission can make the
grader itself hold.

    python benchmarks/bench_grader.py
"""

import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("01_losses_and_softmax_gradients", "02_sgd_variants")
N_COPIES = 100
WORKERS = 2
COLD_RUNS = 3
HUGE_OUTPUT = "def softmax(z, dim=-1):\n    return torch.zeros(2_000_000, dtype=torch.float64)"
PEAK = """
import resource, sys
from pathlib import Path
from course_utils import grading
assignment = grading.load_assignment(sys.argv[1], Path(sys.argv[2]))
with grading.Grader(assignment, workers=1) as grader:
    score = grader.grade(Path(sys.argv[3])).score
print(score, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def exercise_id(cell: dict) -> str | None:
    tags = cell.get("metadata", {}).get("tags", [])
    return next((t.removeprefix("exercise:") for t in tags if t.startswith("exercise:")), None)


def solved_notebook(assignment: str, **replaced: str) -> dict:
    """The released notebook with the solution's answer cells (as plain JSON), some of
    them replaced by ``replaced`` (exercise id -> source)."""
    released = json.loads((ROOT / "notebooks" / f"{assignment}.ipynb").read_text())
    solution = json.loads((ROOT / "solutions" / f"{assignment}.ipynb").read_text())
    answers = {exercise_id(c): c["source"] for c in solution["cells"] if exercise_id(c)}
    answers |= replaced
    for cell in released["cells"]:
        if exercise_id(cell):
            cell["source"] = answers[exercise_id(cell)]
    return released


def run(command: list[str]) -> float:
    """Run a command from the repository; return its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def _children_cpu() -> float:
    """CPU seconds of the child processes waited for so far (the sandbox servers and,
    through them, their children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(assignment: str, scratch: Path) -> tuple[list[tuple], float, float]:
    from course_utils import grading

    course = [sys.executable, "-m", "course_utils.cli"]
    folder = scratch / assignment
    folder.mkdir()
    text = json.dumps(solved_notebook(assignment))
    paths = [folder / f"student{i:03d}.ipynb" for i in range(N_COPIES)]
    for path in paths:
        path.write_text(text)

    results = scratch / "results.json"
    cold = statistics.median(
        run([*course, "grade", str(paths[0]), "--out", str(results)]) for _ in range(COLD_RUNS)
    )
    maximum = json.loads(results.read_text())["extra_data"]["max_score"]
    assert json.loads(results.read_text())["score"] == maximum

    grades = scratch / f"{assignment}.csv"
    batch = run(
        [*course, "grade-all", str(folder), "--workers", str(WORKERS), "--out", str(grades)]
    )
    with grades.open(newline="") as file:
        assert {float(row["total"]) for row in csv.DictReader(file)} == {maximum}

    graded = grading.load_assignment(assignment, ROOT / "notebooks")
    before = _children_cpu()
    with grading.Grader(graded, workers=WORKERS):  # the CPU time of starting and stopping
        pass
    startup = _children_cpu() - before
    before = _children_cpu()
    start = time.perf_counter()
    with grading.Grader(graded, workers=WORKERS) as grader:
        started = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        scores = {result.score for result in grader.grade_many(paths)}
        warm, cpu = time.perf_counter() - start, time.process_time() - cpu
    sandbox_cpu = _children_cpu() - before - startup
    assert scores == {maximum}
    cpu_per_submission = (cpu + sandbox_cpu) / N_COPIES
    lecture = assignment[:2]
    rows = [
        (f"{lecture}: course grade, 1 submission, cold", 1, cold),
        (f"{lecture}: course grade-all, {N_COPIES} copies, --workers {WORKERS}", N_COPIES, batch),
        (f"{lecture}:   the same, sandbox servers already running", N_COPIES, warm),
    ]
    return rows, started, cpu_per_submission


def peak_memory(scratch: Path) -> list[tuple[str, float, float]]:
    """(submission, score, the grader's peak resident MB) for honest and hostile ones."""
    assignment = ASSIGNMENTS[0]
    many = solved_notebook(assignment)
    at = next(i for i, c in enumerate(many["cells"]) if exercise_id(c) == "01.softmax")
    room = 2000 - len(many["cells"])
    many["cells"][at:at] = [dict(many["cells"][at], source="1 / 0")] * room
    tiny = json.dumps({"cell_type": "raw", "source": "", "metadata": {}})
    count = (20 * 2**20 - 100) // (len(tiny) + 1)
    notebooks = {
        "honest (full marks)": json.dumps(solved_notebook(assignment)),
        "16 MB returned per case (softmax)": json.dumps(
            solved_notebook(assignment, **{"01.softmax": HUGE_OUTPUT})
        ),
        f"{room} more answer cells, each raising": json.dumps(many),
        f"{count} empty cells in 20 MB (refused)": '{"cells": [' + ",".join([tiny] * count) + "]}",
    }
    rows = []
    for label, text in notebooks.items():
        path = scratch / "peak.ipynb"
        path.write_text(text)
        command = [sys.executable, "-c", PEAK, assignment, str(ROOT / "notebooks"), str(path)]
        done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
        score, megabytes = done.stdout.split()
        rows.append((label, float(score), float(megabytes)))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        rows, starts, cpus = [], [], {}
        for assignment in ASSIGNMENTS:
            more, started, cpus[assignment[:2]] = throughput(assignment, Path(scratch))
            rows += more
            starts.append(started)
        memory = peak_memory(Path(scratch))

    print("Grading full-marks submissions on this machine")
    print(f"{'run':<62} {'wall s':>8} {'subm./s':>8} {'s/subm.':>8}")
    for label, count, seconds in rows:
        print(f"{label:<62} {seconds:8.2f} {count / seconds:8.1f} {seconds / count:8.3f}")
    label = f"sandbox servers start-up ({WORKERS}, in parallel), median"
    print(f"{label:<62} {statistics.median(starts):8.2f}")
    for lecture, cpu in cpus.items():
        label = f"{lecture}: CPU s per submission, grader and sandboxes (no start-up)"
        print(f"{label:<62} {cpu:8.3f}")
    print()
    print("The grader's peak memory (one fresh process, one lecture 01 submission)")
    print(f"{'submission':<48} {'score':>6} {'peak MB':>8}")
    for label, score, megabytes in memory:
        print(f"{label:<48} {score:6g} {megabytes:8.0f}")


if __name__ == "__main__":
    main()
