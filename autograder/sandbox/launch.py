"""How a worker is confined: pick the strongest method this machine offers, build its command.

Methods, strongest first:

- ``bwrap``: Debian's bubblewrap. New PID, network, IPC and UTS namespaces; a filesystem
  that holds only the system folders (/usr, /etc, /sys), the interpreter, the venv and the
  packages the worker imports, all read-only, plus a private ``/tmp``; no environment; a
  new session. As root, ``setpriv`` then drops to a dedicated uid.
- ``namespaces``: root without bwrap. The worker unshares mount, network, IPC and UTS
  namespaces itself (``confine.py``), hides the same folders and drops to a dedicated uid.
- ``rlimits``: neither. A new session, a scrubbed environment, a private temporary folder,
  rlimits and seccomp only; as root it still drops to a dedicated uid, otherwise the
  grader's own user runs the code.

In every method each job runs in a fresh forked child with rlimits and a seccomp filter.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from ..gpus import GPUSlot, device_nodes

__all__ = ["METHODS", "Isolation", "Launch", "plan_launch", "available_methods",
           "choose_method", "inside_files", "INSIDE"]

log = logging.getLogger(__name__)
METHODS = ("bwrap", "namespaces", "rlimits")
INSIDE = Path(__file__).resolve().parent / "inside"  # every module there runs in the sandbox
_SANDBOX_GRADER_DIR = "/run/grader"  # where the worker's own files appear inside bwrap
# Folders that hold people's data on a typical machine, covered by the namespaces method
# (bwrap shows an allow-list instead, so it needs no such list).
_PRIVATE_DIRS = ("/root", "/home", "/run", "/srv", "/mnt", "/media", "/var/tmp", "/var/lib",
                 "/var/log", "/var/mail", "/var/spool")
_BASE_UID = 0x4000_0000  # dedicated uids live far above any real account


@dataclass(frozen=True)
class Isolation:
    """What confined the worker, as recorded in results.json."""

    method: str
    uid: int | None
    unprivileged_uid: bool
    pid_namespace: bool
    network: str
    hidden_paths: tuple[str, ...]
    private_tmp: bool
    seccomp: bool
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Launch:
    """A worker's command line and what it will be confined by."""

    argv: list[str]
    env: dict[str, str]
    method: str
    uid: int | None
    hidden: tuple[str, ...]
    cleanup: tuple[str, ...] = ()  # host folders to delete when the worker stops
    notes: tuple[str, ...] = field(default_factory=tuple)
    private_tmp: str | None = None  # the worker's temporary folder (rlimits method)


