"""Execute every notebook in a fresh kernel and print its wall time (not a test).

    python benchmarks/bench_notebooks.py [--threads N] [PATTERN]

Times the solutions/ (what CI re-executes under nbval) and the unsolved student
notebooks/, each in a fresh kernel, kernel start-up included. Budget: well under
30 s per notebook on a 2-core CPU (aim for 15 s).
"""

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pattern", nargs="?", default="[0-9][0-9]_*.ipynb")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the kernels")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    print(f"{'notebook':<42} {'solution (s)':>13} {'student (s)':>12}")
    for solution in sorted((ROOT / "solutions").glob(args.pattern)):
        student = ROOT / "notebooks" / solution.name
        student_time = f"{run(student):12.1f}" if student.exists() else f"{'-':>12}"
        print(f"{solution.stem:<42} {run(solution):13.1f} {student_time}", flush=True)


if __name__ == "__main__":
    main()
