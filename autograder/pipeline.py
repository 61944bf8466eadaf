"""The grading pipeline, in order: load, validate, restore tests, execute isolated, check,
score, report.

1. load      - find the submissions (notebooks, folders, zips) and read their bytes;
2. validate  - parse each notebook; reuse an earlier result for unchanged bytes;
3. restore   - take points, setup cells and answer ids from the SOURCE notebook only;
4. execute   - run each part's answer cells in a fresh sandboxed child, one part per job;
5. check     - compare the plain data that came back with the grader's own oracle;
6. score     - partial credit per check, summing to the part's points;
7. report    - feedback page, gradebook, results.json and grades.csv, per submission.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from . import __version__, feedback, sandbox
from .assignments import COURSE_ROOT, Assignment
from .gradebook import GradebookWriter, default_url
from .notebook import (Answers, NotebookError, SourceNotebook, extract_answers, load_source,
                       parse_notebook)
from .output import OutputDir
from .parts.base import Part, static_library_uses
from .pool import WorkerPool, WorkerStartError, default_private_dirs
from .report import parse_report
from .results import GradingRun, PartResult, SubmissionResult
from .submissions import Submission, collect
from .training import SetupError

__all__ = ["Options", "grade", "build_job", "choose_method", "PartJobs", "RECORDER_SWITCHES"]


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


def choose_method(requested: str) -> str:
    """The isolation method to use: the strongest available, or the one asked for."""
    available = sandbox.available_methods()
    if requested == "auto":
        return available[0]
    if requested not in available:
        raise ValueError(f"isolation {requested!r} is not available here (available: "
                         f"{', '.join(available)}); install bubblewrap or run as root")
    return requested


def _limits(part: Part, timeout_s: float) -> dict:
    # every thread of the child burns CPU time, so the CPU limit scales with them
    return {"cpu_s": int(timeout_s) * max(1, part.threads) + 1,
            "file_bytes": part.file_bytes, "open_files": 256,
            "memory_bytes": part.memory_bytes, "processes": 256, "output_bytes": 64 << 10,
            "result_bytes": max(32 << 20, part.file_bytes), "threads": part.threads}


class PartJobs:
    """Each part's probes and expected answers, computed once per run in the grader."""

    def __init__(self, parts: tuple[Part, ...], out_dir: Path | None = None,
                 profile: str = "quick"):
        for p in parts:
            p.prepare(Path(out_dir) if out_dir else Path(tempfile.gettempdir()), profile)
        self.fields = {p.name: p.job_fields() for p in parts}
        self.facts = {k: v for p in parts for k, v in p.run_facts().items()}


def build_job(part: Part, answers: Answers, source: SourceNotebook, jobs: PartJobs,
              profile: str, use_seccomp: bool, dedicated_uid: bool,
              timeout_s: float | None = None) -> tuple[dict, list[bytes]]:
    """The plain-data job for one part: source setup cells, then the answer cells."""
    cells = [{"label": sid, "source": src} for sid, src in source.setup]
    for aid in part.answer_ids:
        for n, code in enumerate(answers.sources.get(aid, ())):
            cells.append({"label": aid if n == 0 else f"{aid} (copy {n + 1})", "source": code})
    fields, blobs = jobs.fields[part.name]
    # --timeout overrides the checks' limits; a part that trains keeps its own, which is
    # derived from the reference run on this machine
    timeout_s = part.timeout_s if part.own_timeout else (timeout_s or part.timeout_s)
    limits = _limits(part, timeout_s)
    # New processes are refused (seccomp) unless the part needs them: no fork bombs, no
    # daemons, no memory spread over many processes each under its own RLIMIT_AS.
    limits["subprocesses"] = bool(getattr(part, "subprocesses", False))
    if not dedicated_uid:  # RLIMIT_NPROC would count every process of the grader's user
        limits["processes"] = None
    job = {"timeout_s": timeout_s, "seccomp": use_seccomp, "limits": limits,
           "cells": cells, "driver": part.driver, "object": part.object_name,
           "profile": part.worker_profile(profile), "env": part.worker_env(profile), **fields}
    return job, blobs


