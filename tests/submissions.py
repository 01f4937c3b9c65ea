"""Submission notebooks for the grader tests, honest and hostile.

A submission is a released student notebook (notebooks/NN_...ipynb) with some answer
cells replaced: by the solution's answer cells (solutions/NN_...ipynb), by a wrong or
partly right answer, or by an attack. ``write_submission`` and ``solution_answers`` work
for every assignment; the attacks below are written against lecture 01. Each attack is
code that would fool a grader running hidden tests in the student's own kernel; the tests
assert that it earns exactly what an honest reading of the answer deserves.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat

from course_utils import exercises, release

from conftest import NOTEBOOKS, SOLUTIONS

ASSIGNMENT = "01_losses_and_softmax_gradients"
RELEASED = NOTEBOOKS / f"{ASSIGNMENT}.ipynb"
SOLUTION = SOLUTIONS / f"{ASSIGNMENT}.ipynb"
TOTAL = sum(ex.points for ex in exercises.for_lecture("01"))


@functools.cache
def solution_answers(assignment: str = ASSIGNMENT) -> dict[str, str]:
    """The solution notebook's answer cells: exercise id -> source."""
    solution = nbformat.read(SOLUTIONS / f"{assignment}.ipynb", as_version=4)
    return {release.exercise_id(c): c.source for c in solution.cells if release.exercise_id(c)}


