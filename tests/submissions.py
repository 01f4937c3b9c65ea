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
import numpy as np

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

# --- attacks ---------------------------------------------------------------------------
#
# Each attack is graded end to end (tests/test_grader.py) and must earn exactly what an
# honest reading of the answer deserves. Most stay within what an answer may use, or are
# refused by that check (course_utils.grading.program). Those built on PAST_THE_CHECK
# reach modules through torch.os and torch.sys, which the check refuses; they are graded
# with the check switched off, as if it had a hole, and the sandbox must contain them.

PAST_THE_CHECK = "os, sys = torch.os, torch.sys  # modules the answer-cell check refuses\n"

# Patches the comparison functions a naive grader would use, in every library the answer
# can reach (course_utils through a disguised import), then returns zeros. Refused: imports.
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
    _ex = __import__("course_" + "utils.exercises", fromlist=["compare"])
    _ex.compare = lambda *args, **kwargs: None
except ImportError:
    pass

def softmax(z, dim=-1):
    return torch.zeros_like(z)"""

# The same without imports, through a class reached from a preamble module. Refused:
# assigning to an attribute of torch.
PATCHES_TORCH = """torch.Tensor.allclose = torch.Tensor.ne

def softmax(z, dim=-1):
    return torch.zeros_like(z)"""

# Imports the reference openly: refused.
IMPORTS_REFERENCE = """from course_utils.losses import log_softmax as _reference

def log_softmax(z, dim=-1):
    return _reference(z, dim=dim)"""

# Imports it in disguise: refused (a dunder name). Past the check, course_utils is not
# importable in the sandbox.
SMUGGLES_REFERENCE = """def huber_loss(pred, target, delta=1.0):
    losses = __import__("course_" + "utils.losses", fromlist=["x"])
    return getattr(losses, "huber" + "_loss")(pred, target, delta)"""
SMUGGLES_PAST = PAST_THE_CHECK + (
    "\ndef huber_loss(pred, target, delta=1.0):\n"
    '    losses = sys.modules["builtins"].__import__("course_" + "utils.losses")\n'
    '    return getattr(losses, "huber" + "_loss")(pred, target, delta)'
)

# An IPython input transformer that would blank every later cell (the hidden tests of an
# in-kernel grader), after a wrong answer. There is no IPython: a NameError.
INPUT_TRANSFORMER = """def softmax(z, dim=-1):
    return torch.zeros_like(z)

get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])"""

# Objects that claim to be right: not an exact torch.Tensor, so an error.
ALWAYS_EQUAL = """class AlwaysEqual:
    def allclose(self, *args, **kwargs):
        return True

def softmax(z, dim=-1):
    return AlwaysEqual()"""

TENSOR_SUBCLASS = """class AgreeableTensor(torch.Tensor):
    def numpy(self, *args, **kwargs):
        return self.expected_values_please

def log_softmax(z, dim=-1):
    return torch.zeros_like(z).as_subclass(AgreeableTensor)"""

# Dunder methods (an __eq__ that is always true): refused.
DUNDER_METHODS = """class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False

def softmax(z, dim=-1):
    return AlwaysEqual()"""

# --- class 1: the library function the exercise asks for, reached anyway. Refused on the
# syntax tree (private attributes, modules outside the preamble's, getattr and delattr),
# or blocked at the ATen dispatcher (public functions that compute it inside).
INTERNAL_SOFTMAX = """def softmax(z, dim=-1):
    return torch.ops.aten._softmax(z, dim, False)"""
INTERNAL_LOG_SOFTMAX = """def log_softmax(z, dim=-1):
    return torch._log_softmax(z, dim, False)"""
# Deletes the blocking attribute so that the C base class's softmax shows through.
DELETES_BLOCKER = """delattr(torch.Tensor, "soft" + "max")

