"""One submission, one call: ``grade_submission(submission, prepared, worker)``.

The steps for one notebook, in order: read it; take the answer cells by the SOURCE's ids
(tests and points only ever come from the source); for each part, scan the answer code
statically, build its job (the source's set-up cells, then the answer cells), run it in a
sandboxed worker, validate the report and score it against the oracle's answers; gate
parts on the checks they rest on. It returns a frozen ``SubmissionResult`` and touches no
module global and no output folder, so a caller may run it in threads, in another process
or on another machine (the distributed executor sends exactly this call).

``prepare_assignment`` does the once-per-run work before it: points and set-up cells from
the source notebook, and each part's ``Prepared`` (probes, reference run, limits).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from . import __version__
from .assignments import COURSE_ROOT, Assignment
from .checking.report import parse_report
from .checking.scans import RECORDER_SWITCHES, static_imports, static_library_uses
from .errors import NotebookError, SetupError, WorkerStartError
from .intake.notebook import Answers, SourceNotebook, extract_answers, load_source, parse_notebook
from .intake.submissions import Submission
from .jobs import Cell, RunSettings
from .output.results import LeftOut, PartResult, SubmissionResult
from .parts.base import Prepared
from .sandbox.pool import JobOutcome
from .scheduling import Memo, Slots

__all__ = ["PreparedAssignment", "prepare_assignment", "grade_submission", "read_answers",
           "fingerprint", "how_graded", "WorkerHandle"]

log = logging.getLogger(__name__)


class WorkerHandle(Protocol):
    """What grading needs of a worker: run one job (a ``WorkerPool`` is one)."""

    def run(self, job) -> JobOutcome: ...


@dataclass(frozen=True)
class PreparedAssignment:
    """An assignment ready to grade: the source's cells and points, each part prepared."""

    assignment: Assignment
    source: SourceNotebook
    parts: tuple[Prepared, ...]
    settings: RunSettings
    left_out: tuple[LeftOut, ...] = ()   # parts this run cannot grade, with the reason

    @property
    def id(self) -> str:
        return self.assignment.id

    @property
    def max_total(self) -> float:
        return sum(p.points for p in self.parts)

    @property
    def how(self) -> str:
        return how_graded([p.part for p in self.parts], self.settings.profile)

    @property
    def answer_names(self) -> dict[str, str]:
        return {aid: p.part.object_name for p in self.parts for aid in p.part.answer_ids}


def load_assignment_source(assignment: Assignment,
                           course_root: Path = COURSE_ROOT) -> SourceNotebook:
    return load_source(assignment.source_path(course_root), assignment.setup_ids,
                       assignment.parts)


def prepare_assignment(assignment: Assignment, settings: RunSettings,
                       course_root: Path = COURSE_ROOT,
                       source: SourceNotebook | None = None,
                       left_out: tuple[LeftOut, ...] = ()) -> PreparedAssignment:
    """Once per run, in the grader: points and set-up from the source, each part prepared.
    A part that cannot run here (``SetupError``), or that rests on one left out, is left
    out with the reason; the others are graded."""
    source = source or load_assignment_source(assignment, course_root)
    left = list(left_out)
    parts = []
    for part in assignment.parts:
        points = source.points[part.grade_id]
        if any(p.name == part.name for p in left):
            continue
        missing = [name for name, _ in part.requires if any(p.name == name for p in left)]
        if missing:
            left.append(LeftOut(part.name, points, f"it rests on {', '.join(missing)}, "
                                "which was not graded"))
            continue
        try:
            parts.append(part.prepare(points, settings))
        except SetupError as exc:
            log.warning("part %s cannot be graded here: %s", part.name, exc)
            left.append(LeftOut(part.name, points, str(exc)))
    order = [p.name for p in assignment.parts]
    return PreparedAssignment(assignment, source, tuple(parts), settings,
                              tuple(sorted(left, key=lambda p: order.index(p.name))))


def how_graded(parts, profile: str) -> str:
    """The parts and the profile: a result graded another way is not reused."""
    return f"{','.join(p.name for p in parts)}/{profile}"


def fingerprint(sub: Submission, source: SourceNotebook, how: str) -> str:
    """Same bytes, source, grader version and way of grading (``how``: the parts and the
    profile): an earlier result still holds."""
    h = hashlib.sha256(sub.data or b"")
    h.update(f"{source.fingerprint}/{__version__}/{how}".encode())
    return h.hexdigest()[:20]


def read_answers(sub: Submission, answer_names: dict[str, str]) -> Answers | str:
    """The submission's answer cells, or why it cannot be graded (a student's message)."""
    try:
        if sub.error:
            raise NotebookError(sub.error)
        return extract_answers(parse_notebook(sub.data), answer_names)
    except NotebookError as exc:
        return f"{sub.origin}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one odd file never stops the others
        log.exception("could not read %s", sub.origin)
        return (f"{sub.origin}: the grader could not read this notebook "
                f"({type(exc).__name__}); please report it")


