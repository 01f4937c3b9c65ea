"""The untrusted side of `course grade`: the sandbox server and the children that run answer code.

The grader (course_utils.grading.pool) starts this file as a *sandbox server*:

    python -I -S course_utils/sandbox.py CTRL_FD CONFIG_JSON

with a scrubbed environment. ``-I -S`` leaves out the user's and the venv's site-packages;
only the directories holding numpy and torch (listed in the config) are put back on
``sys.path``, so the editable ``course_utils`` package -- where the reference solutions
live -- is not importable (a meta-path hook refuses it as well). The array conversions
are loaded from ``conversion.py`` by file name.

Isolation. Before it imports numpy and torch, the server moves into new namespaces:
PID (it becomes process 1 of its own; the children of other servers and the grader are
invisible and cannot be signalled), mount (a fresh /proc; every file system read-only),
IPC and network (no interfaces). As root it does so directly; otherwise through a new
user namespace that maps only its own user id. Where namespaces are refused (Docker's
default seccomp profile, for one), it runs without them and says so; the grader refuses
to grade several students then (``Grader(isolated=True)``).

It then imports numpy and torch once and serves requests on its control socket: each
request carries a fresh socket for one job; the server forks a child for it, waits until
the grader says "stop", kills the child's whole process group, reaps it and reports how
it ended. The server never sees a job's data, so a child inherits nothing but the
preloaded modules.

A child, before it runs any answer code:

- starts a new session, points stdin/stdout/stderr at /dev/null and closes every other
  inherited descriptor;
- with namespaces, gets mount and IPC namespaces of its own: a private tmpfs as /tmp (its
  working directory) and a private /dev (null, zero, full, random, urandom and an
  empty shm). All of it disappears with the child, so nothing it writes outlives it and
  no other child can read it. Without namespaces it works in a fresh directory, removed
  afterwards (the removal never raises; a server that cannot remove it is replaced);
- as root, switches to the user id the grader gave its server (one per server, chosen
  inside the user-id range this process may use); in a user namespace of its own,
  drops every capability;
- blocks, at the ATen dispatcher, every operator whose name contains a forbidden name as
  a word (``softmax`` blocks ``aten::softmax.int``, ``aten::_log_softmax``,
  ``aten::_safe_softmax``, ...), so that ``torch.nn.Softmax`` or ``F.cross_entropy``
  cannot compute a forbidden function either; the registrations' handle is unreachable from
  Python, so not even code past the answer-cell check can undo them (see _block_operators);
- installs a seccomp filter that makes the keyring syscalls (add_key, request_key,
  keyctl) fail: the kernel's keyrings are shared by every process of a user and of a
  session, whatever the namespaces, and would carry values from one child to the next;
- sets rlimits: no core dumps, CPU seconds, address space (what the preloaded
  interpreter already maps plus the memory limit), file size, and no new processes or
  threads.

It then runs a fixed preamble and the answer cells in one namespace, reports each cell as
it finishes, calls the exercise's function on each test case the grader sent and streams
back one message per case. (What answer code may use is checked on its syntax tree
before it is sent here, by course_utils.grading.program; numpy's and torch's C code look
up builtins such as ``open`` in the caller's namespace, so the namespace keeps them all.)

Wire format (both directions): a message is a JSON header frame followed by the header's
``arrays`` count of .npy frames; a frame is an 8-byte big-endian length and its bytes.
Arrays are written with ``allow_pickle=False`` and read back by parsing the .npy header
and accepting only boolean and numeric dtypes, so nothing is ever unpickled. Everything
the child sends is untrusted: the grader checks sizes and counts against what it
expects, validates the data and compares it with expected values the child never sees.

Only the standard library, numpy and torch are imported here: the grader imports this
module for the wire format, and the server runs it without course_utils on its path.
"""

import ctypes
import io
import json
import math
import os
import re
import resource
import signal
import socket
import struct
import sys
import time
import warnings

PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
PREAMBLE_NAMES = ("math", "np", "torch", "F")
# The builtins answer code may name (course_utils.grading.program rejects the others).
ANSWER_BUILTINS = (
    *("abs", "all", "any", "bool", "callable", "chr", "complex", "dict", "divmod"),
    *("enumerate", "filter", "float", "format", "frozenset", "hash", "int", "isinstance"),
    *("issubclass", "iter", "len", "list", "map", "max", "min", "next", "ord", "pow"),
    *("print", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str"),
    *("sum", "tuple", "zip", "Ellipsis", "NotImplemented"),
    *("ArithmeticError", "AssertionError", "AttributeError", "Exception"),
    *("FloatingPointError", "IndexError", "KeyError", "LookupError"),
    *("NotImplementedError", "OverflowError", "RuntimeError", "StopIteration"),
    *("TypeError", "ValueError", "ZeroDivisionError"),
)
# Standard modules loaded in the server, so that numpy and torch can import them lazily
# even when the sandbox user cannot read the Python installation (e.g. one under /root).
PRELOADED = ("collections", "dataclasses", "functools", "itertools", "operator", "random")
PRELOADED += ("statistics", "typing")
FILE_SIZE_LIMIT = 16 * 2**20  # bytes any file written by the answer code may reach
SCRATCH_OPTIONS = "size=16m,nr_inodes=4096"  # the child's private /tmp
MAX_JOB_BYTES = 256 * 2**20  # a job frame the child accepts (the grader's, trusted)
MAX_HEADER_BYTES = 64 * 2**10  # a header frame from the child
MAX_ARRAYS = 64
NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: the dtypes we accept

_FRAME = struct.Struct(">Q")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class ForbiddenCallError(Exception):
    """Raised by an operator the exercise forbids (aten::softmax in the softmax exercise, ...)."""


def name_words(name: str) -> list[str]:
    """The words of an identifier, lower case, split at underscores and capitals:
    ``log_softmax`` -> [log, softmax], ``CrossEntropyLoss`` -> [cross, entropy, loss]."""
    words = []
    for part in name.split("_"):
        found = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+[a-z]*", part)
        words += found if "".join(found) == part else [part] if part else []
    return [word.lower() for word in words]


MENTION_WORDS = 8  # the most words a forbidden name has (binary_cross_entropy_with_logits: 6)


def word_spans(name: str, longest: int | None = None) -> set[str]:
    """Every run of consecutive words of ``name`` (of at most ``longest`` words), joined:
    what it *mentions*. With ``longest`` the work is linear in the length of the name."""
    words = name_words(name)
    longest = len(words) if longest is None else longest
    return {
        "".join(words[i:j])
        for i in range(len(words))
        for j in range(i + 1, min(i + longest, len(words)) + 1)
    }


def mentions(name: str, forbidden: str) -> bool:
    """Whether identifier ``name`` contains ``forbidden`` as whole words, ignoring case and
    underscores: ``LogSoftmax`` and ``gumbel_softmax`` mention ``softmax``; ``requires_grad``
    mentions ``grad``, ``gradient`` does not."""
    return "".join(name_words(forbidden)) in word_spans(name, MENTION_WORDS)


# --- isolation: standard library only (it runs before numpy and torch are imported) -----

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECUREBITS, PR_CAPBSET_DROP = 1, 38, 28, 24
SECURE_ALL_BITS = 0x3F  # noroot, no setuid fixup, keep caps off: and each of them locked
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD, SYS_MOUNT_SETATTR = 1, 0x8000, -100, 442
DEVICES = ("null", "zero", "full", "random", "urandom")
_LIBC = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    result = _LIBC.mount(
        encode(source), target.encode(), encode(fstype), ctypes.c_ulong(flags), encode(data)
    )
    _check(result, f"mount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("set", "clear", "propagation", "userns")]


def enter_namespaces() -> str:
    """Move into new PID, mount, IPC and network namespaces; "" on success, else why not.

    On success this process has forked: the caller continues as process 1 of the new PID
    namespace (with a fresh /proc and every mount read-only), while the original process
    only waits for it and exits with its status.
    """
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
    uid, gid = os.getuid(), os.getgid()
    if _LIBC.unshare(flags) != 0:
        if _LIBC.unshare(flags | CLONE_NEWUSER) != 0:
            return f"the kernel refused new namespaces ({os.strerror(ctypes.get_errno())})"
        try:  # map our own user and group id to root of the new user namespace
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1")):
                with open(f"/proc/self/{name}", "w") as file:
                    file.write(text)
            with open("/proc/self/gid_map", "w") as file:
                file.write(f"0 {gid} 1")
        except OSError as err:
            return f"could not map the user id into a new user namespace ({err})"
    pid = os.fork()
    if pid:  # the waiter: holds no descriptor the grader talks to
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
    # The waiter's death kills us. (Should it die before this line, the grader has closed
    # our control socket as well, and we stop at the first read.)
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _read_only_everywhere()
    except OSError as err:
        return f"could not set up the mounts of the new namespaces ({err})"
    return ""


def _read_only_everywhere() -> None:
    """Make every mount of this mount namespace read-only."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    size = ctypes.sizeof(attr)
    args = (SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr), size)
    if _LIBC.syscall(*args) == 0:
        return
    # Kernels before 5.12 have no mount_setattr: remount each mount point, keeping the
    # flags a user namespace may not clear.
    keep = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "relatime": 1 << 21}
    keep |= {"noatime": 1024, "nodiratime": 2048}
    with open("/proc/self/mountinfo") as file:
        mounts = [line.split() for line in file]
    for fields in mounts:
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040
        flags = MS_BIND | 32 | 1  # MS_REMOUNT | MS_RDONLY
        flags |= sum(keep.get(option, 0) for option in fields[5].split(","))
        _mount(None, point, None, flags)


def private_scratch(uid: int | None) -> None:
    """In a forked child: private mount and IPC namespaces, a fresh tmpfs as /tmp (the
    working directory) and a private /dev, all gone when the child is."""
    _check(_LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    owner = 0 if uid is None else uid
    options = f"{SCRATCH_OPTIONS},mode=0700,uid={owner},gid={owner}"
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, options)
    devices = {name: os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES}
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
    for name, fd in devices.items():
        os.close(os.open(f"/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
        _mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
        os.close(fd)
    os.mkdir("/dev/shm")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options)
    os.chdir("/tmp")


def drop_privileges(uid: int | None) -> None:
    """Become ``uid`` (when root and given one); else, if we hold capabilities (root of a
    user namespace of our own), drop them all for good."""
    _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if os.getuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # leaving uid 0 clears every capability
        return
    if os.getuid() == 0:
        _LIBC.prctl(PR_SET_SECUREBITS, SECURE_ALL_BITS, 0, 0, 0)  # no root powers on exec
        for cap in range(64):
            _LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, self
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty
        _check(_LIBC.capset(header, data), "capset")


# Kernel keyrings outlive a process and are shared by every process of a user (and of a
# session): namespaces do not separate them, so they would carry values from one child to
# the next. A seccomp filter makes add_key, request_key and keyctl fail with EPERM.
KEYRING_SYSCALLS = {  # AUDIT_ARCH_* -> the syscall numbers of add_key, request_key, keyctl
    0xC000003E: (248, 249, 250),  # x86_64
    0xC00000B7: (217, 218, 219),  # aarch64
}
X32_SYSCALL_BIT = 0x40000000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_EPERM = 0x7FFF0000, 0x00050000 | 1


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8)]
    _fields_ += [("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def forbid_keyrings() -> None:
    """Install a seccomp filter that makes the keyring syscalls fail (EPERM), on x86_64
    and aarch64; raises OSError where the kernel refuses the filter."""
    ld_arch, ld_nr, ret = (0x20, 0, 0, 4), (0x20, 0, 0, 0), 0x06  # BPF_LD|W|ABS, BPF_RET
    jeq, jge = 0x15, 0x35  # BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K
    program = [ld_arch]
    for arch, numbers in KEYRING_SYSCALLS.items():
        # if arch matches: load the number, refuse ours (and x32's), else allow
        body = [ld_nr, (jge, 0, 0, X32_SYSCALL_BIT)] if arch == 0xC000003E else [ld_nr]
        body += [(jeq, 0, 0, number) for number in numbers]
        body += [(ret, 0, 0, SECCOMP_RET_ALLOW), (ret, 0, 0, SECCOMP_RET_EPERM)]
        # each conditional jumps to the final "refuse" when true
        fixed = []
        for i, (code, _, _, k) in enumerate(body):
            if code in (jeq, jge):
                fixed.append((code, len(body) - 2 - i, 0, k))
            else:
                fixed.append((code, 0, 0, k))
        program += [(jeq, 0, len(fixed), arch), *fixed]
    program.append((ret, 0, 0, SECCOMP_RET_ALLOW))
    filters = (_SockFilter * len(program))(*[_SockFilter(*row) for row in program])
    fprog = _SockFprog(len(program), filters)
    _check(_LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def remove_tree(path: str) -> bool:
    """Remove a directory tree however deep or strange, without following links.

    Returns whether it is gone; never raises. Instead of recursing it moves the contents
    of each subdirectory up to the top (two descriptors open at any time), so depth costs
    no stack and no path length.
    """
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    moved = 0
    try:
        progress = True
        while progress:
            progress = False
            for entry in list(os.scandir(top)):
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.name, dir_fd=top)
                        progress = True
                        continue
                    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                    sub = os.open(entry.name, flags, dir_fd=top)
                    try:
                        os.fchmod(sub, 0o700)
                        for inner in list(os.scandir(sub)):
                            moved += 1
                            os.rename(inner.name, f".{moved}", src_dir_fd=sub, dst_dir_fd=top)
                    finally:
                        os.close(sub)
                    os.rmdir(entry.name, dir_fd=top)
                    progress = True
                except OSError:
                    continue
        os.close(top)
        os.rmdir(path)
        return True
    except Exception:  # whatever the tree holds, cleanup does not raise
        return False


if __name__ == "__main__":
    # The server: isolate first (a new user namespace needs a single-threaded process),
    # then put back the site-packages directories the grader named (we run with -S).
    CONFIG = json.loads(sys.argv[2])
    ISOLATION_PROBLEM = enter_namespaces() if CONFIG["namespaces"] else "not requested"
    sys.path.extend(CONFIG["site"])

import numpy as np  # noqa: E402
import torch  # noqa: E402

if __name__ == "__main__":
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "course_conversion", os.path.join(os.path.dirname(__file__), "conversion.py")
    )
    conversion = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(conversion)
else:
    from course_utils import conversion

GeneratorSeed, OutputError = conversion.GeneratorSeed, conversion.OutputError  # public here too


# --- wire format ----------------------------------------------------------------------


def encode_array(array: np.ndarray) -> bytes:
    """An array as .npy bytes (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode_array(data: bytes) -> np.ndarray:
    """.npy bytes -> a numeric array; anything else (objects, records, bad shapes or sizes)
    is a ProtocolError, whatever goes wrong while parsing."""
    try:
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ProtocolError(f"unsupported .npy version {version}")
        read_header = np.lib.format.read_array_header_1_0
        if version == (2, 0):
            read_header = np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream)
        if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            raise ProtocolError(f"arrays must be boolean or numeric, got dtype {dtype}")
        if any(type(n) is not int or n < 0 for n in shape):
            raise ProtocolError(f"bad array shape {shape}")
        count = math.prod(shape)
        if count * dtype.itemsize != len(data) - stream.tell():
            raise ProtocolError(f"array of shape {shape} and dtype {dtype} has the wrong size")
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
        return flat.reshape(shape, order="F" if fortran_order else "C").copy()
    except ProtocolError:
        raise
    except Exception as err:  # every decoding problem is the sender's
        raise ProtocolError(f"not a valid .npy array ({type(err).__name__}: {err})") from None


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


def recv_header(sock: socket.socket, deadline: float | None, limit: int) -> tuple[dict, int]:
    """Receive a header frame: (the header without "arrays", how many arrays follow)."""
    try:
        header = json.loads(recv_frame(sock, deadline, limit))
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"malformed message header: {err}") from None
    n_arrays = header.pop("arrays", None) if isinstance(header, dict) else None
    if type(n_arrays) is not int or not 0 <= n_arrays <= MAX_ARRAYS:
        raise ProtocolError("malformed message header")
    return header, n_arrays


def recv_message(sock: socket.socket, deadline: float | None = None, limit: int = MAX_JOB_BYTES):
    """Receive one message: (header, arrays); each frame at most ``limit`` bytes.

    Raises ProtocolError for malformed data, EOFError when the peer is gone and
    TimeoutError at the deadline (a time.monotonic() value).
    """
    header, n_arrays = recv_header(sock, deadline, limit)
    return header, [decode_array(recv_frame(sock, deadline, limit)) for _ in range(n_arrays)]


def recv_frame(sock: socket.socket, deadline: float | None, limit: int) -> bytes:
    """One frame of at most ``limit`` bytes."""
    (size,) = _FRAME.unpack(_recv_exactly(sock, _FRAME.size, deadline))
    if size > limit:
        raise ProtocolError(f"a message part of {size} bytes exceeds the {limit} bytes expected")
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


# --- the server -------------------------------------------------------------------------


class _RefuseCourseUtils:
    """A meta-path finder that refuses to import course_utils (the reference solutions)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "course_utils":
            raise ImportError("answer code cannot import course_utils when it is graded")
        return None


_OPERATORS: dict[str, list[str]] = {}  # word span -> ATen operators that mention it
_KERNEL_KEYS: dict[str, list[str]] = {}  # operator -> the dispatch keys we block it at
# Where a forbidden operator gets its refusal: its composite kernel if it has one (that
# covers every backend), and each CPU backend kernel (a direct kernel wins over a composite).
BLOCKED_KEYS = ("CompositeImplicitAutograd", "CompositeExplicitAutograd", "CPU", "SparseCPU")
BLOCKED_KEYS += ("SparseCsrCPU", "QuantizedCPU", "MkldnnCPU", "NestedTensorCPU")


def _index_operators(names) -> None:
    """Index the ATen operators that mention each of ``names`` (forbidden names), and the
    dispatch keys to block each at.

    Backward operators are left out: only the autograd engine calls them, and answer code
    cannot start it without naming what an exercise that forbids it forbids (``backward``,
    ``grad``) or a module it may not use (``torch.autograd``, ``torch.func``).
    """
    wanted = {"".join(name_words(name)) for name in names} - _OPERATORS.keys()
    if not wanted:
        return
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    for span in wanted:
        _OPERATORS[span] = []
    for qualified in torch._C._dispatch_get_all_op_names():
        namespace, _, name = qualified.partition("::")
        words = word_spans(name.partition(".")[0])
        if namespace == "aten" and "backward" not in words and words & wanted:
            for span in words & wanted:
                _OPERATORS[span].append(qualified)
            if qualified not in _KERNEL_KEYS:
                _KERNEL_KEYS[qualified] = [key for key in BLOCKED_KEYS if has(qualified, key)]


def serve(ctrl: socket.socket, config: dict, isolated: bool) -> None:
    """The server's loop: fork a child per job socket received, report how each ended.

    Control messages (one datagram each): the grader sends b"run" with the job socket
    attached, later b"stop"; the server then kills the child's process group, reaps it
    (and without namespaces removes its working directory) and answers {"exit": code}
    or {"signal": number}, with "clean": false if the directory could not be removed.
    It stops when the grader is gone.
    """
    while True:
        message, fds, _, _ = socket.recv_fds(ctrl, 64, 4)
        if not message or len(fds) != 1:
            return
        job = socket.socket(fileno=fds[0])
        workdir = None
        if not isolated:
            workdir = os.path.join(config["scratch"], f"job-{time.monotonic_ns()}")
            os.mkdir(workdir, 0o700)
        pid = os.fork()
        if pid == 0:
            _child(job, config, workdir)  # never returns
        job.close()
        stop = ctrl.recv(64)
        for kill in (os.kill, os.killpg):  # the child, then anything it started
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass  # already gone
        _, status = os.waitpid(pid, 0)
        clean = workdir is None or remove_tree(workdir)
        if not stop:
            return
        if os.WIFSIGNALED(status):
            ended = {"signal": os.WTERMSIG(status)}
        else:
            ended = {"exit": os.waitstatus_to_exitcode(status)}
        ctrl.send(json.dumps({**ended, "clean": clean}).encode())


def _probe(setup) -> str:
    """Run ``setup`` in a forked child: "" when it works, else why not."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            setup()
            message = b""
        except BaseException as err:  # reported to the grader
            message = str(err).encode()[:500]
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        problem = pipe.read().decode(errors="replace")
    os.waitpid(pid, 0)
    return problem


def _isolation(config: dict) -> tuple[str, str]:
    """How the children will be isolated, and if not with namespaces, why not.

    "namespaces": each child in namespaces of its own (see the module docstring);
    "uids": no namespaces, but each server's children run as a user id of their own;
    "none": no namespaces, not root: the children run as the grader's user;
    "root": no namespaces and no user id to switch to: the children would run as root.
    """
    uid = config["uid"]
    setup = lambda: (private_scratch(uid), drop_privileges(uid), forbid_keyrings())  # noqa: E731
    problem = ISOLATION_PROBLEM or _probe(setup)
    if not problem:
        return "namespaces", ""
    if os.getuid() != 0:
        return "none", problem
    if uid is not None and not _probe(lambda: drop_privileges(uid)):
        return "uids", problem
    return "root", problem


def main(argv: list[str]) -> int:
    """Entry point of the server: ``sandbox.py CTRL_FD CONFIG_JSON``."""
    ctrl = socket.socket(fileno=int(argv[1]))
    isolation, problem = _isolation(CONFIG)
    torch.set_num_threads(1)  # the children may not start threads
    for module in PRELOADED:
        __import__(module)
    _index_operators(CONFIG["forbidden"])
    sys.meta_path.insert(0, _RefuseCourseUtils())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides when we stop
    ready = {"ready": True, "isolation": isolation, "detail": problem}
    ctrl.send(json.dumps(ready).encode())
    if isolation != "root":
        serve(ctrl, CONFIG, isolation == "namespaces")
    return 0


# --- the child ------------------------------------------------------------------------


def _child(job: socket.socket, config: dict, workdir: str | None) -> None:
    """Isolate this forked process, run one job, and exit (never returns)."""
    code = 0
    try:
        _isolate(job.fileno())
        header, arrays = recv_message(job)
        if workdir is None:
            private_scratch(config["uid"])
        else:
            os.umask(0o077)
            if os.getuid() == 0 and config["uid"] is not None:
                os.chown(workdir, config["uid"], config["uid"])
            os.chdir(workdir)
        _block_operators(header["forbidden"])
        drop_privileges(config["uid"])
        try:
            forbid_keyrings()
        except OSError:
            if workdir is None:  # with namespaces the server's probe installed one
                raise
        _set_limits(header["limits"])
        _run_job(job, header, arrays)
    except BaseException:
        code = 70
    os._exit(code)


def _isolate(keep_fd: int) -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    # Close everything else we inherited (the server's control socket included).
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, os.sysconf("SC_OPEN_MAX"))


