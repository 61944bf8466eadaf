"""Confinement without bubblewrap: what the worker does to itself before importing torch.

Used when the grader runs as root but ``bwrap`` is missing (a GPU box, say). Through
ctypes it unshares the mount, network, IPC and UTS namespaces, covers private folders with
empty tmpfs mounts, binds back read-only what the worker needs, gives it a private /tmp,
then drops to an unprivileged uid. Each step is reported so the grader can record what was
in force. Standard library only: the worker loads this file by path.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["confine"]

_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC, _CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, \
    0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = \
    1, 2, 4, 32, 4096, 16384, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def enc(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           f"mount {target}")


def _bind_readonly(path: str) -> None:
    _mount(path, path, None, _MS_BIND | _MS_REC)
    _mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def confine(plan: dict) -> dict:
    """Apply ``plan`` (unshare, hide, keep, tmp, tmp_bytes, uid); returns what held."""
    held = {"namespaces": [], "hidden": [], "uid": os.getuid(), "problems": []}
    flags = {"mount": _CLONE_NEWNS, "net": _CLONE_NEWNET, "ipc": _CLONE_NEWIPC,
             "uts": _CLONE_NEWUTS}
    for name, flag in flags.items() if plan.get("unshare", True) else ():
        if _libc.unshare(flag) == 0:
            held["namespaces"].append(name)
        else:
            held["problems"].append(f"unshare {name}: {os.strerror(ctypes.get_errno())}")
    if "mount" in held["namespaces"]:
        try:
            _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
            keep = [p for p in plan["keep"] if os.path.exists(p)]
            tmp_options = f"mode=1777,size={plan['tmp_bytes']}"
            # Each covered folder gets an empty tmpfs; what must stay reachable inside it is
            # opened first and bound back on top. The private /tmp is one of them.
            for path in [*plan["hide"], plan["tmp"]]:
                inner = [k for k in keep if k.startswith(path.rstrip("/") + "/")]
                stash = [(k, os.open(k, os.O_PATH)) for k in inner]
                _mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV,
                       tmp_options if path == plan["tmp"] else "mode=0755,size=1m")
                for k, fd in stash:  # an empty stand-in, then the original bound over it
                    if os.path.isdir(f"/proc/self/fd/{fd}"):
                        os.makedirs(k, mode=0o755, exist_ok=True)
                    else:
                        os.makedirs(os.path.dirname(k), mode=0o755, exist_ok=True)
                        os.close(os.open(k, os.O_CREAT | os.O_WRONLY, 0o644))
                    _mount(f"/proc/self/fd/{fd}", k, None, _MS_BIND | _MS_REC)
                    os.close(fd)
                held["hidden"].append(path)
            for k in keep:
                _bind_readonly(k)
        except OSError as exc:
            held["problems"].append(str(exc))
    uid = plan.get("uid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        held["uid"] = os.getuid()
    return held
