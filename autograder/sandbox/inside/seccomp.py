"""A small seccomp filter for the worker's child, through libseccomp and ctypes.

It stops a submission from reaching other processes (signals, ptrace, reading or writing
another process's memory, changing another process's limits, CPUs or priority), from
opening sockets, from making new namespaces or mounts, from keeping memory alive after it
exits (System V shared memory, message queues and semaphores), and, unless a job allows it,
from starting processes at all (threads are still allowed). Everything else is allowed, so
torch keeps working. Standard library only: the
sandboxed worker loads this file by path.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno

__all__ = ["available", "install"]

_ALLOW = 0x7FFF0000


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


# scmp_compare values from seccomp.h
_CMP_NE, _CMP_MASKED_EQ = 1, 7


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


# Syscalls a graded function never needs and that reach outside the child's own process.
_DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
           "pidfd_send_signal", "kcmp", "socket", "mount", "umount2", "pivot_root", "chroot",
           "unshare", "setns", "open_tree", "move_mount", "fsopen", "fsmount", "keyctl",
           "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
           "io_uring_setup", "init_module", "finit_module", "kexec_load", "reboot",
           "acct", "swapon", "swapoff", "quotactl", "syslog", "ioperm", "iopl",
           # System V IPC and POSIX queues outlive the process: memory beyond RLIMIT_AS, and
           # a channel from one job to the next
           "shmget", "msgget", "semget", "mq_open")
# Syscalls whose first argument names the process they act on; 0 means the caller, and
# anything else (the server, a sibling) is refused.
_SELF_ONLY = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam",
              "sched_setattr", "migrate_pages", "move_pages")
_CLONE_THREAD = 0x00010000
# Namespace flags in clone(2)'s first argument: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
# NEWUSER, NEWPID, NEWNET.
_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                    0x40000000)


def _library():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def available() -> bool:
    """True when libseccomp can be loaded here."""
    return _library() is not None


def _add_rules(rule, own_pid: int, processes: bool, memfd: bool) -> None:
    """The filter's rules, each through ``rule(name, action, *comparisons)``."""
    eperm = _errno_action(errno.EPERM)
    for name in _DENIED:
        rule(name, eperm)
    # Signals only to its own pid (its threads included): not to the parent, siblings,
    # process groups (negative pids) or everyone (-1).
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        rule(name, eperm, (0, _CMP_NE, own_pid, 0))
    rule("tkill", eperm)
    # clone3 hides its flags behind a pointer: ENOSYS makes glibc fall back to clone.
    rule("clone3", _errno_action(errno.ENOSYS))
    for flag in _NAMESPACE_FLAGS:  # one rule per flag: any of them is refused
        rule("clone", eperm, (0, _CMP_MASKED_EQ, flag, flag))
    for name in _SELF_ONLY:
        rule(name, eperm, (0, _CMP_NE, 0, 0))
    # setpriority(which, who, prio) and ioprio_set(which, who, prio): only "this process"
    rule("setpriority", eperm, (0, _CMP_NE, 0, 0))     # which != PRIO_PROCESS
    rule("setpriority", eperm, (1, _CMP_NE, 0, 0))     # who != the caller
    rule("ioprio_set", eperm, (0, _CMP_NE, 1, 0))      # which != IOPRIO_WHO_PROCESS
    rule("ioprio_set", eperm, (1, _CMP_NE, 0, 0))
    if not memfd:
        rule("memfd_create", eperm)
    if not processes:
        rule("fork", eperm)
        rule("vfork", eperm)
        rule("clone", eperm, (0, _CMP_MASKED_EQ, _CLONE_THREAD, 0))


def install(own_pid: int, processes: bool = True, memfd: bool = True) -> list[str]:
    """Load the filter into this process (inherited by its children); returns rules skipped.

    ``processes=False`` also refuses every new process (fork, vfork, clone without
    CLONE_THREAD): a graded function needs none, and without them a fork bomb, a daemon
    or memory spread over many processes (each with its own RLIMIT_AS) cannot happen.
    ``memfd=False`` refuses memfd_create: nameless in-memory files are memory outside
    RLIMIT_AS (up to the open-file limit times the file-size limit).
    """
    lib = _library()
    if lib is None:
        raise OSError("libseccomp is not installed")
    ctx = lib.seccomp_init(_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    skipped: list[str] = []

    def rule(name: str, action: int, *cmps: tuple[int, int, int, int]) -> None:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not on this architecture (e.g. ioperm on arm64)
            skipped.append(name)
            return
        array = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
        if lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array) < 0:
            skipped.append(name)

    try:
        _add_rules(rule, own_pid, processes, memfd)
        if lib.seccomp_load(ctx) < 0:
            raise OSError("seccomp_load failed (is no_new_privs set?)")
    finally:
        lib.seccomp_release(ctx)
    return skipped
