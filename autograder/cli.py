"""Command line: ``grade`` a class's submissions, ``release`` the student notebooks.

Exit codes: 0 every submission was graded (whatever the scores); 1 some could not be
graded (each is named with its reason, the rest are graded); 2 a usage error.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import GraderError, UsageError
from .i18n import LANGUAGES
from .jobs import MAX_TIMEOUT_S
from .sandbox.launch import METHODS

__all__ = ["main"]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Grade the course's notebook assignments.")
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log what the grader does to stderr (-v: launches, retries, "
                             "reuse, timings; -vv: every job)")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade submissions into an output folder")
    g.add_argument("--assignment", required=True, help="assignment id, e.g. assignment1")
    g.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    g.add_argument("--jobs", type=int, default=1, help="sandboxed workers in parallel "
                                                       "(default 1)")
    g.add_argument("--isolation", default="auto",
                   choices=("auto", *METHODS),
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
    g.add_argument("--lang", choices=LANGUAGES,
                   help="the language of every student's feedback (default: the one the "
                        "notebook's metadata names, cnn_course.language, else en)")
    g.add_argument("--force", action="store_true",
                   help="regrade submissions whose earlier results are still valid")
    g.add_argument("--gpu-jobs", type=int, metavar="N",
                   help="training jobs to run at once on each GPU (default: as many as its "
                        "memory holds and the cores can feed), each sandbox bound to one GPU")
    g.add_argument("--similarity", type=Path, metavar="DIR",
                   help="after grading, write the similarity report (for the instructor "
                        "only) into DIR, as the similarity command does")
    _late_options(g)
    _cluster_options(g)
    g.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                   help="a .ipynb, a folder (nbgrader's submitted/ layout too) or a .zip")
    r = sub.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    r.add_argument("--assignment", action="append", help="assignment id (default: all)")
    r.add_argument("--no-execute", action="store_true",
                   help="do not run the released notebook to store its outputs")
    from .export.commands import add_parsers as add_export_parsers

    add_export_parsers(sub)  # export --format ..., bundle gradescope
    s = sub.add_parser("similarity", help="pairs of submissions with nearly the same answer "
                                          "code (for the instructor only)")
    s.add_argument("--out", required=True, type=Path,
                   help="folder for similarity.html and similarity.csv")
    _similarity_options(s)
    s.add_argument("grading_out", type=Path, metavar="GRADING_OUT",
                   help="the --out folder of 'python -m autograder grade'")
    return parser


def _similarity_options(parser: argparse.ArgumentParser) -> None:
    from .similarity.compare import Params  # copydetect itself loads only when comparing

    parser.add_argument("--threshold", type=float, default=Params.threshold, metavar="SCORE",
                        help="report pairs scoring at least this, from 0 to 1 "
                             f"(default {Params.threshold:g})")
    parser.add_argument("--noise", type=int, default=Params.noise, metavar="CHARS",
                        help="shortest match that counts, in reduced characters "
                             f"(default {Params.noise})")


def _late_options(g: argparse.ArgumentParser) -> None:
    t = g.add_argument_group("late submissions (see autograder/README.md)")
    t.add_argument("--due", metavar="ISO8601",
                   help="the due time with its time zone, e.g. 2026-12-01T23:59:00+09:00")
    t.add_argument("--late-policy", default="none", metavar="POLICY",
                   help="none (record only; default), zero (a late submission scores 0) or "
                        "per-day:PERCENT (that share of the score off per started day)")
    t.add_argument("--timestamps", type=Path, metavar="CSV",
                   help="student_id,timestamp rows: when each one handed in (wins over "
                        "nbgrader's timestamp.txt and the zip entries' times)")


def _cluster_options(g: argparse.ArgumentParser) -> None:
    d = g.add_argument_group("grading on a Dask cluster (see autograder/README.md)")
    d.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local: sandboxed workers on this machine (default); dask: one task "
                        "per submission on a Dask cluster")
    d.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tls://grader.example.edu:8786 "
                        "(default: a LocalCluster of --jobs workers on this machine, on "
                        "loopback only)")
    d.add_argument("--tls-ca-file", metavar="PEM", help="the CA that signed the cluster's "
                                                        "certificates")
    d.add_argument("--tls-cert", metavar="PEM", help="this client's certificate")
    d.add_argument("--tls-key", metavar="PEM", help="this client's private key")
    d.add_argument("--insecure", action="store_true",
                   help="allow a plain tcp:// scheduler that is not on loopback (only where "
                        "no one else can reach its port: it runs whatever it is sent)")


class _Progress:
    """One line per submission (CI logs), or a bar on a terminal: ``cnncourse.progress``."""

    def __init__(self, stream=None):
        from cnncourse.progress import Progress

        self.display = Progress(stream or sys.stderr)

    def __call__(self, done: int, total: int, result) -> None:
        status = (f"{result.total:g}/{result.max_total:g}" if result.graded
                  else f"NOT GRADED: {result.error}")
        self.display.event(done / max(total, 1), f"[{done}/{total}] {result.student_id}: "
                           f"{status}", f"{done}/{total} {result.student_id[:24]}: "
                           f"{status[:40]}")
        if done == total:
            self.display.close()


def _chosen_parts(names: str | None) -> tuple[str, ...] | None:
    """``--parts a,b`` as a tuple of names (the pipeline checks them), or None for all."""
    if names is None:
        return None
    return tuple(name.strip() for name in names.split(",") if name.strip())


def _check_args(args: argparse.Namespace) -> str:
    """Refuse a bad command before anything starts; returns the isolation method."""
    from .sandbox.launch import choose_method

    missing = [str(p) for p in args.submissions if not p.exists() and not p.is_symlink()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.gpu_jobs is not None and args.gpu_jobs < 1:
        raise UsageError("--gpu-jobs must be at least 1")
    if args.gradebook and importlib.util.find_spec("nbgrader") is None:
        raise UsageError("--gradebook needs nbgrader, which is not installed here")
    if args.timeout is not None and not 0 < args.timeout <= MAX_TIMEOUT_S:
        raise UsageError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} "
                         f"seconds; got {args.timeout:g}")
    _check_cluster_args(args)
    if args.similarity:  # refused before anything is graded
        from .similarity import check_report_folder

        check_report_folder(args.out, args.similarity)
    try:
        return choose_method(args.isolation)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _lateness(args: argparse.Namespace) -> dict:
    """--due, --late-policy and --timestamps, checked before anything starts."""
    from .late import parse_policy, parse_time, read_timestamps

    policy = parse_policy(args.late_policy)
    if args.late_policy != "none" and not args.due:
        raise UsageError("--late-policy needs --due")
    due = parse_time(args.due, "--due") if args.due else None
    times = read_timestamps(args.timestamps) if args.timestamps else None
    return {"due": due, "late_policy": policy, "timestamps": times}


def _tls(args: argparse.Namespace):
    given = [args.tls_ca_file, args.tls_cert, args.tls_key]
    if not any(given):
        return None
    if not all(given):
        raise UsageError("TLS needs all three of --tls-ca-file, --tls-cert and --tls-key")
    from .executors.dask_executor import TLSFiles

    return TLSFiles(*given)


def _check_cluster_args(args: argparse.Namespace) -> None:
    """Cluster options only with ``--executor dask``; a scheduler address that would let
    others in is refused here, before any connection is tried."""
    cluster_only = [flag for flag, value in (
        ("--scheduler", args.scheduler), ("--tls-ca-file", args.tls_ca_file),
        ("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
        ("--insecure", args.insecure)) if value]
    if args.executor != "dask":
        if cluster_only:
            raise UsageError(f"{', '.join(cluster_only)} need(s) --executor dask")
        return
    if importlib.util.find_spec("distributed") is None:
        raise UsageError("--executor dask needs dask[distributed]: pip install -r "
                         "requirements.txt")
    if args.scheduler is None:
        if cluster_only:
            raise UsageError(f"{', '.join(cluster_only)} need(s) --scheduler")
        return
    from .executors.dask_executor import check_address

    check_address(args.scheduler, args.insecure, _tls(args))


def run_profile(requested: str | None) -> str:
    """``--profile``, else "quick" when CNN_QUICK asks for it (read as the chapters read it:
    ``cnncourse.config.quick_mode``), else "full"."""
    from cnncourse.config import quick_mode

    return requested or ("quick" if quick_mode() else "full")


def _grade(args: argparse.Namespace) -> int:
    from .assignments import get_assignment
    from .errors import OutputLockedError
    from .pipeline import Options, grade

    try:
        assignment = get_assignment(args.assignment)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    method = _check_args(args)
    options = Options(jobs=args.jobs, isolation=method,
                      profile=run_profile(args.profile), force=args.force,
                      gradebook_url=args.gradebook, timeout_s=args.timeout,
                      progress=_Progress(), parts=_chosen_parts(args.parts),
                      language=args.lang,
                      executor=args.executor, scheduler=args.scheduler, tls=_tls(args),
                      insecure=args.insecure, gpu_jobs=args.gpu_jobs, **_lateness(args))
    try:
        run, results = grade(assignment, list(args.submissions), args.out, options)
    except OutputLockedError as exc:
        raise UsageError(str(exc)) from None
    failed = [r for r in results if not r.graded]
    graded = len(results) - len(failed)
    print(f"Graded {graded} of {len(results)} submission(s) into {args.out} "
          f"(isolation: {run.isolation.get('method') or 'none needed'}; "
          f"{run.timing.get('total_s')} s).")
    for r in failed:
        print(f"  could not grade {r.student_id}: {r.error}")
    if args.similarity:
        from .similarity.compare import Params

        _similarity(args.out, args.similarity, Params.threshold, Params.noise)
    return _report_left_out(run, assignment, failed)


def _similarity(grading_out: Path, out: Path, threshold: float, noise: int) -> int:
    from .similarity import Params, similarity

    if not 0 <= threshold <= 1:
        raise UsageError(f"--threshold must be from 0 to 1; got {threshold:g}")
    if noise < 5:
        raise UsageError(f"--noise must be at least 5 reduced characters; got {noise}")
    report = similarity(grading_out, out, Params(
        noise=noise, guarantee=noise + Params.guarantee - Params.noise, threshold=threshold))
    top = (f"; highest: {report.students[report.pairs[0].a]} and "
           f"{report.students[report.pairs[0].b]}, {report.pairs[0].score:.2f}"
           if report.pairs else "")
    print(f"Similarity: {report.compared} submission(s) compared, {len(report.pairs)} "
          f"pair(s) at or above {threshold:g}{top}. For the instructor only: "
          f"{out / 'similarity.html'}, {out / 'similarity.csv'}")
    return EXIT_OK


def _report_left_out(run, assignment, failed: list) -> int:
    """Say which parts were not graded and why; exit 1 when one could not run here."""
    from .pipeline import CHOSEN_OUT

    left = run.profile.get("not_graded") or []
    could_not = [p for p in left if p["reason"] != CHOSEN_OUT]
    for p in left:
        print(f"  not graded: {p['name']} ({p['max_score']:g} points): {p['reason']}")
    if could_not:
        others = ",".join(p.name for p in assignment.parts
                          if all(p.name != q["name"] for q in could_not))
        print(f"  Every other part was graded and written. To grade without "
              f"{', '.join(p['name'] for p in could_not)} on purpose, pass "
              f"--parts {others}; or fix the reason above and run the same command again "
              f"to grade every part.")
    return EXIT_SOME_FAILED if failed or could_not else EXIT_OK


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


def _logging(verbosity: int) -> None:
    """-v: the grader's own INFO messages on stderr; -vv: DEBUG (every job)."""
    if not verbosity:
        return
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("autograder").setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
    # Dask's own chatter (every worker and connection) only with -vv
    logging.getLogger("distributed").setLevel(logging.INFO if verbosity > 1 else
                                              logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _logging(args.verbose)
    try:
        if args.command in ("export", "bundle"):
            from .export.commands import run as run_export

            return run_export(args)
        if args.command == "similarity":
            return _similarity(args.grading_out, args.out, args.threshold, args.noise)
        return _grade(args) if args.command == "grade" else _release(args)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
