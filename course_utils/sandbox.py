"""The untrusted side of `course grade`: the process that runs a student's answer code.

The grader (course_utils.grading) starts this file as a *zygote*:

    python -I -S course_utils/sandbox.py CTRL_FD SCRATCH_DIR SITE_DIR...

with a scrubbed environment. ``-I -S`` leaves out the user's and the venv's site-packages;
only the directories holding numpy and torch are put back on ``sys.path``, so the
editable ``course_utils`` package -- where the reference solutions live -- is not
importable (a meta-path hook refuses it as well, for non-editable installs). The zygote
imports numpy and torch once and then serves requests on its control socket: each request
carries a fresh socket for one job; the zygote forks a child for it, waits until the grader
says "stop", kills the child's whole process group, reaps it and reports how it ended.
The zygote never sees a job's data, so a child inherits nothing but the preloaded modules.

A child, before it runs any answer code:

- starts a new session (its own process group, which the zygote kills as a whole);
- points stdin/stdout/stderr at /dev/null and closes every other inherited descriptor;
- works in a fresh directory inside SCRATCH_DIR (removed by the zygote afterwards, and
  SCRATCH_DIR by the grader, even if the zygote dies);
- when running as root, switches to a user id of its own (1_000_000_000 + its pid, so
  concurrent sandboxes cannot signal or trace each other; falling back to 65534 "nobody",
  and to staying root where even that is refused -- see the README's threat model);
- sets rlimits: no core dumps, CPU seconds, address space (what the preloaded interpreter
  already maps plus the memory limit), file size, and no new processes or threads.

It then runs a fixed preamble and the answer cells in one namespace, calls the exercise's
function on each test case the grader sent and streams back one message per case.

Wire format (both directions): a message is a JSON header frame followed by the header's
``arrays`` count of .npy frames; a frame is an 8-byte big-endian length and its bytes.
Arrays are written with ``allow_pickle=False`` and read back by parsing the .npy header
and accepting only boolean and numeric dtypes, so nothing is ever unpickled. Everything
the child sends is untrusted: the grader validates it and compares it with expected
values the child never sees.

Only the standard library, numpy and torch are imported here: the grader imports this
module for the wire format, and the zygote runs it without course_utils on its path.
"""

import io
import json
import math
import os
import resource
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass

if __name__ == "__main__":
    # The zygote runs with -S: put back the site-packages directories the grader named.
    sys.path.extend(sys.argv[3:])

import numpy as np
import torch

PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
# Standard modules loaded in the zygote, so answer code can import them even when the
# sandbox user cannot read the Python installation (e.g. one under /root).
PRELOADED = (
    "collections",
    "dataclasses",
    "functools",
    "itertools",
    "operator",
    "random",
    "statistics",
    "typing",
)
SANDBOX_UID_BASE = 1_000_000_000
NOBODY = 65534
FILE_SIZE_LIMIT = 16 * 2**20  # bytes any file written by the answer code may reach
MAX_FRAME_BYTES = 16 * 2**20
MAX_ARRAYS = 64
NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: the dtypes we accept

_FRAME = struct.Struct(">Q")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class ForbiddenCallError(Exception):
    """Raised by a function the exercise forbids (torch.softmax in the softmax exercise, ...)."""


# --- wire format ----------------------------------------------------------------------


def encode_array(array: np.ndarray) -> bytes:
    """An array as .npy bytes (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode_array(data: bytes) -> np.ndarray:
    """.npy bytes -> a numeric array; anything else (objects, records, bad sizes) is refused."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ProtocolError(f"unsupported .npy version {version}")
    except ValueError as err:
        raise ProtocolError(f"not an .npy array: {err}") from None
    if dtype.kind not in NUMERIC_KINDS:
        raise ProtocolError(f"arrays must be boolean or numeric, got dtype {dtype}")
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - stream.tell():
        raise ProtocolError(f"array of shape {shape} and dtype {dtype} has the wrong size")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C").copy()


@dataclass(frozen=True)
class GeneratorSeed:
    """A case argument that the answer receives as ``torch.Generator().manual_seed(seed)``.

    Stochastic exercises take a ``generator``; every call of the answer gets a fresh
    generator in the same state, so a correct answer gives the same output twice.
    """

    seed: int