@lru_cache(maxsize=None)
def _bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    args = [exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc",
            "--dev", "/dev"]
    if os.geteuid() != 0:
        args.insert(1, "--unshare-user")
    try:
        return subprocess.run([*args, "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def available_methods() -> list[str]:
    """The methods that can run here, strongest first."""
    methods = ["bwrap"] if _bwrap_works() else []
    if os.geteuid() == 0:
        methods.append("namespaces")
    return [*methods, "rlimits"]


def choose_method(requested: str) -> str:
    """The isolation method to use: the strongest available (``auto``), or the one asked
    for; a ValueError names what is available instead."""
    available = available_methods()
    if requested == "auto":
        log.info("isolation: %s (available here: %s)", available[0], ", ".join(available))
        return available[0]
    if requested not in available:
        raise ValueError(f"isolation {requested!r} is not available here (available: "
                         f"{', '.join(available)}); install bubblewrap or run as root")
    return requested


def inside_files() -> list[Path]:
    """The files bound into the sandbox: every module of ``inside/`` (not its package
    file: inside, they are loaded by path as top-level modules)."""
    return sorted(p for p in INSIDE.glob("*.py") if p.name != "__init__.py")


def _keep_paths() -> list[str]:
    """What the worker must read: the interpreter, the venv, and packages it imports."""
    keep = {sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent.parent)}
    import importlib.util

    for name in ("cnncourse", "d2l", "torch"):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            keep.add(str(Path(spec.origin).resolve().parent))
    keep.update(_data_paths())
    return sorted(keep)


def _data_paths() -> set[str]:
    """The data root and the real folders its raw files link to, for parts that train.

    ``cnncourse.data`` links the read-only shared copy into the data root, so binding the
    root alone would leave the worker with dangling links (and a download attempt)."""
    from cnncourse import config

    root = config.data_root()
    paths: set[str] = set()
    if not root.is_dir():
        return paths
    paths.add(str(root.resolve()))
    for sub in root.glob("*/raw"):
        for f in sub.iterdir():
            if f.is_symlink() and f.exists():
                paths.add(str(f.resolve().parent))
    return paths


def _import_roots() -> list[str]:
    """Folders to add to the worker's sys.path so that packages not installed in the venv
    (``cnncourse`` run from a checkout) import there too."""
    import importlib.util

    roots = []
    spec = importlib.util.find_spec("cnncourse")
    if spec and spec.origin:
        root = str(Path(spec.origin).resolve().parent.parent)
        if not any(root == str(Path(p).resolve()) for p in sys.path if "site-packages" in p):
            roots.append(root)
    return roots


def _outermost(paths: list[str]) -> list[str]:
    """Existing folders with none inside another, parents first."""
    real = sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})
    out: list[str] = []
    for p in real:
        if p != "/" and not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def _dirs_between(top: str, path: str) -> list[str]:
    rel = Path(path).relative_to(top).parts
    return [str(Path(top, *rel[:i])) for i in range(1, len(rel))]


_SYSTEM_DIRS = ("/usr", "/etc", "/sys")
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _bwrap_system(argv: list[str]) -> set[str]:
    """System folders read-only, and the links between them as links; returns what is shown."""
    present = set()
    for d in _SYSTEM_DIRS:
        if os.path.isdir(d):
            argv += ["--ro-bind", d, d]
            present.add(d)
    for link in _SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
            present.add(link)
    return present


def _bwrap_keep(argv: list[str], keep: list[str], present: set[str]) -> None:
    """The interpreter, the venv and the packages, read-only, each at its own path."""
    made: set[str] = set()
    for k in keep:
        if any(k == p or k.startswith(p + "/") for p in present):
            continue  # already visible under /usr or another kept folder
        for d in _dirs_between("/", k):
            if d not in made:
                argv += ["--perms", "0755", "--dir", d]
                made.add(d)
        argv += ["--ro-bind", k, k]
        present.add(k)


