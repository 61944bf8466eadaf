"""The sandboxed worker's entry: ``python worker.py --tmp DIR`` inside the sandbox.

It confines itself where bubblewrap does not (``confine.py``), arranges to die with its
parent, imports torch and the drivers once, says ``ready`` and hands the protocol to the
fork server (``server.py``), which runs each job in a fresh child (``child.py``). For each
job the grader sends a small ``run`` frame (the limits) and then a ``job`` frame (code and
inputs), which the child reads itself; the server passes the child's frames back unparsed
in one ``done`` frame. See ARCHITECTURE.md for the whole path of a submission.
"""

import argparse
import json
import os
import signal
import sys

if __package__:
    from . import child, confine, seccomp
    from .server import Server
else:  # started by file path inside the sandbox, next to its sibling modules
    import child
    import confine
    import seccomp
    from server import Server


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
    parent = os.getppid()
    # The protocol gets private copies of fds 0/1; stray prints from imports go to stderr.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    held = confine.confine(json.loads(args.confine)) if args.confine else None
    # Die with whoever started us: the grader itself without bwrap (a grader killed with -9
    # must not leave a server finishing a job), bwrap's init with it. Set after the uid
    # change, which clears it; a parent already gone is seen through getppid.
    child.prctl(child.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return 0
    sys.path.extend(args.sys_path)
    child.prctl(child.PR_SET_DUMPABLE, 0)
    child.prctl(child.PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    import importlib

    for name in filter(None, args.preload.split(",")):
        importlib.import_module(name)
    drivers = importlib.import_module(f"{__package__}.drivers" if __package__ else "drivers")
    drivers.warm_up()
    import torch

    server = Server(args.tmp, args.kill_all, proto_in, proto_out)
    server.send({"op": "ready", "pid": os.getpid(), "uid": os.getuid(),
                 "torch": torch.__version__, "seccomp": seccomp.available(), "confine": held})
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
