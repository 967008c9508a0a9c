"""Run a piece of work in a forked child process with hard time and memory limits: what the
SPARQL endpoint needs, because rdflib evaluates in pure Python and C code (``re`` on a
catastrophic pattern, the parser on a huge expression) can hold the interpreter for minutes;
a thread cannot be stopped, a process can.

How (Linux only, where ``os.fork`` is safe for this and ``RLIMIT_AS`` is enforced): the
child is forked from the calling thread, so it shares the parent's memory copy-on-write (the
cached graph is not copied or pickled); it lowers its own limits (address space: what it has
plus ``memory_mb``; CPU time: the time limit plus a margin, so it dies even if the parent
does), runs the work, sends the pickled answer back through a pipe and leaves with
``os._exit`` (no finaliser, no ``atexit`` handler, no flush of the parent's files). The
parent waits for the answer with the deadline, kills the child when it passes, and always
reaps it. At most ``MAX_CHILDREN`` children run at once; a caller that cannot get a slot
within its time limit is told the service is busy.

Elsewhere (``AVAILABLE`` false: macOS, Windows) there is no child: callers run the work in
their own process, without hard limits, and say so (``rdf_sparql.run``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Final, NoReturn, TypeVar

R = TypeVar("R")

AVAILABLE: Final = sys.platform.startswith("linux") and hasattr(os, "fork")
TIMEOUT: Final = 10.0  # seconds: the SPARQL endpoint's and command's default time limit
MEMORY_MB: Final = 512  # MiB beyond the parent's: their default memory limit
MAX_CHILDREN: Final = 4  # children running at once, per process
MAX_BYTES: Final = 64 * 2**20  # the largest answer a child may send back
_CPU_MARGIN: Final = 2  # seconds of CPU time beyond the time limit before the kernel kills
_EXIT_MEMORY: Final = 3  # exit codes of a child that could not send its answer
_EXIT_FAILED: Final = 4
_slots = threading.BoundedSemaphore(MAX_CHILDREN)


class SandboxError(Exception):
    """The work gave no answer; ``kind`` says why: ``timeout``, ``memory`` (it reached its
    memory limit), ``too-large`` (its answer is over ``MAX_BYTES``), ``busy`` (no free slot
    in time), ``failed`` (it raised: ``trace`` holds the child's traceback for the log)."""

    def __init__(self, kind: str, message: str, trace: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.trace = trace


def run_isolated(
    work: Callable[[], R],
    *,
    timeout: float | None,
    memory_mb: int | None,
    max_bytes: int = MAX_BYTES,
) -> R:
    """``work()`` computed in a forked child with at most ``timeout`` seconds (wall clock,
    from the fork to the answer) and ``memory_mb`` MiB of address space beyond what the
    child starts with (None: no such limit). Its result must pickle. ``SandboxError`` when
    it gives no answer. Only where ``AVAILABLE``."""
    if not AVAILABLE:
        raise RuntimeError("run_isolated needs Linux (os.fork and RLIMIT_AS)")
    if not _slots.acquire(timeout=timeout):
        raise SandboxError("busy", f"{MAX_CHILDREN} queries are running: try again shortly")
    try:
        return _fork_and_wait(work, timeout, memory_mb, max_bytes)
    finally:
        _slots.release()


def _fork_and_wait(
    work: Callable[[], R], timeout: float | None, memory_mb: int | None, max_bytes: int
) -> R:
    deadline = None if timeout is None else time.monotonic() + timeout
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:
        os.close(read_fd)
        _child(work, write_fd, timeout, memory_mb, max_bytes)
    os.close(write_fd)
    status: int | None = None
    try:
        data = _receive(read_fd, deadline, max_bytes)
        status = _reap(pid)
    finally:
        os.close(read_fd)
        if status is None:  # stopped waiting (deadline, too large, interrupted): kill it
            _kill(pid)
    result: R = _outcome(data, status, timeout, memory_mb)
    return result


def _receive(fd: int, deadline: float | None, max_bytes: int) -> bytes:
    """What the child writes until it closes the pipe; ``SandboxError`` at the deadline."""
    poller = select.poll()  # not select.select: a server may hold descriptors over 1024
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is None:
            wait_ms = None
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError("timeout", "ran out of time")
            wait_ms = max(1, math.ceil(left * 1000))
        if not poller.poll(wait_ms):
            continue  # the loop raises once the deadline has passed
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes + 4096:
            raise SandboxError("too-large", f"the answer is larger than {max_bytes >> 20} MiB")


def _reap(pid: int) -> int:
    """The child's wait status, once it has ended (it ends right after closing the pipe)."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # SIGCHLD ignored by the host process: reaped already
        return 0
    return status


def _kill(pid: int) -> None:
    """Kill a child not yet reaped (its pid cannot have been reused) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _outcome(data: bytes, status: int, timeout: float | None, memory_mb: int | None) -> Any:
    """The work's result from the child's answer, or the ``SandboxError`` saying why none."""
    if data:
        answer = pickle.loads(data)  # our own child's answer
        if answer[0] == "ok":
            return answer[1]
        if answer[0] == "memory":
            raise SandboxError("memory", f"needed more than {memory_mb} MiB of memory")
        if answer[0] == "too-large":
            raise SandboxError("too-large", f"the answer is larger than {answer[1] >> 20} MiB")
        raise SandboxError("failed", answer[1], answer[2])
    code = os.waitstatus_to_exitcode(status) if status else 0
    if code == _EXIT_MEMORY:
        raise SandboxError("memory", f"needed more than {memory_mb} MiB of memory")
    if code == -signal.SIGXCPU:
        raise SandboxError("timeout", "ran out of time")
    ended = f"signal {-code}" if code < 0 else f"exit code {code}"
    raise SandboxError("failed", f"the worker process ended without an answer ({ended})")


def _limit(timeout: float | None, memory_mb: int | None) -> None:
    """Lower this (child) process's limits: address space and CPU time."""
    import resource

    if memory_mb is not None:
        with open("/proc/self/statm", encoding="ascii") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + memory_mb * 2**20
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if timeout is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        seconds = math.ceil(timeout) + _CPU_MARGIN
        if hard != resource.RLIM_INFINITY:
            seconds = min(seconds, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, hard))


def _quiet(unraisable: Any) -> None:
    """Ignore an exception Python cannot raise (in a child that is about to end)."""


def _child(
    work: Callable[[], Any], fd: int, timeout: float | None, memory_mb: int | None, max_bytes: int
) -> NoReturn:
    """The forked child: limits, work, answer, ``os._exit``. Never returns."""
    code = _EXIT_FAILED
    try:
        gc.freeze()  # the parent's objects: never collected (nor their finalisers run) here
        for number in (signal.SIGINT, signal.SIGTERM):  # not the server's handlers
            signal.signal(number, signal.SIG_DFL)
        sys.unraisablehook = _quiet  # generators closed by a MemoryError: not the server's log
        _limit(timeout, memory_mb)
        answer: tuple[Any, ...]
        try:
            answer = ("ok", work())
        except MemoryError:
            answer = ("memory",)
        except Exception as error:
            answer = ("failed", f"{type(error).__name__}: {error}", traceback.format_exc())
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            data = pickle.dumps(("memory",))
        except Exception as error:
            data = pickle.dumps(("failed", f"the answer could not be sent: {error}", None))
        if len(data) > max_bytes:
            data = pickle.dumps(("too-large", len(data)))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        code = 0
    except MemoryError:
        code = _EXIT_MEMORY
    except BaseException:
        code = _EXIT_FAILED
    finally:
        os._exit(code)


__all__ = [
    "AVAILABLE",
    "MAX_BYTES",
    "MAX_CHILDREN",
    "MEMORY_MB",
    "TIMEOUT",
    "SandboxError",
    "run_isolated",
]
