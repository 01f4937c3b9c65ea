"""The sandbox server pool: processes that run answer code, and what we accept from them.

Each server (``python -I -S sandbox.py``, see course_utils.sandbox) imports torch once
and forks a fresh child per job. Here we send a job, read the child's messages until it
is done, the deadline passes, it dies or it sends something we did not ask for, then
tell the server to kill it.

What we accept is what we expect: per answer cell one message, per hidden case one
message with exactly the expected number of arrays and at most ``max_bytes`` of them,
headers of at most 64 KB, then "done". Anything else -- a malformed frame, a bad .npy
header, a message too many or too large -- is a protocol error of the submission that
sent it: its run ends there, and the server, whose state is then in doubt, is closed
and replaced, never reused. So is a server that stops answering or reports that it could
not clean up. Closing never raises.

How long a child ran (``SandboxRun.seconds``) is what a submission is charged for: time
spent here waiting for a server, starting one or judging is not.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from course_utils import sandbox

# The whole environment of the sandbox servers: nothing of ours, one thread each.
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
SANDBOX_START_SECONDS = 120  # a cold `import torch` on a slow disk
SANDBOX_REPLY_SECONDS = 30
SANDBOX_UID_BASE = 1_000_000_000
NPY_HEADER_BYTES = 4096  # room for the .npy header of each array
# From strongest to weakest; see course_utils.sandbox._isolation.
ISOLATION_LEVELS = ("namespaces", "uids", "none", "root")


@dataclass
class SandboxRun:
    """What came back from one sandbox child."""

    cells: dict[str, dict] = field(default_factory=dict)  # label -> its cell message
    cases: dict[int, tuple[dict, list[np.ndarray]]] = field(default_factory=dict)
    ending: str = "exited"  # "done", "timeout", "exited" or "invalid"
    detail: str = ""  # how the process ended, or what was invalid
    output: str = ""  # what the answer code printed (truncated)
    seconds: float = 0.0  # how long the child ran
    started: bool = False  # whether the child got as far as running answer code
    crashed_in: str | None = None  # the cell running at the top level when it ended


class SandboxCrashed(Exception):
    """The sandbox server (not just one child) stopped answering."""


_uids = iter(range(10**9))  # a fresh user id offset for every server started
_uids_lock = threading.Lock()


def sandbox_uid() -> int | None:
    """A user id no other sandbox server of this process uses and that this process may
    switch to: 1,000,000,000 and up where mapped, else ids from the middle of the largest
    range of its user namespace's map (65,536 ids in a rootless container). None when
    this process is not root."""
    if os.geteuid() != 0:
        return None
    with _uids_lock:
        offset = next(_uids)
    ranges = sorted(_mapped("uid_map") & _mapped("gid_map"))
    for start, end in ranges:
        if start <= SANDBOX_UID_BASE and SANDBOX_UID_BASE + offset < end:
            return SANDBOX_UID_BASE + offset
    if not ranges:
        return None
    start, end = max(ranges, key=lambda r: r[1] - r[0])
    low, high = max(start, 1), end - 2  # not root, not the range's last id (often "nobody")
    middle = (low + high) // 2
    return middle + offset % (high - middle) if high > middle else None


def _mapped(name: str) -> set[tuple[int, int]]:
    """The id ranges [start, end) of /proc/self/<name> (inside this user namespace)."""
    try:
        with open(f"/proc/self/{name}") as file:
            rows = [line.split() for line in file]
    except OSError:
        return {(0, 2**32 - 1)}
    return {(int(inside), int(inside) + int(count)) for inside, _, count in rows}


class Server:
    """A sandbox server process and our control socket to it."""

    def __init__(self, namespaces: bool = True, forbidden: tuple[str, ...] = ()):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Without namespaces the children's working directories go in here: they may
        # enter their own (mode 0711 lets them through) but not list the others'.
        self.scratch = tempfile.mkdtemp(prefix="course-grader-")
        os.chmod(self.scratch, 0o711)
        site_dirs = sorted({str(Path(m.__file__).parent.parent) for m in (np, torch)})
        config = {"site": site_dirs, "uid": sandbox_uid(), "scratch": self.scratch}
        config |= {"namespaces": namespaces, "forbidden": list(forbidden)}
        command = [sys.executable, "-I", "-S", sandbox.__file__, str(theirs.fileno())]
        self.process = subprocess.Popen(
            [*command, json.dumps(config)],
            env=SANDBOX_ENV,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
            start_new_session=True,  # Ctrl-C reaches us; we stop it by closing the socket
        )
        theirs.close()
        self.ctrl = ours
        self.broken = False
        self.isolation, self.detail = "root", ""

    def wait_ready(self) -> None:
        """Wait until the server has imported torch and serves requests."""
        try:
            reply = self._reply(SANDBOX_START_SECONDS)
        except SandboxCrashed:
            raise RuntimeError("the sandbox server did not start (see its error above)") from None
        isolation = reply.get("isolation")
        self.isolation = isolation if isolation in ISOLATION_LEVELS else "root"
        self.detail = str(reply.get("detail", ""))

    def run(self, job: dict, arrays: list, seconds: float) -> SandboxRun:
        """Fork a child for ``job``, talk to it for at most ``seconds``, have it killed."""
        start = time.monotonic()
        ours, theirs = socket.socketpair()
        try:
            try:
                socket.send_fds(self.ctrl, [b"run"], [theirs.fileno()])
            finally:
                theirs.close()
            run = _converse(ours, job, arrays, start + seconds)
        except Exception as err:  # the server's state is in doubt
            self.broken = True
            run = SandboxRun(ending="exited", detail=f"the sandbox server stopped ({err})")
        finally:
            ours.close()
        run.seconds = time.monotonic() - start
        if run.ending == "invalid":
            self.broken = True
        try:
            self.ctrl.send(b"stop")
            ended = self._reply(SANDBOX_REPLY_SECONDS)
        except (OSError, SandboxCrashed) as err:
            self.broken = True
            if run.ending != "done":
                run.ending, run.detail = "exited", f"the sandbox server stopped ({err})"
            return run
        if ended.get("clean") is not True:
            self.broken = True  # a working directory left behind: do not reuse
        if run.ending in ("exited", "timeout") and ended.get("signal") == signal.SIGXCPU:
            run.ending, run.detail = "timeout", "the CPU time limit was reached"
        elif run.ending == "exited" and "signal" in ended:
            run.detail = f"killed by {_signal_name(ended['signal'])}"
        elif run.ending == "exited":
            run.detail = f"exit code {ended.get('exit')}"
        if run.ending != "done" and run.started:
            labels = [label for label, _ in job["cells"]]
            run.crashed_in = next((label for label in labels if label not in run.cells), None)
        elif run.ending == "exited" and not run.started:
            run.detail = f"the sandbox could not start the job: {run.detail}"
        return run

    def _reply(self, timeout: float) -> dict:
        self.ctrl.settimeout(timeout)
        try:
            reply = json.loads(self.ctrl.recv(4096) or b"null")
        except (OSError, ValueError) as err:
            raise SandboxCrashed(str(err)) from None
        if not isinstance(reply, dict):
            raise SandboxCrashed("the sandbox server has stopped")
        return reply

    def close(self) -> None:
        """Stop the server (it kills its current child when our socket closes), clean up.
        Never raises."""
        try:
            self.ctrl.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        except Exception as err:  # closing must not stop the grader
            print(f"course: could not stop a sandbox server: {err}", file=sys.stderr)
        if not sandbox.remove_tree(self.scratch):
            print(f"course: could not remove {self.scratch}", file=sys.stderr)


def _converse(sock: socket.socket, job: dict, arrays: list, deadline: float) -> SandboxRun:
    """Send the job, then collect what we expect until "done", the deadline, EOF or an
    unexpected message."""
    run = SandboxRun()
    labels = {label for label, _ in job["cells"]}
    n_arrays = job["n_outputs"] * job["draws"]
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sandbox.send_message(sock, job, arrays)
        while True:
            header, count = sandbox.recv_header(sock, deadline, sandbox.MAX_HEADER_BYTES)
            kind, index = header.get("kind"), header.get("index")
            if kind == "start" and count == 0 and not run.started and not run.cells:
                run.started = True
                continue
            if not run.started:
                raise sandbox.ProtocolError("a message before the start")
            if kind == "done" and count == 0:
                run.ending, run.output = "done", _text(header.get("output"), 10**5)
                return run
            cell = header.get("cell")
            if kind == "cell" and count == 0 and isinstance(cell, str) and cell in labels:
                if header["cell"] in run.cells:
                    raise sandbox.ProtocolError(f"two messages for {header['cell']}")
                run.cells[header["cell"]] = header
            elif kind == "case" and type(index) is int and 0 <= index < len(job["cases"]):
                if index in run.cases:
                    raise sandbox.ProtocolError(f"two results for case {index}")
                ok = header.get("outcome") == "ok"
                if count != (n_arrays if ok else 0):
                    raise sandbox.ProtocolError(f"{count} arrays for case {index}")
                room = job["max_bytes"][index] + NPY_HEADER_BYTES * count
                received = []
                for _ in range(count):
                    frame = sandbox.recv_frame(sock, deadline, room)
                    room -= len(frame)
                    received.append(sandbox.decode_array(frame))
                run.cases[index] = (header, received)
            else:
                raise sandbox.ProtocolError("a message that was not asked for")
    except TimeoutError:
        run.ending = "timeout"
    except (EOFError, ConnectionError):
        run.ending = "exited"
    except sandbox.ProtocolError as err:
        run.ending, run.detail = "invalid", str(err)
    return run


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _signal_name(number) -> str:
    try:
        return signal.Signals(number).name
    except (ValueError, TypeError):
        return f"signal {number}"


class SandboxPool:
    """``size`` sandbox servers shared by grading threads; a broken one is replaced.

    ``isolation`` is the weakest isolation of the servers started so far (one of
    ISOLATION_LEVELS), ``detail`` why it is not "namespaces".
    """

    def __init__(self, size: int, namespaces: bool = True, forbidden: tuple[str, ...] = ()):
        """``forbidden``: the names the jobs will forbid, so that each server finds their
        operators once (at start-up, not in every child)."""
        self.namespaces, self.forbidden = namespaces, forbidden
        self.isolation, self.detail = "namespaces", ""
        self._idle: queue.Queue[Server | None] = queue.Queue()
        servers = [Server(namespaces, forbidden) for _ in range(size)]  # import torch in parallel
        try:
            for server in servers:
                server.wait_ready()
                self._note(server)
        except BaseException:
            for server in servers:
                server.close()
            raise
        for server in servers:
            self._idle.put(server)

    def _note(self, server: Server) -> None:
        if ISOLATION_LEVELS.index(server.isolation) > ISOLATION_LEVELS.index(self.isolation):
            self.isolation, self.detail = server.isolation, server.detail

    def run(self, job: dict, arrays: list, seconds: float) -> SandboxRun:
        """Run one job on an idle server (waiting for one, or starting one, if needed)."""
        server = self._idle.get()
        try:
            if server is None:  # replace the broken one
                server = Server(self.namespaces, self.forbidden)
                try:
                    server.wait_ready()
                except BaseException:
                    server.broken = True
                    raise
                self._note(server)
            return server.run(job, arrays, seconds)
        finally:
            if server is not None and server.broken:
                server.close()
                server = None
            self._idle.put(server)

    def close(self) -> None:
        """Stop every server. Never raises."""
        while not self._idle.empty():
            server = self._idle.get_nowait()
            if server is not None:
                server.close()
