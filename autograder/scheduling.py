"""What jobs running at once share on one machine: its cores and GPU (``Slots``), and the
results of parts that are graded once per distinct answer (``Memo``). Each grading process
has its own; nothing here is a module global. Several grading processes on one machine
(the worker processes of a Dask cluster) also share its cores through ``HostCores``."""
from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Hashable, TypeVar

__all__ = ["Slots", "Memo", "HostCores", "usable_cores", "machine_cores_folder"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_cores_folder() -> Path:
    """Where ``HostCores`` keeps this machine's core locks: its own temporary folder, one per
    user. Never the reference runs' cache: a cluster's machines often share home folders
    over NFS, where a lock is seen by every machine, and they would all queue for the cores
    of one. A folder of that name that is not this user's own (another user made it, or a
    link) is not used: the locks then go into a private folder, shared with no one."""
    folder = Path(tempfile.gettempdir()) / f"cnncourse-cores-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            return folder
    except OSError:
        pass
    private = Path(tempfile.mkdtemp(prefix="cnncourse-cores-"))
    log.warning("%s is not a folder of this user's own: this process's core locks go to %s "
                "and are not shared with other grading processes on this machine", folder,
                private)
    return private


class HostCores:
    """This machine's cores as lock files in ``folder``, one per core, shared by every
    process that uses the same folder: a job holds ``n`` of them (``flock``) while it
    runs, so worker processes that each count all of the machine's cores never run more
    threads at once than it has. Takers queue at a turnstile lock: the first in line
    takes cores as they come free while the others wait behind it, so a training job
    that needs every core is not starved by a stream of small jobs. A process that dies
    drops its locks with it (the kernel releases them)."""

    POLL_S = 0.02

    def __init__(self, folder: str | os.PathLike, cores: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cores = max(1, cores if cores is not None else usable_cores())

    def _try(self, index: int) -> int | None:
        fd = os.open(self.folder / f"core-{index}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @contextlib.contextmanager
    def hold(self, n: int):
        n, held = min(max(1, n), self.cores), {}
        try:
            with open(self.folder / "turnstile.lock", "a") as gate:
                fcntl.flock(gate, fcntl.LOCK_EX)  # released when the file closes
                while len(held) < n:
                    for i in (i for i in range(self.cores) if i not in held):
                        fd = self._try(i)
                        if fd is not None:
                            held[i] = fd
                            if len(held) == n:
                                break
                    else:
                        time.sleep(self.POLL_S)
            yield sorted(held)
        finally:
            for fd in held.values():
                os.close(fd)


class Slots:
    """CPU cores (and the GPU) shared by the jobs that run at once.

    A job holds as many cores as its part has threads (and the GPU, if it trains on it)
    while it runs, so a training run is not squeezed by another. Waiters are served in
    arrival order, so a big job is not starved by a stream of small ones. ``host``: the
    machine's cores as shared with other grading processes on it (``HostCores``), taken
    after this process's own.
    """

    def __init__(self, cores: int | None = None, gpus: int = 1,
                 host: HostCores | None = None):
        self.cores = max(1, cores if cores is not None else usable_cores())
        self._free = {"cpu": self.cores, "gpu": gpus}
        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self.host = host

    @contextlib.contextmanager
    def hold(self, cores: int, gpu: bool = False):
        need = {"cpu": min(max(1, cores), self.cores), "gpu": int(bool(gpu))}
        ticket = object()
        with self._cv:
            self._queue.append(ticket)
            self._cv.wait_for(lambda: self._queue[0] is ticket and all(
                self._free[k] >= n for k, n in need.items()))
            self._queue.popleft()
            for k, n in need.items():
                self._free[k] -= n
            self._cv.notify_all()
        try:
            with self.host.hold(need["cpu"]) if self.host else contextlib.nullcontext():
                yield
        finally:
            with self._cv:
                for k, n in need.items():
                    self._free[k] += n
                self._cv.notify_all()


class Memo:
    """Results by key, computed once: the same answer code under the same seed trains the
    same way. A twin that arrives while the first is still running waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._done: dict[Hashable, object] = {}

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """(the result, whether it was already known)."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._done:
                log.info("reusing the result of an identical answer for %s", key[0]
                         if isinstance(key, tuple) else key)
                return self._done[key], True
            result = compute()
            self._done[key] = result
            return result, False