def _bwrap_argv(keep: list[str], files: list[Path], tmp_bytes: int, uid: int | None,
                python: str, gpu_devices: tuple[str, ...] = ()) -> list[str]:
    """An allow-list view: system folders, the interpreter and packages, all read-only."""
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if os.geteuid() != 0:
        argv.insert(1, "--unshare-user")
    present = _bwrap_system(argv)
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    for node in gpu_devices:  # CUDA needs the NVIDIA device nodes; nothing else of /dev
        argv += ["--dev-bind", node, node]
    _bwrap_keep(argv, keep, present)
    argv += ["--perms", "0755", "--dir", _SANDBOX_GRADER_DIR]
    for f in files:
        argv += ["--ro-bind", str(f), f"{_SANDBOX_GRADER_DIR}/{f.name}"]
    argv += ["--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "OMP_NUM_THREADS", "1",
             "--chdir", "/tmp"]
    if uid is not None:
        argv += ["--cap-add", "CAP_SETUID,CAP_SETGID", "--",
                 "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    else:
        argv.append("--")
    return argv + [python, "-E", "-s", "-B", f"{_SANDBOX_GRADER_DIR}/worker.py",
                   "--tmp", "/tmp", "--kill-all", *_path_args()]


def gpu_device_nodes(gpu: bool | GPUSlot) -> tuple[str, ...]:
    """The NVIDIA device nodes a worker binds: its own GPU's and the control nodes when it
    was given a slot, all of them when it was only told to use the GPU."""
    if not gpu:
        return ()
    return device_nodes(gpu if isinstance(gpu, GPUSlot) else None,
                        glob.glob("/dev/nvidia*"))


def _path_args() -> list[str]:
    return [arg for root in _import_roots() for arg in ("--sys-path", root)]


def plan_launch(method: str, slot: int, private: list[str | os.PathLike],
                extra_files: tuple[Path, ...] = (), tmp_bytes: int = 64 << 20,
                gpu: bool | GPUSlot = False) -> Launch:
    """The command that starts worker number ``slot`` under ``method``.

    ``private`` lists folders the worker must not see (course, output, submissions);
    ``extra_files`` are modules beyond ``inside/`` to bind beside it (a test's stand-in).
    """
    if method not in METHODS:
        raise ValueError(f"unknown isolation method {method!r}; choose one of {METHODS}")
    python = sys.executable
    files = inside_files() + [Path(f).resolve() for f in extra_files]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    root = os.geteuid() == 0
    # A uid of our own per run and slot: its processes are all ours to kill, and
    # RLIMIT_NPROC counts only them.
    uid = _BASE_UID + (os.getpid() % 0x10000) * 64 + slot if root else None
    keep = _keep_paths()
    if method == "bwrap":
        argv = _bwrap_argv(keep, files, tmp_bytes, uid, python, gpu_device_nodes(gpu))
        visible = tuple(k for k in (*_SYSTEM_DIRS, *keep) if os.path.exists(k))
        return Launch(argv, env, method, uid, ("everything except " + ", ".join(visible),))
    # Without bwrap the worker runs from a world-readable copy of its files, so that a
    # dedicated uid can read them and the package they come from can stay hidden.
    staging = Path(tempfile.mkdtemp(prefix=f"autograder-worker-files-{os.getpid()}-"))
    staging.chmod(0o755)
    for f in files:
        shutil.copy(f, staging / f.name)
        (staging / f.name).chmod(0o644)
    worker = [python, "-E", "-s", "-B", str(staging / "worker.py")]
    if method == "namespaces":
        if not root:
            raise PermissionError("the 'namespaces' method needs root; use 'rlimits'")
        hidden = _outermost([*_PRIVATE_DIRS, *map(str, private), os.getcwd(),
                             os.path.expanduser("~"), "/dev/shm"])
        plan = {"hide": hidden, "keep": [*keep, str(staging)], "tmp": "/tmp",
                "tmp_bytes": tmp_bytes, "uid": uid}
        argv = [*worker, "--tmp", "/tmp", "--kill-all", "--confine", json.dumps(plan),
                *_path_args()]
        return Launch(argv, env, method, uid, tuple(hidden), cleanup=(str(staging),))
    # rlimits: no namespaces. As root the worker still drops to its own uid, which needs
    # an interpreter that other users can read (true for /opt or /usr, not for /root).
    tmp = tempfile.mkdtemp(prefix=f"autograder-worker-{os.getpid()}-")
    argv = [*worker, "--tmp", tmp, *_path_args()]
    if root:
        os.chown(tmp, uid, uid)
        plan = {"unshare": False, "hide": [], "keep": [], "uid": uid}
        argv += ["--kill-all", "--confine", json.dumps(plan)]
        notes = ("no namespaces: the worker runs as an unprivileged uid and sees every file "
                 "that other users may read; install bubblewrap for full isolation",)
    else:
        notes = ("no namespaces and no uid change: the worker runs as the grader's own user "
                 "and can read what that user can read; install bubblewrap for full isolation",)
    return Launch(argv, env, method, uid, (), cleanup=(str(staging), tmp), notes=notes,
                  private_tmp=tmp)