class Slots:
    """CPU cores (and the GPU) shared by the jobs that run at once.

    A part holds as many cores as it has threads while its worker runs, and a part on the
    GPU holds the GPU as well, so a training run gets the machine its time limit was
    measured on (the reference ran alone) instead of sharing two cores with another run.
    Requests are served in arrival order, so a large one is never starved by small ones.
    """

    def __init__(self, cores: int | None = None):
        if cores is None:
            try:
                cores = len(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                cores = os.cpu_count() or 1
        self.cores = max(1, cores)
        self._free = {"cpu": self.cores, "gpu": 1}
        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()

    @contextlib.contextmanager
    def hold(self, cores: int, gpu: bool = False):
        need = {"cpu": min(max(1, cores), self.cores), "gpu": int(bool(gpu))}
        ticket = object()
        with self._cv:
            self._queue.append(ticket)
            self._cv.wait_for(lambda: self._queue[0] is ticket and all(
                self._free[k] >= n for k, n in need.items()))
            self._queue.popleft()
            for k, n in need.items():
                self._free[k] -= n
            self._cv.notify_all()
        try:
            yield
        finally:
            with self._cv:
                for k, n in need.items():
                    self._free[k] += n
                self._cv.notify_all()


_memo_lock = threading.Lock()


def _grade_part(part: Part, points: float, answers: Answers, source: SourceNotebook,
                jobs: PartJobs, pool: WorkerPool, options: Options,
                memo: dict | None = None, slots: Slots | None = None) -> PartResult:
    notes = tuple(n for aid in part.answer_ids for n in answers.notes.get(aid, ()))
    code = [c for aid in part.answer_ids for c in answers.sources.get(aid, ())]
    if not (part.memoize and memo is not None):
        return _grade_part_once(part, points, answers, source, jobs, pool, options, code,
                                notes, slots)
    # The same code under the same seed trains the same way: run it once per run. A copy
    # that arrives while the first is still training waits for it instead of training too.
    key = (part.name, hashlib.sha256("\0".join(code).encode()).hexdigest())
    with _memo_lock:
        lock = memo.setdefault(("in-flight", *key), threading.Lock())
    with lock:
        if key in memo:
            return replace(memo[key], notes=notes)
        result = _grade_part_once(part, points, answers, source, jobs, pool, options, code,
                                  notes, slots)
        memo[key] = result
    return result


def _grade_part_once(part: Part, points: float, answers: Answers, source: SourceNotebook,
                     jobs: PartJobs, pool: WorkerPool, options: Options, code: list[str],
                     notes: tuple[str, ...], slots: Slots | None = None) -> PartResult:
    if not code:
        missing = ", ".join(part.answer_ids)
        return PartResult.zero(part.name, points, f"the answer cell ({missing}) is missing from "
                               "your notebook: download a fresh copy of the exercise and paste "
                               "your code into its answer cell.", notes=notes)
    hits = [(line, name) for c in code for line, name in static_library_uses(
        c, part.forbidden_names)]
    if hits:
        uses = [f"{name} (line {line})" for line, name in hits[:3]]
        return PartResult.zero(part.name, points, part.library_message(uses), notes=notes)
    switches = [(line, name) for c in code for line, name in static_library_uses(
        c, RECORDER_SWITCHES)] if part.forbidden_ops else []
    if switches:
        uses = ", ".join(f"{name} (line {line})" for line, name in switches[:3])
        return PartResult.zero(part.name, points, (
            f"{part.object_name} switches off torch's function hooks ({uses}), which the "
            "grader uses to see library calls, so this part earns no points. Remove those "
            "lines: a correct answer needs none of them."), notes=notes)
    isolation = pool.isolation()
    job, blobs = build_job(part, answers, source, jobs, options.profile,
                           isolation.seccomp, isolation.unprivileged_uid, options.timeout_s)
    slots = slots or Slots()
    with slots.hold(part.threads, gpu=bool(getattr(part, "uses_gpu", False))):
        outcome = pool.run(job, blobs)
        if outcome.worker_failure:  # the worker itself broke: once more on a fresh one
            outcome = pool.run(job, blobs)
    if outcome.worker_failure:
        raise WorkerStartError(f"the worker failed twice on part {part.name}: "
                               f"{outcome.worker_failure}")
    result = part.score(parse_report(outcome, part.probe_ids(), job["timeout_s"]), points)
    return replace(result, output=outcome.output, seconds=outcome.seconds, notes=notes)


# torch internals that turn off or step around the torch-function mode that records library
# calls at run time (each tried in the red-team tests); naming one in an answer costs the part.
RECORDER_SWITCHES = ("DisableTorchFunction", "DisableTorchFunctionSubclass",
                     "_pop_mode_temporarily", "_pop_mode", "_pop_torch_function_stack",
                     "_push_on_torch_function_stack", "_len_torch_function_stack",
                     "_get_function_stack_at", "_set_torch_function_mode",
                     "_disable_current_modes", "_disabled_torch_function_impl",
                     "_is_torch_function_mode_enabled")


def _fingerprint(sub: Submission, source: SourceNotebook, how: str = "") -> str:
    """Same bytes, source, grader version and way of grading (``how``: the parts and the
    profile): an earlier result still holds."""
    h = hashlib.sha256(sub.data or b"")
    h.update(f"{source.fingerprint}/{__version__}/{how}".encode())
    return h.hexdigest()[:20]


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


def _in_background(fn: Callable[[], object]) -> Callable[[], object]:
    """Start ``fn`` in a thread now; the returned callable waits and returns (or raises)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def wait() -> object:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]
    return wait


class _Run:
    """One ``grade`` command: the steps of the module docstring, over all submissions."""

    def __init__(self, assignment: Assignment, out_dir: Path, options: Options):
        self.assignment, self.out_dir, self.options = assignment, Path(out_dir), options
        self.source = load_source(assignment.source_path(options.course_root),
                                  assignment.setup_ids, assignment.parts)
        self.points = {p.name: self.source.points[p.grade_id] for p in assignment.parts}
        self.part_cells = {p.name: p.grade_id for p in assignment.parts}
        self.out = OutputDir(self.out_dir, assignment.id)
        self.run = GradingRun(assignment.id, tuple(self.points), (), profile={
            "name": options.profile, "jobs": options.jobs, "grader": __version__})
        self.book: GradebookWriter | None = None
        self.memo: dict = {}  # (part, code hash) -> PartResult, for parts that memoize
        self.slots = Slots()  # cores and GPU shared by the jobs that run at once
        self.how = f"{','.join(p.name for p in assignment.parts)}/{options.profile}"
        self.done, self.total = 0, 0

    # load + validate ----------------------------------------------------------------------
    def triage(self, subs: list[Submission]) -> tuple[dict, dict]:
        """Split into results already known (reused, unreadable) and notebooks to grade."""
        finished: dict[int, SubmissionResult] = {}
        pending: dict[int, tuple[Submission, Answers, str]] = {}
        names = {aid: p.object_name for p in self.assignment.parts for aid in p.answer_ids}
        max_total = sum(self.points.values())
        for i, sub in enumerate(subs):
            fp = _fingerprint(sub, self.source, self.how)
            previous = None if self.options.force else self.out.previous(sub.key, fp)
            if previous is not None:
                finished[i] = previous
                continue
            try:
                if sub.error:
                    raise NotebookError(sub.error)
                answers = extract_answers(parse_notebook(sub.data), names)
            except NotebookError as exc:
                finished[i] = SubmissionResult(sub.student_id, (), max_total,
                                               f"{sub.origin}: {exc}", sub.origin, fp,
                                               key=sub.key)
                continue
            except Exception as exc:  # noqa: BLE001 - one odd file never stops the others
                finished[i] = SubmissionResult(
                    sub.student_id, (), max_total, f"{sub.origin}: the grader could not read "
                    f"this notebook ({type(exc).__name__}); please report it", sub.origin, fp,
                    key=sub.key)
                continue
            pending[i] = (sub, answers, fp)
        return finished, pending

    # report -------------------------------------------------------------------------------
    def report(self, result: SubmissionResult) -> None:
        """Feedback page, gradebook, then results.json: a result on file is complete."""
        if result is not self.out.results.get(result.key):  # new, not reused from disk
            self.out.write_feedback(result.student_id,
                                    feedback.render(result, self.assignment.id), result.key)
        if self.book:
            self.book.record(result, self.part_cells)
        self.run = self.out.record(result, self.run)
        self.done += 1
        if self.options.progress:
            self.options.progress(self.done, self.total, result)

    # execute + check + score --------------------------------------------------------------
    def grade_pending(self, pending: dict, pool: WorkerPool, jobs: PartJobs) -> dict:
        parts = self.assignment.parts
        results: dict[int, SubmissionResult] = {}
        got: dict[int, dict[str, PartResult]] = {i: {} for i in pending}
        errors: dict[int, str] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs)) as executor:
            futures = {executor.submit(_grade_part, part, self.points[part.name], answers,
                                       self.source, jobs, pool, self.options,
                                       self.memo, self.slots): (i, part)
                       for i, (_, answers, _) in pending.items() for part in parts}
            for future in as_completed(futures):
                i, part = futures[future]
                try:
                    got[i][part.name] = future.result()
                except (WorkerStartError, OSError, SetupError) as exc:
                    errors[i] = f"grading stopped: {exc}"
                    got[i][part.name] = None
                except Exception as exc:  # noqa: BLE001 - a grader bug stays this one's error
                    errors[i] = (f"internal grader error on part {part.name} "
                                 f"({type(exc).__name__}: {exc}); please report it")
                    got[i][part.name] = None
                if len(got[i]) < len(parts):
                    continue
                sub, _, fp = pending[i]
                graded = () if i in errors else tuple(p.gate(got[i][p.name], got[i])
                                                      for p in parts)
                result = SubmissionResult(
                    sub.student_id, graded, sum(self.points.values()), errors.get(i),
                    sub.origin, fp, round(sum(p.seconds for p in graded), 3), sub.key)
                self.report(result)
                results[i] = result
        return results


def grade(assignment: Assignment, paths: list[Path], out_dir: Path,
          options: Options = Options()) -> tuple[GradingRun, list[SubmissionResult]]:
    """Grade every submission under ``paths`` into ``out_dir``; returns the run and this
    command's own results (in input order)."""
    start = time.monotonic()
    state = _Run(assignment, out_dir, options)
    _sweep_stale_temp()
    workdir = Path(tempfile.mkdtemp(prefix=f"autograder-{os.getpid()}-"))
    pool = None
    # Importing nbgrader takes seconds: open the gradebook while the rest gets going.
    book_url = options.gradebook_url or default_url(out_dir)
    if importlib.util.find_spec("nbgrader") is None and not options.gradebook_url:
        book_url = None  # a machine without nbgrader still grades; results.json says so
    state.run = replace(state.run, profile={
        **state.run.profile, "gradebook": book_url or "not written: nbgrader is not installed"})
    wait_book = _in_background(lambda: book_url and GradebookWriter(
        book_url, assignment.id, Path(assignment.notebook).stem,
        {p.grade_id: state.points[p.name] for p in assignment.parts},
        tuple(sorted(state.source.answer_ids))))
    try:
        subs = collect(paths, assignment.id, assignment.notebook, workdir)
        state.total = len(subs)
        finished, pending = state.triage(subs)
        startup, isolation = 0.0, {"method": None, "notes": ["no submission needed a worker"]}
        if pending:
            t0 = time.monotonic()
            for part in assignment.parts:  # files the sandbox must bind: before it starts
                part.fetch()
            # The oracle's answers are computed while the workers import torch.
            wait_jobs = _in_background(lambda: PartJobs(assignment.parts, out_dir,
                                                         options.profile))
            extra = tuple(f for p in assignment.parts for f in p.worker_files)
            pool = WorkerPool(max(1, options.jobs), choose_method(options.isolation),
                              default_private_dirs(out_dir, options.course_root, workdir,
                                                   *paths), extra,
                              gpu=any(p.uses_gpu for p in assignment.parts))
            jobs = wait_jobs()
            startup = time.monotonic() - t0
            isolation = pool.isolation().to_dict()
            state.run = replace(state.run, profile={**state.run.profile, **jobs.facts})
        state.run = replace(state.run, isolation=isolation)
        state.book = wait_book()
        for i in sorted(finished):  # reused and unreadable ones: filed (again) first
            state.report(finished[i])
        if pending:
            finished.update(state.grade_pending(pending, pool, jobs))
        total_s = time.monotonic() - start
        state.run = replace(state.run, submissions=tuple(state.out.results.values()), timing={
            "total_s": round(total_s, 3), "worker_startup_s": round(startup, 3),
            "graded": len(pending), "reused_or_unreadable": len(subs) - len(pending),
            "per_submission_s": round((total_s - startup) / len(pending), 4)
            if pending else None})
        state.out.write(state.run)
        return state.run, [finished[i] for i in range(len(subs))]
    finally:
        if pool is not None:
            pool.close()
        try:
            book = wait_book()
            if book:
                book.close()
        except Exception:  # noqa: BLE001 - already reported above, or nothing to close
            pass
        state.out.close()
        shutil.rmtree(workdir, ignore_errors=True)
