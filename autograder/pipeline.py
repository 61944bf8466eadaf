"""One ``grade`` command: prepare, grade each submission with one call, record.

1. collect  - find the submissions (notebooks, folders, zips) and read their bytes;
2. triage   - reuse an earlier result for unchanged bytes; file unreadable ones at once;
3. prepare  - fetch what workers must read, start the sandboxed workers and, meanwhile,
              prepare the assignment (points and set-up from the SOURCE, probes, the
              reference training run);
4. grade    - ``grading.grade_submission`` per notebook, ``--jobs`` at a time;
5. record   - feedback page, gradebook, then results.json and grades.csv, as each arrives.

This module is the only writer of the output folder; ``grading`` never touches it.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from . import __version__
from .assignments import COURSE_ROOT, Assignment
from .errors import SetupError, UsageError
from .executors.local import LocalExecutor, RunContext, in_background
from .grading import fingerprint, how_graded, load_assignment_source, read_submission
from .intake.notebook import SourceNotebook
from .intake.submissions import Submission, collect
from .jobs import RunSettings
from .late import FROM_FILE, NO_TIME, LatePolicy, penalty
from .output import feedback
from .output.answers import AnswerFile
from .output.folder import OutputDir
from .output.gradebook import GradebookWriter, default_url
from .output.results import GradingRun, LeftOut, SubmissionResult
from .sandbox.pool import default_private_dirs

__all__ = ["Options", "grade", "CHOSEN_OUT", "parts_left_out", "fetch_parts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """How to grade: parallel workers, isolation method, profile, regrading, gradebook."""

    jobs: int = 1
    isolation: str = "auto"
    profile: str = "quick"
    force: bool = False
    gradebook_url: str | None = None
    timeout_s: float | None = None      # per-part wall-clock limit; None: each part's own
    course_root: Path = COURSE_ROOT
    progress: Callable[[int, int, SubmissionResult], None] | None = None
    device: str | None = None           # "cuda" or "cpu"; None: cnncourse's default_device
    parts: tuple[str, ...] | None = None  # grade only these (--parts); None: every part
    language: str | None = None         # --lang: every submission's; None: each notebook's
    executor: str = "local"             # "local" (this machine) or "dask"
    scheduler: str | None = None        # dask: a running scheduler; None: a LocalCluster here
    tls: Any = None                     # dask: executors.dask_executor.TLSFiles
    insecure: bool = False              # dask: allow plain tcp:// off loopback
    gpu_jobs: int | None = None         # training jobs packed per GPU; None: from its memory
    due: datetime | None = None         # --due: late submissions are marked (and penalised)
    late_policy: LatePolicy = LatePolicy()   # --late-policy
    timestamps: Mapping[str, datetime] | None = None   # --timestamps: student id -> time


def _sweep_stale_temp() -> None:
    """Remove scratch folders of earlier runs that were killed before they could clean up."""
    for path in Path(tempfile.gettempdir()).glob("autograder-*-*"):
        pid = path.name.split("-")[-2] if path.name.count("-") >= 2 else ""
        if not pid.isdigit() or not path.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def _device(options: Options) -> str:
    if options.device:
        return options.device
    from cnncourse.config import default_device  # the one rule, shared with the chapters

    return default_device()


class _Recorder:
    """The output folder, the gradebook and the progress display for one command."""

    def __init__(self, out: OutputDir, run: GradingRun, part_cells: dict[str, str],
                 options: Options):
        self.out, self.run, self.part_cells, self.options = out, run, part_cells, options
        self.book: GradebookWriter | None = None
        self.done, self.total = 0, 0
        self.stamps: dict[str, tuple[datetime | None, str]] = {}  # key -> (time, source)

    def _late(self, result: SubmissionResult) -> SubmissionResult:
        """The submission's time, how late it is, and the penalty (late.penalty)."""
        when, source = self.stamps.get(result.key, (None, ""))
        due = self.options.due
        if when is None:  # with --due, said in results.json and on the feedback page
            return replace(result, timestamp=None, timestamp_source=NO_TIME if due else "",
                           late_by_seconds=None, late_penalty=0.0)
        late_by = (when - due).total_seconds() if due else None
        points = penalty(result.total, late_by, self.options.late_policy) \
            if late_by is not None and result.graded else 0.0
        return replace(result, timestamp=when.isoformat(), timestamp_source=source,
                       late_by_seconds=late_by, late_penalty=points)

    def record(self, result: SubmissionResult) -> None:
        """Feedback page, gradebook, then results.json: a result on file is complete."""
        previous = self.out.results.get(result.key)
        result = self._late(result)
        if result is not previous and result != previous:  # new, or its lateness changed
            self.out.write_feedback(result.student_id,
                                    feedback.render(result, self.run.assignment), result.key)
        if self.book:
            self.book.record(result, self.part_cells)
        self.run = self.out.record(result, self.run)
        self.done += 1
        if self.options.progress:
            self.options.progress(self.done, self.total, result)