def to_wire(value, arrays: list):
    """Case arguments -> JSON: an array becomes {"array": i} (appended to ``arrays``),
    a tuple {"tuple": [...]}, a GeneratorSeed {"generator": seed}; numbers, strings,
    booleans and None stay as they are."""
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"array": len(arrays) - 1}
    if isinstance(value, GeneratorSeed):
        return {"generator": value.seed}
    if isinstance(value, tuple):
        return {"tuple": [to_wire(v, arrays) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to the sandbox")


def from_wire(value, arrays: list):
    """The inverse of ``to_wire``."""
    if isinstance(value, dict) and "array" in value:
        return arrays[value["array"]]
    if isinstance(value, dict) and "tuple" in value:
        return tuple(from_wire(v, arrays) for v in value["tuple"])
    if isinstance(value, dict) and "generator" in value:
        return GeneratorSeed(int(value["generator"]))
    return value


def send_message(sock: socket.socket, header: dict, arrays=()) -> None:
    """Send a JSON header and its arrays as one message."""
    frames = [json.dumps({**header, "arrays": len(arrays)}).encode()]
    frames += [encode_array(array) for array in arrays]
    sock.sendall(b"".join(_FRAME.pack(len(frame)) + frame for frame in frames))


def recv_message(sock: socket.socket, deadline: float | None = None) -> tuple[dict, list]:
    """Receive one message: (header, arrays). ``deadline`` is a time.monotonic() value.

    Raises ProtocolError for malformed data, EOFError when the peer is gone and
    TimeoutError at the deadline.
    """
    try:
        header = json.loads(_recv_frame(sock, deadline))
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"malformed message header: {err}") from None
    n_arrays = header.pop("arrays", None) if isinstance(header, dict) else None
    if type(n_arrays) is not int or not 0 <= n_arrays <= MAX_ARRAYS:
        raise ProtocolError("malformed message header")
    return header, [decode_array(_recv_frame(sock, deadline)) for _ in range(n_arrays)]


def _recv_frame(sock: socket.socket, deadline: float | None) -> bytes:
    (size,) = _FRAME.unpack(_recv_exactly(sock, _FRAME.size, deadline))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"a message part of {size} bytes exceeds {MAX_FRAME_BYTES} bytes")
    return _recv_exactly(sock, size, deadline)


def _recv_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks, received = [], 0
    while received < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("time limit reached")
            sock.settimeout(remaining)
        chunk = sock.recv(min(size - received, 2**20))
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


# --- the zygote -----------------------------------------------------------------------


class _RefuseCourseUtils:
    """A meta-path finder that refuses to import course_utils (the reference solutions)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "course_utils":
            raise ImportError("answer code cannot import course_utils when it is graded")
        return None


def serve(ctrl: socket.socket, scratch: str) -> None:
    """The zygote's loop: fork a child per job socket received, report how each ended.

    Control messages (one datagram each): the grader sends b"run" with the job socket
    attached, later b"stop"; the zygote then kills the child's process group, reaps it
    and answers {"exit": code} or {"signal": number}. It stops when the grader is gone.
    """
    while True:
        message, fds, _, _ = socket.recv_fds(ctrl, 64, 1)
        if not message or not fds:
            return
        job = socket.socket(fileno=fds[0])
        workdir = tempfile.mkdtemp(prefix="job-", dir=scratch)
        pid = os.fork()
        if pid == 0:
            _child(job, workdir)  # never returns
        job.close()
        stop = ctrl.recv(64)
        for kill in (os.kill, os.killpg):  # the child, then anything it started
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass  # already gone
        _, status = os.waitpid(pid, 0)
        shutil.rmtree(workdir, ignore_errors=True)
        if not stop:
            return
        if os.WIFSIGNALED(status):
            ctrl.send(json.dumps({"signal": os.WTERMSIG(status)}).encode())
        else:
            ctrl.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())


def main(argv: list[str]) -> int:
    """Entry point of the zygote: ``sandbox.py CTRL_FD SCRATCH_DIR SITE_DIR...``."""
    ctrl = socket.socket(fileno=int(argv[1]))
    torch.set_num_threads(1)  # the children may not start threads
    for module in PRELOADED:
        __import__(module)
    sys.meta_path.insert(0, _RefuseCourseUtils())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides when we stop
    ctrl.send(json.dumps({"ready": True}).encode())
    serve(ctrl, argv[2])
    return 0


# --- the child ------------------------------------------------------------------------


def _child(job: socket.socket, workdir: str) -> None:
    """Isolate this forked process, run one job, and exit (never returns)."""
    code = 0
    try:
        _isolate(job.fileno(), workdir)
        header, arrays = recv_message(job)
        _drop_privileges(workdir)
        _set_limits(header["limits"])
        _run_job(job, header, arrays)
    except BaseException:
        code = 70
    os._exit(code)


def _isolate(keep_fd: int, workdir: str) -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    # Close everything else we inherited (the zygote's control socket included).
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir(workdir)


def _drop_privileges(workdir: str) -> None:
    """As root, become a user id of our own (or nobody); as anyone else, stay."""
    if os.getuid() != 0:
        return
    for uid in (SANDBOX_UID_BASE + os.getpid(), NOBODY):
        try:
            os.chown(workdir, uid, uid)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            return
        except OSError:
            continue  # e.g. a user namespace that does not map this id


def _set_limits(limits: dict) -> None:
    address_space = _mapped_bytes() + limits["memory_bytes"]
    for which, value in (
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_CPU, limits["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT),
        (resource.RLIMIT_NPROC, 0),  # fork() and new threads fail (not enforced for root)
        (resource.RLIMIT_AS, address_space),
    ):
        resource.setrlimit(which, (value, value))


def _mapped_bytes() -> int:
    """The virtual memory this process already maps (the preloaded interpreter)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