def grade_submission(sub: Submission, prepared: PreparedAssignment, worker: WorkerHandle,
                     memo: Memo | None = None, slots: Slots | None = None) -> SubmissionResult:
    """Grade one submission's bytes with a prepared assignment on ``worker``."""
    fp = fingerprint(sub, prepared.source, prepared.how)
    answers = read_answers(sub, prepared.answer_names)
    if isinstance(answers, str):
        return SubmissionResult(sub.student_id, (), prepared.max_total, answers, sub.origin,
                                fp, key=sub.key, left_out=prepared.left_out)
    slots = slots or Slots()
    got: dict[str, PartResult] = {}
    for part in prepared.parts:
        try:
            got[part.name] = grade_part(part, answers, prepared.source, worker, memo, slots)
        except (WorkerStartError, OSError, SetupError) as exc:
            error = f"grading stopped: {exc}"
        except Exception as exc:  # noqa: BLE001 - a grader bug stays this one's error
            log.exception("grader error on part %s of %s", part.name, sub.origin)
            error = (f"internal grader error on part {part.name} "
                     f"({type(exc).__name__}: {exc}); please report it")
        else:
            continue
        return SubmissionResult(sub.student_id, (), prepared.max_total, error, sub.origin,
                                fp, key=sub.key, left_out=prepared.left_out)
    graded = tuple(p.part.gate(got[p.name], got) for p in prepared.parts)
    return SubmissionResult(sub.student_id, graded, prepared.max_total, None, sub.origin, fp,
                            round(sum(p.seconds for p in graded), 3), sub.key,
                            prepared.left_out)


def grade_part(part: Prepared, answers: Answers, source: SourceNotebook,
               worker: WorkerHandle, memo: Memo | None, slots: Slots) -> PartResult:
    """One part of one submission; a part that memoizes runs once per distinct code."""
    ids = part.part.answer_ids
    notes = tuple(n for aid in ids for n in answers.notes.get(aid, ()))
    code = tuple(c for aid in ids for c in answers.sources.get(aid, ()))
    cells = [Cell(sid, src) for sid, src in source.setup]
    answer_from = len(cells)
    for aid in ids:  # every copy of an answer cell runs, so the last definition counts
        cells += [Cell(aid if n == 0 else f"{aid} (copy {n + 1})", src)
                  for n, src in enumerate(answers.sources.get(aid, ()))]

    def run() -> PartResult:
        return _grade_code(part, code, tuple(cells), answer_from, notes, worker, slots)

    if not (part.part.memoize and memo is not None):
        return run()
    key = (part.name, hashlib.sha256("\0".join(code).encode()).hexdigest())
    result, _ = memo.get_or_compute(key, run)
    return replace(result, notes=notes)


def _static_problem(part: Prepared, code: tuple[str, ...]) -> str | None:
    """What the answer code shows before it runs that costs the part, or None."""
    decl = part.part
    if not code:
        missing = ", ".join(decl.answer_ids)
        return (f"the answer cell ({missing}) is missing from your notebook: download a fresh "
                "copy of the exercise and paste your code into its answer cell.")
    imports = [h for c in code for h in static_imports(c, decl.refused_imports)]
    if imports:
        line, module = imports[0]
        return (f"Your answer imports {module} (line {line}), which holds the course's "
                "reference answers, so this part earns no points. Write "
                f"{decl.object_name} yourself in its answer cell, as in the chapter: it "
                "needs only torch.")
    hits = [h for c in code for h in static_library_uses(c, decl.forbidden_names)]
    if hits:
        return decl.library_message([f"{name} (line {line})" for line, name in hits[:3]])
    switches = [h for c in code for h in static_library_uses(c, RECORDER_SWITCHES)] \
        if decl.forbidden_ops else []
    if switches:
        uses = ", ".join(f"{name} (line {line})" for line, name in switches[:3])
        return (f"{decl.object_name} switches off torch's function hooks ({uses}), which the "
                "grader uses to see library calls, so this part earns no points. Remove those "
                "lines: a correct answer needs none of them.")
    return None


def _grade_code(part: Prepared, code: tuple[str, ...], cells: tuple[Cell, ...],
                answer_from: int, notes: tuple[str, ...], worker: WorkerHandle,
                slots: Slots) -> PartResult:
    problem = _static_problem(part, code)
    if problem:
        return PartResult.zero(part.name, part.points, problem, notes=notes)
    job = part.job(cells, answer_from)
    with slots.hold(part.limits.threads, gpu=part.uses_gpu):
        outcome = worker.run(job)
        if outcome.worker_failure:  # the worker itself broke: once more, on a fresh one
            log.warning("the worker failed on part %s (%s); running it again on a fresh "
                        "worker", part.name, outcome.worker_failure)
            outcome = worker.run(job)
            notes += ("the grading worker failed once while running this part (not your "
                      "code's fault), so it was run again on a fresh worker",)
    if outcome.worker_failure:
        raise WorkerStartError(f"the worker failed twice on part {part.name}: "
                               f"{outcome.worker_failure}")
    result = part.score(parse_report(outcome, part.probe_ids, part.limits.timeout_s))
    return replace(result, output=outcome.output, seconds=outcome.seconds, notes=notes)