def _triage(subs: list[Submission], source: SourceNotebook, assignment: Assignment,
            out: OutputDir, options: Options, how: str, max_total: float,
            left_out: tuple[LeftOut, ...]):
    """Results already known (reused, unreadable) by index, and the indices to grade."""
    names = {aid: p.object_name for p in assignment.parts for aid in p.answer_ids}
    finished: dict[int, SubmissionResult] = {}
    pending: list[int] = []
    kept = AnswerFile(out.path, assignment.id)  # for the similarity report
    for i, sub in enumerate(subs):
        fp = fingerprint(sub, source, how)
        previous = None if options.force else out.previous(sub.key, fp)
        if previous is not None:
            log.info("reusing the earlier result of %s (unchanged)", sub.origin)
            finished[i] = previous
            if not kept.has(sub.key, fp):
                kept.put(sub, fp, read_submission(sub, names, options.language)[0])
            continue
        answers, lang = read_submission(sub, names, options.language)
        kept.put(sub, fp, answers)
        if isinstance(answers, str):
            finished[i] = SubmissionResult(sub.student_id, (), max_total, answers, sub.origin,
                                           fp, key=sub.key, left_out=left_out, language=lang)
            continue
        pending.append(i)
    kept.save()
    return finished, pending


def parts_left_out(assignment: Assignment, source: SourceNotebook,
            names: tuple[str, ...] | None) -> tuple[LeftOut, ...]:
    """The parts ``--parts`` leaves out, each with its points."""
    if names is None:
        return ()
    known = [p.name for p in assignment.parts]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"unknown part(s) {', '.join(unknown) or '(none given)'}; "
                         f"{assignment.id} has: {', '.join(known)}")
    return tuple(LeftOut(p.name, source.points[p.grade_id], CHOSEN_OUT, "chosen")
                 for p in assignment.parts if p.name not in names)


def fetch_parts(assignment: Assignment, source: SourceNotebook,
           left_out: tuple[LeftOut, ...]) -> tuple[LeftOut, ...]:
    """Each part's files on disk before the sandbox starts (it binds only folders that
    exist by then); a part that cannot have them here is left out, with the reason."""
    left = list(left_out)
    for part in assignment.parts:
        if any(p.name == part.name for p in left):
            continue
        try:
            part.fetch()
        except SetupError as exc:
            log.warning("part %s cannot be graded here: %s", part.name, exc)
            left.append(LeftOut(part.name, source.points[part.grade_id], str(exc)))
    return tuple(left)


def _open_gradebook(assignment: Assignment, out_dir: Path, options: Options,
                    source: SourceNotebook) -> tuple[str | None, Callable[[], object]]:
    """Importing nbgrader takes seconds: the gradebook opens while the rest gets going."""
    url = options.gradebook_url or default_url(out_dir)
    if importlib.util.find_spec("nbgrader") is None and not options.gradebook_url:
        url = None  # a machine without nbgrader still grades; results.json says so
    points = {p.grade_id: source.points[p.grade_id] for p in assignment.parts}
    return url, in_background(lambda: url and GradebookWriter(
        url, assignment.id, Path(assignment.notebook).stem, points,
        tuple(sorted(source.answer_ids))))


NO_GRADEBOOK = "not written: nbgrader is not installed"
CHOSEN_OUT = "left out with --parts"  # the reason of a part the command did not ask for


def _new_run(assignment: Assignment, part_names: tuple[str, ...], options: Options,
             settings: RunSettings) -> GradingRun:
    return GradingRun(assignment.id, part_names, (), profile={
        "name": options.profile, "jobs": options.jobs, "grader": __version__,
        "device": settings.device})


def _with_times(subs: list[Submission], options: Options) -> list[Submission]:
    """--timestamps wins over the times found with the files; with --due, the submissions
    without any time are named (they are not penalised, and their feedback says why)."""
    given = options.timestamps or {}
    subs = [replace(s, timestamp=given[s.student_id], timestamp_source=FROM_FILE)
            if s.student_id in given else s for s in subs]
    missing = [s.student_id for s in subs if s.timestamp is None and s.error is None]
    if options.due and missing:
        log.warning("no submission time for %s: not checked for lateness", ", ".join(missing))
    return subs


def _cuda_graph() -> bool:
    """Whether training on CUDA captures its step: ``CNN_CUDA_GRAPH`` of the machine that
    starts the run, passed on to every worker (a Dask worker's own setting does not count)."""
    from cnncourse.config import cuda_graph_requested

    return cuda_graph_requested()


def _device_asked(options: Options) -> str | None:
    """The device the instructor chose (Options.device, or CNN_DEVICE); None lets each
    machine of a cluster take its own default."""
    return options.device or os.environ.get("CNN_DEVICE") or None