def softmax(z, dim=-1):
    return getattr(z, "soft" + "max")(dim)"""
# Public functions that compute softmax and log-softmax inside: attention, cross-entropy.
ATTENTION_SOFTMAX = """def softmax(z, dim=-1):
    zt = z.movedim(dim, -1)
    q = torch.ones(*zt.shape[:-1], 1, 1, dtype=z.dtype)
    v = torch.eye(zt.shape[-1], dtype=z.dtype)
    out = F.scaled_dot_product_attention(q, zt.unsqueeze(-1), v, scale=1.0)
    return out.squeeze(-2).movedim(-1, dim)"""
CROSS_ENTROPY_LOG_SOFTMAX = """def log_softmax(z, dim=-1):
    zt = z.movedim(dim, -1)
    flat = zt.reshape(-1, zt.shape[-1])
    n = flat.shape[0]
    columns = [
        -F.cross_entropy(flat, torch.full((n,), c), reduction="none")
        for c in range(flat.shape[1])
    ]
    return torch.stack(columns, 1).reshape(zt.shape).movedim(-1, dim)"""
# The forbidden function fetched in another answer cell (the Huber cell, where softmax is
# not forbidden) and used in the softmax cell: by an operator, or by a helper.
OTHER_CELL_OPERATOR = "\n\nsoftmax_op = torch.ops.aten.softmax.int\n"
SOFTMAX_FROM_OTHER_CELL = "def softmax(z, dim=-1):\n    return softmax_op(z, dim)"
OTHER_CELL_HELPER = "\n\ndef normalise(z, dim):\n    return z.softmax(dim)\n"
SOFTMAX_FROM_HELPER = "def softmax(z, dim=-1):\n    return normalise(z, dim)"
# The answer's own generator frame holds the full builtins: __import__ and getattr, with
# which it undoes the run-time blocks (as they were kept) and calls torch.softmax.
# Refused: frames (gi_frame, f_builtins).
# Class 1 through torch.distributions (allowed, for sampling): Categorical computes the
# normalized logits and probabilities with the forbidden operators; the named transform is
# caught on the syntax tree, the others at the dispatcher.
DISTRIBUTION_SOFTMAX = """def softmax(z, dim=-1):
    d = torch.distributions.Categorical(logits=z.movedim(dim, -1))
    return d.probs.movedim(-1, dim)"""
DISTRIBUTION_LOG_SOFTMAX = """def log_softmax(z, dim=-1):
    d = torch.distributions.Categorical(logits=z.movedim(dim, -1))
    return d.logits.movedim(-1, dim)"""
NAMED_TRANSFORM = """def softmax(z, dim=-1):
    return torch.distributions.SoftmaxTransform()(z.movedim(dim, -1)).movedim(-1, dim)"""

FRAME_ESCAPE = """def frames():
    yield 1

found = frames().gi_frame.f_builtins
fetch = found["getattr"]
modules = found["__imp" + "ort__"]("sys").modules
for block in fetch(modules["__main__"], "_BLO" + "CKS", ()):
    fetch(block, "_dest" + "roy")()
library = modules["torch"]

