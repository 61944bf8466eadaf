"""The job's child, between fork and the first line of student code, and after it.

Forked by the server (``server.py``) for each job: it reads its own ``job`` frame, drops
into a new session, its limits and the seccomp filter, runs the answer cells and the
part's driver, and writes plain-data frames into the result file. Runs inside the sandbox.
"""
from __future__ import annotations

import builtins
import ctypes
import io
import os
import resource
import signal
import sys
import types

if __package__:
    from . import provenance, seccomp, wire
else:  # started by file path inside the sandbox, next to its sibling modules
    import provenance
    import seccomp
    import wire

__all__ = ["prctl", "read_job", "run_child", "PR_SET_PDEATHSIG", "PR_SET_DUMPABLE",
           "PR_SET_CHILD_SUBREAPER"]


PR_SET_PDEATHSIG, PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 4, 38
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)
_SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def prctl(option: int, value: int) -> None:
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
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
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
    prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if job.get("seccomp"):
        # Drivers that only call the student's function need neither new processes nor
        # memfds; a part that trains (plain_data, maybe on CUDA) keeps memfds.
        seccomp.install(os.getpid(), processes=bool(job["limits"].get("subprocesses")),
                        memfd=job.get("driver") == "plain_data")
    import torch

    torch.set_num_threads(int(job["limits"].get("threads", 1)))
    return res_fd


# This package's modules, removed from sys.modules before student code runs, so that an
# answer cannot look up the drivers or the checks by name and change them.
_OWN_MODULES = ("child", "drivers", "provenance", "wire", "server", "seccomp", "confine",
                "training")
_write, _encode = os.write, wire.encode_frame  # bound before any student code runs


def _hide_own_modules(namespace: dict) -> dict:
    """Drop this package's modules from sys.modules; the answer's namespace becomes the
    ``__main__`` module (the worker script was), which pickle and dataclasses look up."""
    for name in list(sys.modules):
        if name in _OWN_MODULES or name.startswith("autograder.sandbox.inside"):
            del sys.modules[name]
    main = types.ModuleType("__main__")
    main.__dict__.update(namespace)
    sys.modules["__main__"] = main
    return main.__dict__


def run_child(job: dict, blobs: list[bytes], out_w: int, res_w: int, job_dir: str) -> None:
    """Everything the child does; the drivers were imported by the server before the fork.
    What it calls after student code has run is bound to local names first."""
    if __package__:
        from . import drivers
    else:
        import drivers
    res_fd = _enter_child(job, out_w, res_w, job_dir)
    write, encode, code_tree = _write, _encode, provenance.code_tree
    driver, run_cell = drivers.DRIVERS[job["driver"]], drivers.run_cell

    def emit(header: dict, arrays: list[bytes] = ()) -> None:
        view = memoryview(encode(header, list(arrays)))
        while view:
            view = view[write(res_fd, view):]

    namespace = _hide_own_modules({"__name__": "__main__", "__builtins__": builtins})
    guard = job.get("guard") or {}
    first_answer = int(guard.get("answer_from", 0))
    codes = []  # the answer cells' compiled code: what the graded object must come from
    for n, cell in enumerate(job["cells"]):
        if n == first_answer and guard:
            provenance.install_import_guard(guard.get("refused", []), guard.get("paths", []),
                                            bool(guard.get("strict")), emit)
        report, code = run_cell(cell, namespace)
        if n >= first_answer and code is not None:
            codes.append(code)
        emit({"op": "cell", "label": cell["label"], **report})
    # What the code prints while it is probed is dropped: it could echo hidden inputs.
    sys.stdout.flush()
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    driver(namespace, job, blobs, emit, code_tree(codes))
    emit({"op": "end"})


def read_job(proto_in, ack_w: int) -> tuple[dict, list[bytes]]:
    """In the child: the ``job`` frame that follows ``run``; tells the server once it is in."""
    header, blobs = wire.read_frame(proto_in)
    os.write(ack_w, b"\x01")
    os.close(ack_w)
    if header.get("op") != "job":
        raise wire.WireError(f"expected a job frame, got {header.get('op')!r}")
    return header["job"], blobs