def _open_executor(options: Options, settings: RunSettings):
    """This machine's workers, or a Dask cluster (reached, or refused, before anything is
    written)."""
    if options.executor == "local":
        return LocalExecutor()
    if options.executor != "dask":
        raise UsageError(f"unknown executor {options.executor!r}: local or dask")
    from .executors.dask_executor import DaskExecutor

    return DaskExecutor(options.scheduler, options.jobs, options.tls, options.insecure,
                        gpus=int(settings.device == "cuda"))


def _timing(total_s: float, startup: float, graded: int, total: int) -> dict:
    return {"total_s": round(total_s, 3), "worker_startup_s": round(startup, 3),
            "graded": graded, "reused_or_unreadable": total - graded,
            "per_submission_s": round((total_s - startup) / graded, 4) if graded else None}


def grade(assignment: Assignment, paths: list[Path], out_dir: Path,
          options: Options = Options()) -> tuple[GradingRun, list[SubmissionResult]]:
    """Grade every submission under ``paths`` into ``out_dir``; returns the run and this
    command's own results (in input order)."""
    start = time.monotonic()
    source = load_assignment_source(assignment, options.course_root)
    points = {p.name: source.points[p.grade_id] for p in assignment.parts}
    settings = RunSettings(options.profile, _device(options), options.timeout_s,
                           Path(out_dir) / ".reference", options.language,
                           cuda_graph=_cuda_graph())
    chosen_out = parts_left_out(assignment, source, options.parts)
    how = how_graded([p for p in assignment.parts
                      if all(p.name != q.name for q in chosen_out)], options.profile,
                     options.language)
    executor = _open_executor(options, settings)
    out = OutputDir(Path(out_dir), assignment.id)
    run = _new_run(assignment, tuple(points), options, settings)
    _sweep_stale_temp()
    workdir = Path(tempfile.mkdtemp(prefix=f"autograder-{os.getpid()}-"))
    book_url, wait_book = _open_gradebook(assignment, out_dir, options, source)
    run = replace(run, profile={**run.profile, "gradebook": book_url or NO_GRADEBOOK})
    recorder = _Recorder(out, run, {p.name: p.grade_id for p in assignment.parts}, options)
    try:
        subs = _with_times(collect(paths, assignment.id, assignment.notebook, workdir),
                           options)
        recorder.total = len(subs)
        recorder.stamps = {s.key: (s.timestamp, s.timestamp_source) for s in subs}
        if not subs:
            raise UsageError(f"no notebooks found in {', '.join(map(str, paths))}: a "
                             "submission is a .ipynb file, a folder of them (nbgrader's "
                             "submitted/ layout too) or a .zip of either")
        graded_total = sum(points.values()) - sum(p.max_score for p in chosen_out)
        finished, pending = _triage(subs, source, assignment, out, options, how,
                                    graded_total, chosen_out)
        startup = _start(executor, pending, recorder, RunContext(
            assignment, source, settings, options.course_root, options.jobs,
            options.isolation, default_private_dirs(out_dir, options.course_root, workdir,
                                                    *paths),
            chosen_out, options.parts, _device_asked(options), options.gpu_jobs))
        recorder.book = wait_book()
        for i in sorted(finished):  # reused and unreadable ones: filed (again) first
            recorder.record(finished[i])

        def on_result(i: int, result: SubmissionResult) -> None:
            finished[i] = result
            recorder.record(result)
        executor.grade([(i, subs[i]) for i in pending], on_result, options.jobs)
        run = replace(recorder.run, submissions=tuple(out.results.values()),
                      timing=_timing(time.monotonic() - start, startup, len(pending),
                                     len(subs)))
        out.write(run)
        return run, [finished[i] for i in range(len(subs))]
    finally:
        _close(executor, wait_book, out, workdir)


def _start(executor, pending: list[int], recorder: _Recorder, ctx: RunContext) -> float:
    """Start the executor when something is to be graded; record its isolation and what
    the parts add to the profile. Returns the seconds it took."""
    if not pending:
        recorder.run = replace(recorder.run, isolation={
            "method": None, "notes": ["no submission needed a worker"]}, profile={
            **recorder.run.profile, "executor": {"name": executor.name}})
        return 0.0
    t0 = time.monotonic()
    if executor.name == "local":  # a cluster's workers fetch for themselves
        ctx = replace(ctx, left_out=fetch_parts(ctx.assignment, ctx.source, ctx.left_out))
    started = executor.start(ctx)
    recorder.run = replace(recorder.run, isolation=started.isolation, profile={
        **recorder.run.profile, **started.profile,
        "not_graded": [p.to_dict() for p in started.left_out]})
    return time.monotonic() - t0


def _close(executor, wait_book: Callable[[], object], out: OutputDir,
           workdir: Path) -> None:
    """Stop the workers, close the gradebook and the output folder, remove scratch files."""
    executor.close()
    try:
        book = wait_book()
        if book:
            book.close()
    except Exception:  # noqa: BLE001 - already reported above, or nothing to close
        pass
    out.close()
    shutil.rmtree(workdir, ignore_errors=True)