def _block_operators(names: list[str]) -> None:
    """Make every ATen operator that mentions a forbidden name raise ForbiddenCallError."""
    _index_operators(names)  # the server indexed the assignment's names already
    blocked = {}  # operator -> the most specific forbidden name it mentions
    for name in sorted(names, key=lambda name: -len(name_words(name))):
        for qualified in _OPERATORS.get("".join(name_words(name)), ()):
            blocked.setdefault(qualified, name)
    if not blocked:
        return
    # The registrations last as long as the dispatcher's library handle. We keep it alive
    # by a reference count of our own and drop every Python reference to it: the handle
    # is not tracked by the garbage collector, so no code in this process can find it to
    # undo them (torch.library.Library would keep it, with a _destroy method, in a list).
    library = torch._C._dispatch_library("IMPL", "aten", "", "<sandbox>", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
        for qualified, name in blocked.items():
            refuse = _refusal(name, qualified)
            for key in _KERNEL_KEYS[qualified] or ["CPU"]:
                library.impl(qualified.partition("::")[2], key, refuse, False)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(library))
    del library


def _refusal(name: str, operator: str):
    def refuse(*args, **kwargs):
        raise ForbiddenCallError(
            f"your code computes {name} (through the operator {operator}), which this "
            "exercise asks you to write yourself"
        )

    return refuse


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
    send_message(sock, {"kind": "start"})
    output = _CappedOutput(job["limits"]["output_chars"])
    sys.stdout = sys.stderr = output
    namespace = {"__name__": "__main__"}
    exec(PREAMBLE, namespace)
    for label, source in job["cells"]:
        try:
            exec(compile(source, f"<{label}>", "exec"), namespace)
        except BaseException as err:
            send_message(sock, {"kind": "cell", "cell": label, "ok": False, **_error(err)})
        else:
            send_message(sock, {"kind": "cell", "cell": label, "ok": True})
    fn = namespace.get(job["name"])
    kinds = tuple(job["returns"])
    for index, packed in enumerate(job["cases"]):
        header = {"kind": "case", "index": index}
        try:
            if not callable(fn):
                raise NameError(f"{job['name']} is not defined by your answer cells")
            args = {key: from_wire(value, arrays) for key, value in packed.items()}
            results = []
            for _ in range(job["draws"]):  # stochastic exercises: twice, same generator state
                kwargs = {key: conversion.to_torch(value) for key, value in args.items()}
                results += conversion.to_arrays(fn(**kwargs), job["n_outputs"], kinds)
            size = sum(result.nbytes for result in results)
            if size > job["max_bytes"][index]:
                shapes = ", ".join(f"{r.shape} {r.dtype}" for r in results)
                raise OutputError(
                    f"returned arrays of {size} bytes ({shapes}); at most "
                    f"{job['max_bytes'][index]} bytes are accepted for this case"
                )
        except OutputError as err:
            send_message(sock, {**header, "outcome": "bad_output", "message": str(err)})
        except BaseException as err:
            send_message(sock, {**header, "outcome": "raised", **_error(err)})
        else:
            send_message(sock, {**header, "outcome": "ok"}, results)
    send_message(sock, {"kind": "done", "output": output.text()})


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
    return {"type": type(err).__name__[:100], "message": str(message), "where": where}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
