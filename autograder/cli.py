"""Command line: ``grade`` a class's submissions, ``release`` the student notebooks.

Exit codes: 0 every submission was graded (whatever the scores); 1 some could not be
graded (each is named with its reason, the rest are graded); 2 a usage error.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

from . import __version__

__all__ = ["main"]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with the command itself; exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Grade the course's notebook assignments.")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade submissions into an output folder")
    g.add_argument("--assignment", required=True, help="assignment id, e.g. assignment1")
    g.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    g.add_argument("--jobs", type=int, default=1, help="sandboxed workers in parallel "
                                                       "(default 1)")
    g.add_argument("--isolation", default="auto",
                   choices=("auto", "bwrap", "namespaces", "rlimits"),
                   help="how to confine student code (default: the strongest available)")
    g.add_argument("--gradebook", metavar="URL",
                   help="SQLAlchemy URL of nbgrader's gradebook (default: sqlite file "
                        "OUT/gradebook.db)")
    g.add_argument("--profile", choices=("quick", "full"),
                   help="size of parts that train (default: quick when CNN_QUICK=1)")
    g.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="wall-clock limit per part (default: each part's own, 20-30 s; "
                        "the training part keeps its own, set from the reference run)")
    g.add_argument("--parts", metavar="NAME[,NAME]",
                   help="grade only these parts (default: all), e.g. corr2d,pool2d,residual "
                        "to leave out the training part")
    g.add_argument("--force", action="store_true",
                   help="regrade submissions whose earlier results are still valid")
    g.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                   help="a .ipynb, a folder (nbgrader's submitted/ layout too) or a .zip")
    r = sub.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    r.add_argument("--assignment", action="append", help="assignment id (default: all)")
    r.add_argument("--no-execute", action="store_true",
                   help="do not run the released notebook to store its outputs")
    return parser


class _Progress:
    """A bar on a terminal, one plain line per submission elsewhere (CI logs)."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.tty = stream, stream.isatty()

    def __call__(self, done: int, total: int, result) -> None:
        status = (f"{result.total:g}/{result.max_total:g}" if result.graded
                  else f"NOT GRADED: {result.error}")
        if self.tty:
            width = 30
            filled = width * done // max(total, 1)
            line = f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total} " \
                   f"{result.student_id[:24]}: {status[:40]}"
            self.stream.write(line.ljust(100)[:100])
            if done == total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{done}/{total}] {result.student_id}: {status}\n")
        self.stream.flush()


def _grade(args: argparse.Namespace) -> int:
    from .assignments import get_assignment
    from .output import OutputLockedError
    from .pipeline import Options, choose_method, grade
    from .training import SetupError

    try:
        assignment = get_assignment(args.assignment)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    if args.parts:
        wanted = [name.strip() for name in args.parts.split(",") if name.strip()]
        known = [p.name for p in assignment.parts]
        unknown = [name for name in wanted if name not in known]
        if unknown or not wanted:
            raise UsageError(f"unknown part(s) {', '.join(unknown) or '(none given)'}; "
                             f"{assignment.id} has: {', '.join(known)}")
        assignment = dataclasses.replace(
            assignment, parts=tuple(p for p in assignment.parts if p.name in wanted))
    missing = [str(p) for p in args.submissions if not p.exists() and not p.is_symlink()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.gradebook and importlib.util.find_spec("nbgrader") is None:
        raise UsageError("--gradebook needs nbgrader, which is not installed here")
    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise UsageError("--timeout must be between 0 and 3600 seconds")
    try:
        choose_method(args.isolation)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    profile = args.profile or ("quick" if os.environ.get("CNN_QUICK", "") not in
                               ("", "0") else "full")
    options = Options(jobs=args.jobs, isolation=args.isolation, profile=profile,
                      force=args.force, gradebook_url=args.gradebook, timeout_s=args.timeout,
                      progress=_Progress())
    try:
        run, results = grade(assignment, list(args.submissions), args.out, options)
    except OutputLockedError as exc:
        raise UsageError(str(exc)) from None
    except SetupError as exc:  # e.g. no training data: nothing was graded, nothing is lost
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    failed = [r for r in results if not r.graded]
    graded = len(results) - len(failed)
    print(f"Graded {graded} of {len(results)} submission(s) into {args.out} "
          f"(isolation: {run.isolation.get('method') or 'none needed'}; "
          f"{run.timing.get('total_s')} s).")
    for r in failed:
        print(f"  could not grade {r.student_id}: {r.error}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _release(args: argparse.Namespace) -> int:
    from .assignments import ASSIGNMENTS
    from .release import release

    ids = args.assignment or sorted(ASSIGNMENTS)
    unknown = [i for i in ids if i not in ASSIGNMENTS]
    if unknown:
        raise UsageError(f"unknown assignment(s): {', '.join(unknown)}")
    for assignment_id in ids:
        path = release(ASSIGNMENTS[assignment_id], execute_notebook=not args.no_execute)
        print(f"released {assignment_id}: {path}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _grade(args) if args.command == "grade" else _release(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