def softmax(z, dim=-1):
    return fetch(library, "soft" + "max")(z, dim)"""
# logsumexp under other names: numpy's logaddexp reduced, the last entry of logcumsumexp.
LOGADDEXP_SOFTMAX = """def softmax(z, dim=-1):
    lse = np.logaddexp.reduce(z.numpy(), axis=dim, keepdims=True)
    return torch.exp(z - torch.from_numpy(lse))"""
LOGCUMSUMEXP_LOG_SOFTMAX = """def log_softmax(z, dim=-1):
    return z - z.logcumsumexp(dim).narrow(dim, z.shape[dim] - 1, 1)"""
# BCE with logits is the soft-margin loss for targets 2y - 1 (3 of 5 groups: the hard ones).
SOFT_MARGIN_BCE = """def binary_cross_entropy_with_logits(logits, target):
    return F.soft_margin_loss(logits, 2 * target - 1)"""
LOGADDEXP_CE_GRAD = """def cross_entropy_grad(logits, target):
    if target.dtype == torch.long:
        target = F.one_hot(target, logits.shape[1]).to(logits.dtype)
    lse = torch.from_numpy(np.logaddexp.reduce(logits.numpy(), axis=1, keepdims=True))
    return (torch.exp(logits - lse) - target) / logits.shape[0]"""
# Past the check: the C extension and the dispatcher's operators, blocked at run time.
DISPATCHER_PAST = {  # named in pieces, so that only the run-time block can catch them
    "softmax": PAST_THE_CHECK
    + "\ndef softmax(z, dim=-1):\n"
    + '    return getattr(torch._C._VariableFunctions, "soft" + "max")(z, dim)',
    "log_softmax": PAST_THE_CHECK
    + "\ndef log_softmax(z, dim=-1):\n"
    + '    return getattr(torch.ops.aten, "_log_" + "softmax")(z, dim, False)',
}

# Past the check: undoes the run-time blocks wherever it can find them (a list of the
# sandbox module, a torch.library.Library anywhere in memory), then calls torch.softmax.
UNDOES_BLOCKS_PAST = (
    PAST_THE_CHECK
    + """import gc

for block in getattr(sys.modules["__main__"], "_BLOCKS", ()):
    block._destroy()
for found in gc.get_objects():
    if type(found).__name__ == "Library":
        found._destroy()

def softmax(z, dim=-1):
    return getattr(torch, "soft" + "max")(z, dim)"""
)

# --- class 3, past the check: a malformed reply. Writes, on its own socket, a case result
# whose .npy header has the shape (-2, -4), which numpy cannot reshape.
DESYNC = (
    PAST_THE_CHECK
    + """json, struct = sys.modules["json"], sys.modules["struct"]

def _socket():
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                return int(fd)
        except OSError:
            pass

def _frames(*frames):
    return b"".join(struct.pack(">Q", len(frame)) + frame for frame in frames)

HEADER = json.dumps({"kind": "case", "index": 0, "outcome": "ok", "arrays": 1}).encode()

def softmax(z, dim=-1):
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (-2, -4), }"
    text = text + " " * (117 - len(text)) + "\\n"
    npy = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", len(text)) + text.encode() + bytes(64)
    os.write(_socket(), _frames(HEADER, npy))
    return z"""
)

# --- class 7, past the check: an array frame that claims a terabyte.
HUGE_FRAME = DESYNC.replace(
    "os.write(_socket(), _frames(HEADER, npy))",
    'os.write(_socket(), _frames(HEADER) + struct.pack(">Q", 2**40) + bytes(2**16))',
)

# --- class 4, past the check: a deep tree, with folders nobody may enter, left behind.
DEEP_TREE = (
    PAST_THE_CHECK
    + """
start = os.getcwd()
for _ in range(1500):
    os.mkdir("d")
    os.chdir("d")
while os.getcwd() != start:
    os.chdir("..")
    os.chmod("d", 0)

def huber_loss(pred, target, delta=1.0):
    r = (pred - target).abs()
    return torch.where(r < delta, 0.5 * r**2, delta * (r - 0.5 * delta)).mean()"""
)

# --- class 5, past the check: kills every other process it can see, for two seconds, at
# the top level of its answer cell.
KILLER = (
    PAST_THE_CHECK
    + """time = sys.modules["time"]

end = time.time() + 2
while time.time() < end:
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                os.kill(int(name), 9)
            except OSError:
                pass