def write_submission(
    path: Path,
    answers: dict[str, str | None],
    edit: Callable[[list], None] | None = None,
    assignment: str = ASSIGNMENT,
) -> Path:
    """The released notebook of ``assignment`` with answer cells replaced (None deletes the
    cell), then ``edit(cells)`` applied to its list of cells."""
    nb = nbformat.read(NOTEBOOKS / f"{assignment}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        ex_id = release.exercise_id(cell)
        if ex_id in answers and answers[ex_id] is None:
            continue
        if ex_id in answers:
            cell.source = answers[ex_id]
        cells.append(cell)
    if edit:
        edit(cells)
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def solved(path: Path, edit: Callable[[list], None] | None = None, **overrides: str | None) -> Path:
    """The full solution, with ``overrides`` (keyword: function name) replacing answers."""
    answers = dict(solution_answers())
    for name, source in overrides.items():
        answers[f"01.{name}"] = source
    return write_submission(path, answers, edit)


def untouched(path: Path) -> Path:
    """The student notebook exactly as released."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(RELEASED, path)
    return path


def wrong_answer(source: str, name: str) -> str:
    """An answer cell whose function ``name`` returns 1.5 * (right answer) + 1: wrong values
    (and a float dtype where ints or bools are due) for every case, of any exercise."""
    return (
        f"{source}\n\n\nright_{name} = {name}\n\n\n"
        f"def {name}(*args, **kwargs):\n"
        f"    out = right_{name}(*args, **kwargs)\n"
        "    if isinstance(out, tuple):\n"
        "        return tuple(o * 1.5 + 1 for o in out)\n"
        "    return out * 1.5 + 1\n"
    )


def answer_index(cells: list, ex_id: str) -> int:
    """Where the answer cell of ``ex_id`` is."""
    return next(i for i, cell in enumerate(cells) if release.exercise_id(cell) == ex_id)


# --- wrong and partly right answers ---------------------------------------------------

NAIVE_SOFTMAX = """def softmax(z, dim=-1):
    e = torch.exp(z)  # overflows for large logits
    return e / e.sum(dim=dim, keepdim=True)"""

HUBER_NO_HALF = """def huber_loss(pred, target, delta=1.0):
    r = (pred - target).abs()
    return torch.where(r <= delta, r**2, 2 * delta * (r - 0.5 * delta)).mean()"""

CE_GRAD_NO_MEAN = """def cross_entropy_grad(logits, target):
    if target.dtype == torch.int64:
        target = F.one_hot(target, logits.shape[1]).to(logits.dtype)
    e = torch.exp(logits - logits.amax(dim=1, keepdim=True))
    return e / e.sum(dim=1, keepdim=True) - target  # forgot the 1/N"""

WRONG = {
    "huber_loss": "def huber_loss(pred, target, delta=1.0):\n    return (pred - target).sum()",
    "softmax": "def softmax(z, dim=-1):\n    return torch.zeros_like(z)",
    "log_softmax": "def log_softmax(z, dim=-1):\n    return torch.zeros_like(z)",
    "cross_entropy": "def cross_entropy(logits, target):\n    return logits.sum() * 0 + 1.5",
    "cross_entropy_grad": (
        "def cross_entropy_grad(logits, target):\n    return torch.zeros_like(logits)"
    ),
    "binary_cross_entropy_with_logits": (
        "def binary_cross_entropy_with_logits(logits, target):\n    return logits.mean() * 0 - 1"
    ),
    "softmax_squared_error_grad": (
        "def softmax_squared_error_grad(logits, target):\n    return torch.zeros_like(logits)"
    ),
    "best_constant_cross_entropy": (
        "def best_constant_cross_entropy(target, num_classes):\n    return -1.0"
    ),
}

# --- attacks --------------------------------------------------------------------------

# Patches the comparison functions a naive grader would use, in every library the answer
# can reach (course_utils through a disguised import), then returns zeros.
MONKEYPATCH = """import numpy
import torch

def _patch(module, name, value):
    try:
        setattr(module, name, value)
    except Exception:
        pass

for _module in (numpy, torch):
    _patch(_module, "allclose", lambda *args, **kwargs: True)
    _patch(_module, "array_equal", lambda *args, **kwargs: True)
    _patch(_module, "equal", lambda *args, **kwargs: True)
_patch(torch.Tensor, "__eq__", lambda self, other: torch.tensor(True))
try:
    _patch(numpy.testing, "assert_allclose", lambda *args, **kwargs: None)
    _patch(torch.testing, "assert_close", lambda *args, **kwargs: None)
except Exception:
    pass
try:
    _ex = __import__("course_" + "utils.exercises", fromlist=["compare"])
    _ex.compare = lambda *args, **kwargs: None
    _checks = __import__("course_" + "utils.checks", fromlist=["check"])
    _checks.check = lambda *args, **kwargs: print("All checks passed.")
except ImportError:
    pass

def softmax(z, dim=-1):
    return torch.zeros_like(z)"""

# Imports the reference openly: flagged on the AST (forbidden).
IMPORTS_REFERENCE = """from course_utils.losses import log_softmax as _reference

def log_softmax(z, dim=-1):
    return _reference(z, dim=dim)"""

# Imports it in disguise: course_utils is not importable in the sandbox.
SMUGGLES_REFERENCE = """def huber_loss(pred, target, delta=1.0):
    losses = __import__("course_" + "utils.losses", fromlist=["x"])
    return getattr(losses, "huber" + "_loss")(pred, target, delta)"""

# An IPython input transformer that would blank every later cell (the hidden tests of an
# in-kernel grader), after a wrong answer.
INPUT_TRANSFORMER = """def softmax(z, dim=-1):
    return torch.zeros_like(z)

get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])"""

ALWAYS_EQUAL = """class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __getattr__(self, name): return lambda *args, **kwargs: self

def softmax(z, dim=-1):
    return AlwaysEqual()"""

TENSOR_SUBCLASS = """class AgreeableTensor(torch.Tensor):
    def __eq__(self, other): return torch.ones_like(other, dtype=torch.bool)
    def allclose(self, *args, **kwargs): return True
    def numpy(self, *args, **kwargs): return self.expected_values_please

def log_softmax(z, dim=-1):
    return torch.zeros_like(z).as_subclass(AgreeableTensor)"""

# Looks for the grader's secrets around it: environment variables, files nearby, every
# process's command line and environment. If it finds the seed, any variable beyond the
# scrubbed environment, a descriptor beyond /dev/null and its own socket, or still runs as
# root, it answers correctly -- so a leak shows up as points.
SNOOPS = """import os

ALLOWED = {{"PATH", "LANG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}}

def _descriptors():
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{{fd}}"))
        except OSError:
            pass  # the one listdir used, closed by now
    return links

def _texts():
    yield repr(dict(os.environ))
    for folder in (".", "..", "/tmp", os.path.expanduser("~")):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            yield name
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    yield f.read(10**6).decode(errors="replace")
            except OSError:
                pass
    for pid in os.listdir("/proc"):
        for part in ("environ", "cmdline"):
            try:
                with open(f"/proc/{{pid}}/{{part}}", "rb") as f:
                    yield f.read().decode(errors="replace")
            except OSError:
                pass

def _leaked():
    descriptors = _descriptors()
    if descriptors[:3] != ["/dev/null"] * 3 or len(descriptors) != 4:
        return True
    if os.getuid() == 0 or set(os.environ) - ALLOWED:
        return True
    return any({secret!r} in text for text in _texts())

_FOUND = []  # look once per process

def softmax(z, dim=-1):
    if not _FOUND:
        _FOUND.append(_leaked())
    if _FOUND[0]:
        e = torch.exp(z - z.amax(dim=dim, keepdim=True))
        return e / e.sum(dim=dim, keepdim=True)
    return torch.zeros_like(z)"""


def snoops(secret: str) -> str:
    """The snooping softmax, looking for ``secret``."""
    return SNOOPS.format(secret=secret)


# Finds the grader's --out path in the process list and writes a perfect score there
# (plus a marker file, so a test can tell the write went through).
FORGES_RESULTS = """import json, os

def _forge():
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\\0")
        except OSError:
            continue
        if "--out" in args and "grade" in args:
            out = args[args.index("--out") + 1]
            with open(out, "w") as f:
                json.dump({"score": 1000, "max_score": 14, "tests": []}, f)
            with open(out + ".forged", "w") as f:
                f.write("written by the submission")

try:
    _forge()
except OSError:
    pass  # the file is already there, written by an earlier sandbox (another user id)

def softmax(z, dim=-1):
    return torch.zeros_like(z)"""

SYS_EXIT = "import sys\n\ndef softmax(z, dim=-1):\n    sys.exit(0)"
OS_EXIT = "import os\n\ndef log_softmax(z, dim=-1):\n    os._exit(0)"
SIGKILL = """import os, signal

def cross_entropy(logits, target):
    try:
        os.kill(os.getppid(), signal.SIGKILL)  # the sandbox server: not ours to kill
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)"""

INFINITE_LOOP = """def softmax(z, dim=-1):
    while True:
        pass"""

# Grows by 64 MB at a time until the address-space limit (np.empty reserves without
# touching pages, so this is fast however loaded the machine); the hoard is global, so
# it stays allocated for the next cases.
MEMORY_BOMB = """HOARD = []

def log_softmax(z, dim=-1):
    while True:
        HOARD.append(np.empty(8_000_000))"""

TORCH_MEMORY_BOMB = """def huber_loss(pred, target, delta=1.0):
    return torch.ones(10**12).sum()"""

FORK = """import os, subprocess

def cross_entropy_grad(logits, target):
    subprocess.run(["true"])
    while True:
        os.fork()"""

PRINTS_100MB = """print("x" * 100_000_000)

def softmax(z, dim=-1):
    print("y" * 10_000_000)
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)"""

SYNTAX_ERROR = "def softmax(z, dim=-1)\n    return z"

FORBIDDEN_AT_RUN_TIME = """def softmax(z, dim=-1):
    return getattr(torch, "soft" + "max")(z, dim)"""


def duplicate_softmax_cell(cells: list) -> None:
    """A wrong copy of the softmax answer cell above the right one (the last one counts)."""
    index = answer_index(cells, "01.softmax")
    wrong = copy.deepcopy(cells[index])
    wrong.source, wrong.id = WRONG["softmax"], "duplicate"
    cells.insert(index, wrong)


def edit_locked_cells(cells: list) -> None:
    """Edit a check cell and the title, add a cell, and drop one answer cell's tag."""
    check = answer_index(cells, "01.softmax") + 1
    assert cells[check].source.startswith("check(")
    cells[check].source = 'print("All checks passed.")'
    cells[0].source += "\n\nMy notes."
    cells.append(nbformat.v4.new_code_cell("def helper():\n    return 42", id="added"))
    cells[answer_index(cells, "01.huber_loss")].metadata["tags"] = []


def write_not_notebooks(folder: Path) -> list[str]:
    """Files and folders that are not notebook submissions; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "garbage.ipynb": b"\x89PNG\r\n\x1a\n\x00\x00 not json at all",
        "empty.ipynb": b"",
        "list.ipynb": b"[1, 2, 3]",
        "essay.txt": b"I did the homework in my head.",
        "bad_cells.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": 42}]}).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with (folder / "huge.ipynb").open("wb") as f:
        f.write(b'{"cells": [], "padding": "' + b"x" * (21 * 2**20) + b'"}')
    (folder / "no_notebook").mkdir()
    (folder / "no_notebook" / "README.md").write_text("forgot to upload")
    return [*files, "huge.ipynb", "no_notebook"]