class _CappedOutput(io.TextIOBase):
    """The answer code's sys.stdout and sys.stderr: keeps the first ``limit`` characters."""

    def __init__(self, limit: int):
        self.room, self.kept, self.dropped = limit, [], 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        keep = text[: self.room]
        if keep:
            self.kept.append(keep)
        self.room -= len(keep)
        self.dropped += len(text) - len(keep)
        return len(text)

    def text(self) -> str:
        kept = "".join(self.kept)
        return kept + (f"\n[... {self.dropped} more characters]" if self.dropped else "")


def _run_job(sock: socket.socket, job: dict, arrays: list) -> None:
    """Run the answer cells, then the function on every case; one message per event."""
    output = _CappedOutput(job["limits"]["output_chars"])
    sys.stdout = sys.stderr = output
    _forbid(job["forbidden"])
    namespace = {"__name__": "__main__"}
    exec(PREAMBLE, namespace)
    for label, source in job["cells"]:
        try:
            exec(compile(source, f"<{label}>", "exec"), namespace)
        except BaseException as err:
            send_message(sock, {"kind": "cell_error", "cell": label, **_error(err)})
    fn = namespace.get(job["name"])
    for index, packed in enumerate(job["cases"]):
        header = {"kind": "case", "index": index}
        try:
            if not callable(fn):
                raise NameError(f"{job['name']} is not defined by your answer cells")
            args = {key: from_wire(value, arrays) for key, value in packed.items()}
            results = []
            for _ in range(job["draws"]):  # stochastic exercises: twice, same generator state
                kwargs = {key: to_torch(value) for key, value in args.items()}
                results += to_arrays(fn(**kwargs), job["n_outputs"])
        except OutputError as err:
            send_message(sock, {**header, "outcome": "bad_output", "message": str(err)})
        except BaseException as err:
            send_message(sock, {**header, "outcome": "raised", **_error(err)})
        else:
            send_message(sock, {**header, "outcome": "ok"}, results)
    send_message(sock, {"kind": "done", "output": output.text()})


def _forbid(names: list[str]) -> None:
    """Replace each forbidden name in torch's namespaces by something that raises."""
    import torch.nn.functional as F

    namespaces = {
        "torch": torch,
        "torch.Tensor": torch.Tensor,
        "torch.nn": torch.nn,
        "torch.nn.functional": F,
        "torch.special": torch.special,
        "torch.autograd": torch.autograd,
    }
    for prefix, namespace in namespaces.items():
        for name in names:
            if hasattr(namespace, name):
                setattr(namespace, name, _blocked(f"{prefix}.{name}", namespace, name))


def _blocked(qualname: str, namespace, name: str):
    def refuse(*args, **kwargs):
        raise ForbiddenCallError(f"{qualname} is not allowed in this exercise")

    if isinstance(namespace, type) and not callable(getattr(namespace, name)):
        return property(refuse)  # an attribute such as Tensor.grad
    return refuse


# --- converting results; course_utils.exercises (and so `check`) uses these too, so that
# the student's kernel and the grader judge the same thing. They live here because the
# sandbox cannot import course_utils.


def to_torch(value):
    """Plain data -> call arguments: arrays become tensors (same dtype), a GeneratorSeed a
    fresh seeded torch.Generator, tuples recurse. Every call makes new objects."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, GeneratorSeed):
        return torch.Generator().manual_seed(value.seed)
    if isinstance(value, tuple):
        return tuple(to_torch(v) for v in value)
    return value


class OutputError(Exception):
    """The function returned something that is not a tensor (or tuple of tensors)."""


def to_arrays(result, n_outputs: int) -> list[np.ndarray]:
    """The function's result -> a list of ``n_outputs`` plain arrays.

    Only exact ``torch.Tensor`` (no subclass, whose methods could lie) and ``float`` are
    accepted; each becomes a fresh ``numpy.ndarray``.
    """
    if n_outputs > 1 and not (isinstance(result, tuple) and len(result) == n_outputs):
        raise OutputError(f"returned {_describe(result)}, expected a tuple of {n_outputs} tensors")
    arrays = []
    for value in result if n_outputs > 1 else (result,):
        if type(value) is float:  # schedules and other scalar exercises return a float
            arrays.append(np.array(value, dtype=np.float64))
        elif type(value) is torch.Tensor:
            arrays.append(np.array(value.detach().cpu().numpy(), copy=True))
        else:
            raise OutputError(f"returned {_describe(value)}, expected a torch.Tensor")
    return arrays


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {type(value).__name__} of shape {tuple(value.shape)}"
    if isinstance(value, tuple):
        return f"a tuple of length {len(value)}"
    return f"a {type(value).__name__}"


def _error(err: BaseException) -> dict:
    """An exception as plain data: its type name, message and where in the answer cells."""
    try:
        message = str(err)[:500]
    except BaseException:
        message = "(the exception's message could not be shown)"
    where, tb = "", err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<cell "):
            where = f"{filename.strip('<>')}, line {tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(err, SyntaxError) and err.lineno is not None:
        where = f"{str(err.filename).strip('<>')}, line {err.lineno}"
    return {"type": type(err).__name__, "message": message, "where": where}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