def huber_loss(pred, target, delta=1.0):
    r = (pred - target).abs()
    return torch.where(r < delta, 0.5 * r**2, delta * (r - 0.5 * delta)).mean()"""
)

# --- class 7: outputs far larger than expected (16 MB per case).
HUGE_OUTPUT = """def softmax(z, dim=-1):
    return torch.zeros(2_000_000, dtype=torch.float64)"""


def many_cells(count: int) -> Callable[[list], None]:
    """An edit that adds ``count`` answer cells to the softmax exercise, each raising."""

    def edit(cells: list) -> None:
        index = answer_index(cells, "01.softmax")
        for k in range(count):
            extra = copy.deepcopy(cells[index])
            extra.source, extra.id = "1 / 0", f"extra{k}"
            cells.insert(index, extra)

    return edit


def huge_huber_cells(cells: list) -> None:
    """Class 7: grader work that grew faster than the code. Three more Huber answer cells
    of 250 KB each (past 256 KB of an exercise's answer code, the rest is not analysed): the first
    of them a single attribute of 120,000 words (whose word runs were all built) and the
    others 10,000 distinct attributes each (each was matched against every forbidden name
    of every exercise)."""
    index = answer_index(cells, "01.huber_loss")
    long_name = "z." + "_".join(["a"] * 120_000)
    many = "".join(f"    z.attribute_{k}_of_many_words\n" for k in range(10_000))
    sources = [f"if False:\n    {long_name}\n", f"if False:\n{many}", f"if False:\n{many}"]
    for k, source in enumerate(sources):
        extra = copy.deepcopy(cells[index])
        extra.source, extra.id = source, f"huge{k}"
        cells.insert(index + 1 + k, extra)


# --- class 8: memorised outputs of the cases `check` shows (which were also hidden cases
# for the groups that did not depend on the seed).
MEMORISED = """TABLE_{name} = {table!r}

def {name}(*args, **kwargs):
    values = list(args) + list(kwargs.values())
    arrays = [a.flatten().tolist() for a in values if isinstance(a, torch.Tensor)]
    for key, value in TABLE_{name}:
        if key == arrays:
            return torch.tensor(value, dtype=torch.float64)
    return torch.tensor(0.0, dtype=torch.float64)
"""


def memorised(exercise_id: str) -> str:
    """An answer that looks its input up in a table of the visible cases' expected outputs."""
    ex = exercises.get(exercise_id)
    table = [
        (
            [v.ravel().tolist() for v in case.args.values() if isinstance(v, np.ndarray)],
            float(exercises.expected(ex, case)),
        )
        for case in ex.visible_cases()
    ]
    return MEMORISED.format(name=ex.name, table=table)


# --- class 9: a Python float where the exercise's reference returns a tensor, and the
# other way round.
RETURNS_FLOAT = """def cross_entropy(logits, target):
    shifted = logits - logits.amax(dim=1, keepdim=True)
    log_p = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
    if target.is_floating_point():
        return float(-(target * log_p).sum(dim=1).mean())
    return float(-log_p.gather(1, target.unsqueeze(1)).squeeze(1).mean())"""
COSINE_RETURNS_TENSOR = """def cosine_annealing_lr(epoch, base_lr, T_max, eta_min=0.0):
    cosine = (1 + math.cos(math.pi * epoch / T_max)) / 2
    return torch.tensor(eta_min + (base_lr - eta_min) * cosine, dtype=torch.float64)"""

# --- class 10: a channel between sandboxes. The sharer solves softmax and writes every
# input and output to /dev/shm; the reader answers from that table.
SHARER = """def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    out = e / e.sum(dim=dim, keepdim=True)
    try:
        old = np.fromfile("/dev/shm/course-table.bin")
    except Exception:
        old = np.zeros(0)
    record = [[z.numel(), dim], z.double().flatten().numpy(), out.double().flatten().numpy()]
    np.concatenate([old, *record]).tofile("/dev/shm/course-table.bin")
    return out"""
# Past the check, through the kernel's keyrings (shared by every process of a user and
# of a session, whatever the namespaces): the writer leaves its softmax's source in the
# user keyring, the reader (graded later, on the same sandbox server) runs it. The
# sandbox's seccomp filter makes the keyring calls fail.
KEYRING = (
    PAST_THE_CHECK
    + """import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ADD_KEY, KEYCTL, USER_KEYRING = 248, 250, -4  # x86_64
"""
)
KEYRING_WRITER = (
    KEYRING
    + """code = b'''def softmax(z, dim=-1):
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)'''
libc.syscall(ADD_KEY, b"user", b"course-channel", code, len(code), USER_KEYRING)
exec(code)"""
)
KEYRING_READER = (
    KEYRING
    + """name = b"course-channel"
found = libc.syscall(KEYCTL, 10, USER_KEYRING, b"user", name, 0)
buffer = ctypes.create_string_buffer(4096)
size = libc.syscall(KEYCTL, 11, found, buffer, 4096) if found > 0 else -1
if size > 0:
    exec(buffer.raw[:size].decode())
else:
    def softmax(z, dim=-1):
        return torch.zeros_like(z)"""
)

READER = """def softmax(z, dim=-1):
    try:
        table = np.fromfile("/dev/shm/course-table.bin")
    except Exception:
        return torch.zeros_like(z)
    i = 0
    while i < len(table):
        n, d = int(table[i]), int(table[i + 1])
        inputs, outputs = table[i + 2 : i + 2 + n], table[i + 2 + n : i + 2 + 2 * n]
        if n == z.numel() and d == dim and np.array_equal(inputs, z.double().flatten().numpy()):
            return torch.tensor(outputs, dtype=z.dtype).reshape(z.shape)
        i += 2 + 2 * n
    return torch.zeros_like(z)"""

# --- class 11: top-level code that ends the process, appended to an answer cell: hashing
# a deeply nested tuple recurses in C until the stack overflows (SIGSEGV).
CRASHES = """

nested = ()
for _ in range(200_000):
    nested = (nested,)
lookup = {nested: 1}
"""
# Cross-entropy written with the student's own log_softmax (a helper in another cell).
CROSS_ENTROPY_WITH_LOG_SOFTMAX = """def cross_entropy(logits, target):
    log_p = log_softmax(logits, dim=1)
    if target.is_floating_point():
        return -(target * log_p).sum(dim=1).mean()
    return -log_p.gather(1, target.unsqueeze(1)).squeeze(1).mean()"""

# Looks for the grader's secrets around it: environment variables, files nearby, every
# process's command line and environment. If it finds the seed, any variable beyond the
# scrubbed environment, a descriptor beyond /dev/null and its own socket, or still runs as
# root, it answers correctly -- so a leak shows up as points. Past the check.
SNOOPS = (
    PAST_THE_CHECK
    + """
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
    for folder in (".", "..", "/tmp", "/dev/shm", os.path.expanduser("~")):
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
)


def snoops(secret: str) -> str:
    """The snooping softmax, looking for ``secret``."""
    return SNOOPS.format(secret=secret)


# Finds the grader's --out path in the process list and writes a perfect score there
# (plus a marker file, so a test can tell whether the write went through). Past the check.
FORGES_RESULTS = (
    PAST_THE_CHECK
    + """json = sys.modules["json"]

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
    pass

def softmax(z, dim=-1):
    return torch.zeros_like(z)"""
)

# Refused (imports). Past the check (EXITS_PAST, FORK_PAST), each ends its own process.
SYS_EXIT = "import sys\n\ndef softmax(z, dim=-1):\n    sys.exit(0)"
OS_EXIT = "import os\n\ndef log_softmax(z, dim=-1):\n    os._exit(0)"
SIGKILL = """import os, signal

def cross_entropy(logits, target):
    os.kill(os.getpid(), signal.SIGKILL)"""
EXITS_PAST = {
    "softmax": PAST_THE_CHECK + "\ndef softmax(z, dim=-1):\n    sys.exit(0)",
    "log_softmax": PAST_THE_CHECK + "\ndef log_softmax(z, dim=-1):\n    os._exit(0)",
    "cross_entropy": PAST_THE_CHECK
    + """
def cross_entropy(logits, target):
    for pid in (1, os.getppid()):  # the sandbox server: not ours to kill
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    os.kill(os.getpid(), 9)""",
}
FORK_PAST = (
    PAST_THE_CHECK
    + """
def cross_entropy_grad(logits, target):
    while True:
        os.fork()"""
)

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
