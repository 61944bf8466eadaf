"""The grader's side of the workers: start them sandboxed, hand out jobs, recover from faults.

A ``Worker`` is one sandboxed fork server (``worker.py``); ``WorkerPool`` keeps ``size`` of
them, one job at a time each. The grader never trusts a worker's timing: every call has a
backstop deadline, and a worker that misses it, dies or breaks the protocol is killed with
its whole process group and replaced before the next job.
"""
from __future__ import annotations

import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import WorkerStartError
from ..gpus import GPUSlot
from ..jobs import Job
from . import launch as sandbox
from .inside import wire
from .launch import Isolation, Launch

__all__ = ["JobOutcome", "Worker", "WorkerPool", "WorkerStartError", "default_private_dirs"]

log = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 180.0  # importing torch on a busy 2-core machine can take 10 s or more
_BACKSTOP_S = 15.0          # grace beyond a job's own limit before the whole worker is killed


@dataclass(frozen=True)
class JobOutcome:
    """What came back from one job: the child's raw report plus how it ended."""

    frames: list = field(repr=False)
    protocol_error: str | None
    timed_out: bool
    exit_code: int | None
    seconds: float
    output: str
    output_bytes: int
    worker_failure: str | None = None   # the worker itself broke (not the submission's fault)


class _Reader:
    """Buffered frame reader over a pipe, with a deadline (``wire.parse_frame`` parses)."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, bytearray()

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError("the worker did not answer in time")
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("the worker closed its output")
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def frame(self, deadline: float, max_bytes: int) -> tuple[dict, list[bytes]]:
        return wire.parse_frame(lambda n: self._take(n, deadline), max_bytes)


class Worker:
    """One sandboxed fork server."""

    def __init__(self, slot: int, method: str, private: list, extra_files: tuple = (),
                 tmp_bytes: int = 64 << 20, gpu: bool | GPUSlot = False):
        self.slot, self.method, self.gpu = slot, method, gpu
        self.private, self.extra_files, self.tmp_bytes = private, extra_files, tmp_bytes
        self.proc: subprocess.Popen | None = None
        self.launch: Launch | None = None
        self.ready: dict = {}
        self._isolation: Isolation | None = None
        self._log = tempfile.TemporaryFile()

    def start(self) -> None:
        """Launch the sandbox and wait until torch is imported and the server is ready."""
        self.launch_process()
        self.wait_ready()

    def launch_process(self) -> None:
        self.launch = sandbox.plan_launch(self.method, self.slot, self.private,
                                          self.extra_files, self.tmp_bytes, self.gpu)
        self._log.seek(0)
        self._log.truncate()
        self._isolation = None
        log.info("starting worker %d (%s)", self.slot, self.method)
        try:
            self.proc = subprocess.Popen(self.launch.argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log,
                                         env=self.launch.env, start_new_session=True,
                                         close_fds=True, cwd="/")
        except OSError as exc:
            raise WorkerStartError(f"{self.method}: could not run {self.launch.argv[0]}: "
                                   f"{exc}") from None
        self._reader = _Reader(self.proc.stdout.fileno())

    def wait_ready(self) -> None:
        try:
            header, _ = self._reader.frame(time.monotonic() + _STARTUP_TIMEOUT_S, 1 << 20)
        except (TimeoutError, EOFError, wire.WireError) as exc:
            self.stop()
            raise WorkerStartError(f"{self.method}: the worker did not start ({exc}): "
                                   f"{self.log_tail()}") from None
        if header.get("op") != "ready":
            self.stop()
            raise WorkerStartError(f"{self.method}: unexpected first message {header!r}")
        self.ready = header

    def log_tail(self, limit: int = 1500) -> str:
        self._log.seek(0)
        data = self._log.read()
        return data[-limit:].decode("utf-8", "replace").strip() or "(no output)"

    def isolation(self) -> Isolation:
        """What is in force for this worker, from the launch plan and the worker's report
        (worked out once per start)."""
        if self._isolation is None:
            self._isolation = self._work_out_isolation()
        return self._isolation

    def _work_out_isolation(self) -> Isolation:
        launch, ready = self.launch, self.ready
        held = ready.get("confine") or {}
        notes = list(launch.notes) + list(held.get("problems", []))
        namespaces = set(held.get("namespaces", []))
        if launch.method == "bwrap":
            pid_ns, network, hidden, private_tmp = True, "none (network namespace)", \
                launch.hidden, True
        else:
            pid_ns = False
            network = ("none (network namespace)" if "net" in namespaces else
                       "blocked by seccomp (no sockets)" if ready.get("seccomp") else "open")
            hidden = tuple(held.get("hidden", ()))
            private_tmp = "mount" in namespaces or launch.private_tmp is not None
        uid = ready.get("uid")
        return Isolation(method=launch.method, uid=uid, unprivileged_uid=uid not in (None, 0)
                         and uid != os.getuid(), pid_namespace=pid_ns, network=network,
                         hidden_paths=tuple(hidden), private_tmp=private_tmp,
                         seccomp=bool(ready.get("seccomp")), notes=tuple(notes))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, job: Job) -> JobOutcome:
        """Send one job and wait for its ``done`` frame (the job's limit plus a backstop).
        The report may be as long as the job's ``result_bytes``, no more and no less."""
        if isinstance(self.gpu, GPUSlot) and job.uses_gpu:  # its share of its GPU only
            job = replace(job, env={**job.env, **self.gpu.env()})
        limits, iso = job.limits, self.isolation()
        deadline = time.monotonic() + limits.timeout_s + _BACKSTOP_S
        max_result = limits.result_bytes
        # The server reads only the limits; the job's child reads the job frame itself.
        run = {"op": "run", "timeout_s": limits.timeout_s,
               "limits": {"output_bytes": limits.output_bytes, "result_bytes": max_result}}
        frame = {"op": "job", "job": job.to_wire(iso.seccomp, iso.unprivileged_uid)}
        try:
            self.proc.stdin.write(wire.encode_frame(run) +
                                  wire.encode_frame(frame, list(job.blobs)))
            self.proc.stdin.flush()
            header, payload = self._reader.frame(deadline, max_result + (1 << 20))
            if header.get("op") != "done" or len(payload) != 2:
                raise wire.WireError(f"unexpected message {header.get('op')!r}")
        except (OSError, TimeoutError, EOFError, wire.WireError) as exc:
            tail = self.log_tail(400)
            self.stop()
            log.warning("worker %d failed on part %s: %s: %s (%s)", self.slot, job.part,
                        type(exc).__name__, exc, tail)
            return JobOutcome([], None, isinstance(exc, TimeoutError), None, 0.0, "", 0,
                              worker_failure=f"{type(exc).__name__}: {exc} ({tail})")
        frames, problem = wire.split_frames(payload[1])
        if header.get("result_overflow"):
            problem = f"the report exceeded {max_result} bytes and was cut off"
        exit_code = header.get("exit_code")
        return JobOutcome(frames, problem, header.get("timed_out") is True,
                          exit_code if type(exit_code) is int else None,
                          float(header.get("seconds", 0.0)),
                          payload[0].decode("utf-8", "replace"),
                          int(header.get("output_bytes", 0)))

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None
        if self.launch is not None:
            for folder in self.launch.cleanup:
                shutil.rmtree(folder, ignore_errors=True)


class WorkerPool:
    """``size`` workers started in parallel; ``run`` borrows one and replaces it if it broke."""

    def __init__(self, size: int, method: str, private: list, extra_files: tuple = (),
                 gpu: bool = False, gpu_slots: tuple[GPUSlot, ...] = ()):
        """``gpu_slots``: one per worker (``gpus.plan_gpu_slots``), each binding one GPU;
        without them ``gpu`` lets every worker see every GPU."""
        self.gpu_slots = tuple(gpu_slots)
        self.workers = [Worker(i, method, private, extra_files,
                               gpu=gpu_slots[i] if i < len(gpu_slots) else gpu)
                        for i in range(max(size, len(gpu_slots)))]
        self._free: queue.Queue[Worker] = queue.Queue()
        # Launch from this thread: bwrap's --die-with-parent follows the launching thread.
        try:
            for w in self.workers:
                w.launch_process()
            for w in self.workers:
                w.wait_ready()
                self._free.put(w)
        except WorkerStartError:
            self.close()
            raise

    def isolation(self) -> Isolation:
        return self.workers[0].isolation()

    def run(self, job: Job) -> JobOutcome:
        """Run ``job`` on the next free worker, starting a fresh one where it broke."""
        worker = self._free.get()
        try:
            if not worker.alive:
                worker.start()
            start = time.monotonic()
            outcome = worker.run(job)
            log.debug("part %s ran on worker %d in %.2f s", job.part, worker.slot,
                      time.monotonic() - start)
            return outcome
        finally:
            self._free.put(worker)

    def close(self) -> None:
        for w in self.workers:
            if w.alive:
                try:
                    w.proc.stdin.write(wire.encode_frame({"op": "exit"}))
                    w.proc.stdin.flush()
                except OSError:
                    pass
            w.stop()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_private_dirs(*paths: str | os.PathLike) -> list[str]:
    """Folders hidden from workers beyond the standard ones: the course and grader code."""
    course = Path(__file__).resolve().parents[2]  # the folder that holds autograder/
    return [str(course), *map(str, paths)]
