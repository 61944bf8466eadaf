"""What jobs running at once share on one machine: its cores and GPU (``Slots``), and the
results of parts that are graded once per distinct answer (``Memo``). Each grading process
has its own; nothing here is a module global."""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from typing import Callable, Hashable, TypeVar

__all__ = ["Slots", "Memo"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Slots:
    """CPU cores (and the GPU) shared by the jobs that run at once.

    A job holds as many cores as its part has threads (and the GPU, if it trains on it)
    while it runs, so a training run is not squeezed by another. Waiters are served in
    arrival order, so a big job is not starved by a stream of small ones.
    """

    def __init__(self, cores: int | None = None, gpus: int = 1):
        self.cores = max(1, cores if cores is not None else usable_cores())
        self._free = {"cpu": self.cores, "gpu": gpus}
        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()

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
