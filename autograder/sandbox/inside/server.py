"""The worker's fork server: one job at a time, each in a fresh child (``child.py``).

No student code ever runs in the server, and no submission's bytes stay in its memory, so
a child (forked from it) cannot find another student's code or results in memory it
inherited. The server is non-dumpable, so a child cannot read its memory through /proc.
It enforces each job's wall-clock limit, kills every leftover process, passes the child's
report on unparsed, wipes the temporary folder and checks that no job changed its limits.
"""
from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import stat
import sys
import time
import traceback

if __package__:
    from . import child, wire
else:  # started by file path inside the sandbox, next to its sibling modules
    import child
    import wire

__all__ = ["Server"]


class Server:
    """Serves jobs one at a time; ``kill_all`` is true when every process of this uid is ours.

    The server never keeps a byte of a submission: the grader sends a small ``run`` frame
    (limits only), the server forks the job's child, and the child itself reads the ``job``
    frame (code and inputs) that follows. The child's result frames go into a nameless
    file (memfd) that the server passes on with ``sendfile`` (a copy made by the kernel);
    what it prints is read into one preallocated buffer, written out with ``os.write`` and
    zeroed. Nothing of one job is left in memory that a later child inherits.
    """

    def __init__(self, tmp: str, kill_all: bool, proto_in, proto_out):
        self.tmp, self.kill_all = tmp, kill_all
        self.proto_in, self.proto_out = proto_in, proto_out
        self.count = 0
        self.health = _health()
        # What /tmp held before any job: the mount points of folders the sandbox binds
        # read-only (a checkout or data root under /tmp). They are not the jobs' to clean;
        # walking them would cost a failed unlink per file after every job.
        self.preexisting = frozenset(os.listdir(tmp))
        self._spill = bytearray(1 << 16)  # printed bytes past the cap are read into this

    def send(self, header: dict, blobs: list[bytes] = ()) -> None:
        self.proto_out.write(wire.encode_frame(header, list(blobs)))
        self.proto_out.flush()

    def serve(self) -> int:
        """Run jobs until an ``exit`` frame or the end of input; non-zero when unhealthy."""
        while True:
            try:
                header, _ = wire.read_frame(self.proto_in, max_bytes=0)
            except EOFError:
                return 0
            if header.get("op") == "exit":
                return 0
            if header.get("op") != "run":
                raise wire.WireError(f"unexpected frame {header.get('op')!r}")
            if not self.run(header):
                return 1
            if _health() != self.health:  # a job changed our limits, CPUs or priority
                print("worker: a job changed the server's own limits; stopping",
                      file=sys.stderr)
                return 1

    def _kill_leftovers(self, pid: int) -> None:
        if self.kill_all:  # every other process of this uid (or PID namespace)
            targets = [-1]
        else:  # the job's group, and whatever was re-parented to us (we are the subreaper)
            targets = [-pid, *_children_of(os.getpid())]
        for target in targets:
            _kill(target)

    def _reap(self, pid: int, status: int | None, wait_s: float = 2.0) -> int | None:
        """Collect every child; as subreaper, every leftover descendant ends up ours, so
        "no children left" means the job's processes are all gone."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                done, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status
            if done == pid:
                status = st
            elif done == 0:
                if time.monotonic() > deadline:
                    return status
                self._kill_leftovers(pid)  # one may have been mid-fork when we killed
                time.sleep(0.001)

    def _scratch_file(self, name: str) -> int:
        """A file with no name, outside the job's /tmp (a full /tmp cannot cost a report):
        a memfd, or where that is missing an unlinked file in /tmp."""
        try:
            return os.memfd_create(f"{name}-{self.count}", 0)
        except (AttributeError, OSError):
            path = os.path.join(self.tmp, f".{name}-{os.getpid()}-{self.count}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.unlink(path)
            return fd

    def run(self, run: dict) -> bool:
        """One job; False when the child did not take its job frame (the stream is lost)."""
        self.count += 1
        job_dir = os.path.join(self.tmp, f"job{self.count}")
        os.mkdir(job_dir, 0o700)
        res_fd = self._scratch_file("result")
        out_r, out_fd = os.pipe()
        ack_r, ack_w = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(ack_r)
                os.close(out_r)
                job, blobs = child.read_job(self.proto_in, ack_w)
                self.proto_in.close()
                self.proto_out.close()
                child.run_child(job, blobs, out_fd, res_fd, job_dir)
                code = 0
            except BaseException:  # noqa: BLE001 - report anything, then leave at once
                try:
                    os.write(2, traceback.format_exc(limit=-3).encode()[-2000:])
                except OSError:
                    pass
            os._exit(code)
        os.close(ack_w)
        os.close(out_fd)
        printed = _Printed(out_r, bytearray(int(run["limits"]["output_bytes"])), self._spill)
        status, timed_out = self._wait(pid, start + float(run["timeout_s"]), printed)
        status = self._reap(pid, status)
        printed.drain(time.monotonic() + 1.0)  # every writer is dead: the pipe ends at once
        os.close(out_r)
        took_job = os.read(ack_r, 1) == b"\x01"
        os.close(ack_r)
        self._answer(run["limits"], printed, res_fd, status, timed_out, start)
        self._clean_up()
        return took_job

    def _wait(self, pid: int, deadline: float, printed: "_Printed") -> tuple[int | None, bool]:
        """Wait for the child until ``deadline``, reading what it prints; kill it (and all
        it started) at the deadline."""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self._kill_leftovers(pid)  # daemons die with the child
                return status, False
            now = time.monotonic()
            if now >= deadline:
                self._kill_leftovers(pid)
                _kill(pid)
                return os.waitpid(pid, 0)[1], True
            printed.read_for(min(0.01, deadline - now))

    def _answer(self, limits: dict, printed: "_Printed", res_fd: int, status: int | None,
                timed_out: bool, start: float) -> None:
        """The ``done`` frame: the header, the printed bytes kept, then the result file's
        bytes (copied by the kernel). What was reported before a time limit is kept."""
        res_total = os.fstat(res_fd).st_size
        res_n = min(res_total, int(limits["result_bytes"]))
        exit_code = os.waitstatus_to_exitcode(status) if status is not None else None
        header = {"op": "done", "timed_out": timed_out, "exit_code": exit_code,
                  "seconds": round(time.monotonic() - start, 4), "output_bytes": printed.total,
                  "result_overflow": res_total > res_n, "blobs": [printed.kept, res_n]}
        head = json.dumps(header, separators=(",", ":")).encode()
        self.proto_out.write(len(head).to_bytes(4, "big") + head)
        self.proto_out.flush()
        dest = self.proto_out.fileno()
        view = memoryview(printed.buffer)[:printed.kept]
        while view:  # straight from the buffer: no copy of it is made in this process
            view = view[os.write(dest, view):]
        printed.wipe()
        offset = 0
        while offset < res_n:
            sent = os.sendfile(dest, res_fd, offset, res_n - offset)
            if sent == 0:  # the file shrank under us: pad so the frame stays whole
                os.write(dest, bytes(res_n - offset))
                break
            offset += sent
        os.close(res_fd)

    def _clean_up(self) -> None:
        """No process and no file of the job is left when the next one starts."""
        for name in os.listdir(self.tmp):  # the job's folder and anything else left in /tmp
            if name in self.preexisting:
                continue
            path = os.path.join(self.tmp, name)
            if os.path.isdir(path) and not os.path.islink(path):
                _wipe(path)
            else:
                _unlink(path)


class _Printed:
    """What a child prints: the first bytes kept in ``buffer``, the rest read and dropped."""

    def __init__(self, fd: int, buffer: bytearray, spill: bytearray):
        self.fd, self.buffer, self.spill = fd, buffer, spill
        self.kept = self.total = 0
        self.open = True

    def read_for(self, seconds: float) -> None:
        if not self.open:
            time.sleep(max(seconds, 0.0))
            return
        if not select.select([self.fd], [], [], max(seconds, 0.0))[0]:
            return
        room = len(self.buffer) - self.kept
        target = memoryview(self.buffer)[self.kept:] if room else memoryview(self.spill)
        n = os.readv(self.fd, [target])
        if n == 0:
            self.open = False
        self.total += n
        if room:
            self.kept += n

    def drain(self, until: float) -> None:
        while self.open and time.monotonic() < until:
            self.read_for(0.05)

    def wipe(self) -> None:
        self.buffer[:] = bytes(len(self.buffer))
        self.spill[:] = bytes(len(self.spill))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wipe(path: str) -> None:
    def unlock(func, p, _exc):  # a submission may chmod 000 its own folders
        try:
            for q in (os.path.dirname(p), p):
                if not os.path.islink(q):  # chmod follows links: never touch a planted one
                    os.chmod(q, stat.S_IRWXU)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=unlock)
    if os.path.lexists(path):  # opened up only on the first pass
        shutil.rmtree(path, ignore_errors=True)


def _health() -> tuple:
    """What no job may change in the server: its rlimits, its CPUs and its priority."""
    limits = tuple(resource.getrlimit(getattr(resource, name)) for name in sorted(dir(resource))
                   if name.startswith("RLIMIT_"))
    return limits, tuple(sorted(os.sched_getaffinity(0))), os.getpriority(os.PRIO_PROCESS, 0)


def _children_of(parent: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:  # field 4 of stat: the parent's pid
                found.append(int(name))
    return found


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
