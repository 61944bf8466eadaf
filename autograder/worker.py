"""The sandboxed worker: a fork server that runs one part of one submission per child.

The grader starts this file inside the sandbox (``python worker.py --tmp DIR``). It imports
torch once, then reads jobs as frames on stdin. For each job it forks a fresh child that
drops into its own session, limits and seccomp filter, runs the submission's answer cells
and the part's driver, and streams plain-data result frames into a pipe. The server
enforces the wall-clock limit, kills every leftover process, wipes the temporary folder,
and answers with one ``done`` frame that carries the child's bytes unparsed.

No student code ever runs in the server itself; it is made non-dumpable so a child cannot
read its memory, and it handles one job at a time.
"""
from __future__ import annotations

import argparse
import builtins
import ctypes
import io
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
    from . import confine, seccomp, wire
else:  # started by file path inside the sandbox, next to its sibling modules
    import confine
    import seccomp
    import wire

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 4, 38
_PR_SET_CHILD_SUBREAPER = 36
drivers = None  # imported in main(), after confinement and once torch is loaded
_libc = ctypes.CDLL(None, use_errno=True)
_SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _set_limits(limits: dict) -> None:
    """rlimits for the child: address space on top of what torch already maps, CPU, files."""
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    settings = {
        resource.RLIMIT_CPU: (limits["cpu_s"], limits["cpu_s"] + 1),
        resource.RLIMIT_FSIZE: (limits["file_bytes"],) * 2,
        resource.RLIMIT_NOFILE: (limits["open_files"],) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    if limits.get("memory_bytes"):
        settings[resource.RLIMIT_AS] = (mapped + limits["memory_bytes"],) * 2
    if limits.get("processes"):
        settings[resource.RLIMIT_NPROC] = (limits["processes"],) * 2
    for which, (soft, hard) in settings.items():
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(which, (soft, hard))


def _enter_child(job: dict, out_w: int, res_w: int, job_dir: str) -> int:
    """Everything between fork and the first line of student code; returns the result fd."""
    os.setsid()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    res_fd = os.dup2(res_w, 3)
    os.closerange(4, 1 << 16)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = io.TextIOWrapper(open(1, "wb", buffering=0, closefd=False), write_through=True,
                                  errors="backslashreplace")
    sys.stderr = sys.stdout
    os.chdir(job_dir)
    os.environ.clear()
    os.environ.update(_SAFE_ENV, HOME=job_dir, TMPDIR=job_dir, MPLCONFIGDIR=job_dir)
    os.environ.update({str(k): str(v) for k, v in job.get("env", {}).items()})
    os.umask(0o077)
    _set_limits(job["limits"])
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if job.get("seccomp"):
        seccomp.install(os.getpid())
    import torch

    torch.set_num_threads(int(job["limits"].get("threads", 1)))
    return res_fd


def _child(job: dict, blobs: list[bytes], out_w: int, res_w: int, job_dir: str) -> None:
    res_fd = _enter_child(job, out_w, res_w, job_dir)

    def emit(header: dict, arrays: list[bytes] = ()) -> None:
        data = wire.encode_frame(header, list(arrays))
        view = memoryview(data)
        while view:
            view = view[os.write(res_fd, view):]

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    for cell in job["cells"]:
        emit({"op": "cell", "label": cell["label"], **drivers.run_cell(cell, namespace)})
    # What the code prints while it is probed is dropped: it could echo hidden inputs.
    sys.stdout.flush()
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    drivers.DRIVERS[job["driver"]](namespace, job, blobs, emit)
    emit({"op": "end"})


class Server:
    """Serves jobs one at a time; ``kill_all`` is true when every process of this uid is ours."""

    def __init__(self, tmp: str, kill_all: bool, proto_in, proto_out):
        self.tmp, self.kill_all = tmp, kill_all
        self.proto_in, self.proto_out = proto_in, proto_out
        self.count = 0

    def send(self, header: dict, blobs: list[bytes] = ()) -> None:
        self.proto_out.write(wire.encode_frame(header, list(blobs)))
        self.proto_out.flush()

    def _kill_leftovers(self, pid: int) -> None:
        if self.kill_all:  # every other process of this uid (or PID namespace)
            targets = [-1]
        else:  # the job's group, and whatever was re-parented to us (we are the subreaper)
            targets = [-pid, *_children_of(os.getpid())]
        for target in targets:
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

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

    def _wipe(self, path: str) -> None:
        def unlock(func, p, _exc):  # a submission may chmod 000 its own folders
            try:
                os.chmod(os.path.dirname(p), stat.S_IRWXU)
                os.chmod(p, stat.S_IRWXU)
                func(p)
            except OSError:
                pass
        shutil.rmtree(path, onerror=unlock)

    def run(self, job: dict, blobs: list[bytes]) -> None:
        self.count += 1
        job_dir = os.path.join(self.tmp, f"job{self.count}")
        os.mkdir(job_dir, 0o700)
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(out_r)
                os.close(res_r)
                self.proto_in.close()
                self.proto_out.close()
                _child(job, blobs, out_w, res_w, job_dir)
                code = 0
            except BaseException:  # noqa: BLE001 - report anything, then leave at once
                try:
                    os.write(2, traceback.format_exc(limit=-3).encode()[-2000:])
                except OSError:
                    pass
            os._exit(code)
        os.close(out_w)
        os.close(res_w)
        self._collect(job, pid, start, out_r, res_r, job_dir)

    def _collect(self, job: dict, pid: int, start: float, out_r: int, res_r: int,
                 job_dir: str) -> None:
        limits = job["limits"]
        deadline = start + job["timeout_s"]
        output, out_total = bytearray(), 0
        result, result_overflow = bytearray(), False
        status, timed_out = None, False
        fds = {out_r, res_r}

        def take(fd: int) -> None:
            nonlocal out_total, result_overflow
            data = os.read(fd, 1 << 16)
            if not data:
                fds.discard(fd)
            elif fd == out_r:
                out_total += len(data)
                output.extend(data[:max(limits["output_bytes"] - len(output), 0)])
            elif len(result) + len(data) > limits["result_bytes"]:
                result_overflow = True
                self._kill_leftovers(pid)
                _kill(pid)
            else:
                result.extend(data)

        while fds or status is None:
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                    self._kill_leftovers(pid)  # daemons die with the child; pipes then close
            now = time.monotonic()
            if now >= deadline:
                timed_out = status is None
                self._kill_leftovers(pid)
                if status is None:
                    _kill(pid)
                    status = os.waitpid(pid, 0)[1]
                # Keep what was reported before the limit: every writer is dead, so the
                # pipes reach their end at once.
                drain_until = time.monotonic() + 1.0
                while fds and time.monotonic() < drain_until:
                    for fd in select.select(list(fds), [], [], 0.05)[0]:
                        take(fd)
                break
            if not fds:
                time.sleep(0.002)
                continue
            for fd in select.select(list(fds), [], [], min(0.02, deadline - now))[0]:
                take(fd)
        for fd in (out_r, res_r):
            os.close(fd)
        status = self._reap(pid, status)
        for name in os.listdir(self.tmp):  # the job's folder and anything else left in /tmp
            path = os.path.join(self.tmp, name)
            if os.path.isdir(path) and not os.path.islink(path):
                self._wipe(path)
            else:
                _unlink(path)
        exit_code = os.waitstatus_to_exitcode(status) if status is not None else None
        self.send({"op": "done", "timed_out": timed_out, "exit_code": exit_code,
                   "seconds": round(time.monotonic() - start, 4),
                   "output": output.decode("utf-8", "replace"), "output_bytes": out_total,
                   "result_overflow": result_overflow}, [bytes(result)])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tmp", required=True, help="private temporary folder for the jobs")
    parser.add_argument("--kill-all", action="store_true",
                        help="after each job, kill every process this uid can signal")
    parser.add_argument("--confine", help="JSON plan for confine.py (no bubblewrap)")
    parser.add_argument("--sys-path", action="append", default=[],
                        help="a folder to append to sys.path (e.g. a checkout's cnncourse)")
    parser.add_argument("--preload", default="torch,torch.nn,torch.nn.functional,numpy",
                        help="modules imported once, before any job")
    args = parser.parse_args(argv)
    # The protocol gets private copies of fds 0/1; stray prints from imports go to stderr.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    held = confine.confine(json.loads(args.confine)) if args.confine else None
    sys.path.extend(args.sys_path)
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    import importlib

    global drivers
    for name in filter(None, args.preload.split(",")):
        importlib.import_module(name)
    drivers = importlib.import_module(f"{__package__}.drivers" if __package__ else "drivers")
    drivers.warm_up()
    import torch

    server = Server(args.tmp, args.kill_all, proto_in, proto_out)
    server.send({"op": "ready", "pid": os.getpid(), "uid": os.getuid(),
                 "torch": torch.__version__, "seccomp": seccomp.available(), "confine": held})
    while True:
        try:
            header, blobs = wire.read_frame(proto_in)
        except EOFError:
            return 0
        if header.get("op") == "run":
            server.run(header["job"], blobs)
        elif header.get("op") == "exit":
            return 0


if __name__ == "__main__":
    sys.exit(main())
