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

from . import __version__, i18n
from .assignments import COURSE_ROOT, Assignment
from .checking.report import parse_report
from .checking.scans import RECORDER_SWITCHES, static_imports, static_library_uses
from .errors import NotebookError, SetupError, WorkerStartError
from .i18n import _
from .intake.notebook import Answers, SourceNotebook, extract_answers, load_source, parse_notebook
from .intake.submissions import Submission
from .jobs import Cell, RunSettings
from .output.results import LeftOut, PartResult, SubmissionResult
from .parts.base import Prepared
from .sandbox.pool import JobOutcome
from .scheduling import Memo, Slots

__all__ = ["PreparedAssignment", "prepare_assignment", "grade_submission", "read_answers",
           "fingerprint", "how_graded", "WorkerHandle", "read_submission"]

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
        return how_graded([p.part for p in self.parts], self.settings.profile,
                          self.settings.language)

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
                                "which was not graded", "rests_on", tuple(missing)))
            continue
        try:
            parts.append(part.prepare(points, settings))
        except SetupError as exc:
            log.warning("part %s cannot be graded here: %s", part.name, exc)
            left.append(LeftOut(part.name, points, str(exc)))
    order = [p.name for p in assignment.parts]
    return PreparedAssignment(assignment, source, tuple(parts), settings,
                              tuple(sorted(left, key=lambda p: order.index(p.name))))


def how_graded(parts, profile: str, language: str | None = None) -> str:
    """The parts, the profile and a language forced with --lang: a result graded another
    way is not reused (a notebook's own language is in its bytes)."""
    return f"{','.join(p.name for p in parts)}/{profile}" + (f"/{language}" if language
                                                               else "")


def fingerprint(sub: Submission, source: SourceNotebook, how: str) -> str:
    """Same bytes, source, grader version and way of grading (``how``: the parts and the
    profile): an earlier result still holds."""
    h = hashlib.sha256(sub.data or b"")
    h.update(f"{source.fingerprint}/{__version__}/{how}".encode())
    return h.hexdigest()[:20]


def read_answers(sub: Submission, answer_names: dict[str, str]) -> Answers | str:
    """The submission's answer cells, or why it cannot be graded (a student's message, in
    the current language: the one forced with --lang, since the notebook is unreadable)."""
    try:
        if sub.error:
            raise NotebookError(sub.error)
        return extract_answers(parse_notebook(sub.data), answer_names)
    except NotebookError as exc:
        return f"{sub.origin}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one odd file never stops the others
        log.exception("could not read %s", sub.origin)
        return _("{origin}: the grader could not read this notebook ({error}); please "
                 "report it").format(origin=sub.origin, error=type(exc).__name__)


def read_submission(sub: Submission, answer_names: dict[str, str],
                    forced: str | None) -> tuple[Answers | str, str]:
    """The answers (or why there are none) and the submission's language: ``forced``
    (--lang) when given, else what the notebook's metadata asks for, else English."""
    with i18n.language(forced):
        answers = read_answers(sub, answer_names)
    if forced:
        return answers, forced
    return answers, answers.language if isinstance(answers, Answers) else i18n.DEFAULT


def grade_submission(sub: Submission, prepared: PreparedAssignment, worker: WorkerHandle,
                     memo: Memo | None = None, slots: Slots | None = None) -> SubmissionResult:
    """Grade one submission's bytes with a prepared assignment on ``worker``, every message
    in the submission's language (``read_submission``)."""
    fp = fingerprint(sub, prepared.source, prepared.how)
    answers, lang = read_submission(sub, prepared.answer_names, prepared.settings.language)
    if isinstance(answers, str):
        return SubmissionResult(sub.student_id, (), prepared.max_total, answers, sub.origin,
                                fp, key=sub.key, left_out=prepared.left_out, language=lang)
    with i18n.language(lang):
        return replace(_grade_answers(sub, answers, prepared, worker, memo, slots, fp),
                       language=lang)


def _grade_answers(sub: Submission, answers: Answers, prepared: PreparedAssignment,
                   worker: WorkerHandle, memo: Memo | None, slots: Slots | None,
                   fp: str) -> SubmissionResult:
    slots = slots or Slots()
    got: dict[str, PartResult] = {}
    for part in prepared.parts:
        try:
            got[part.name] = grade_part(part, answers, prepared.source, worker, memo, slots)
        except (WorkerStartError, OSError, SetupError) as exc:
            error = _("grading stopped: {reason}").format(reason=exc)
        except Exception as exc:  # noqa: BLE001 - a grader bug stays this one's error
            log.exception("grader error on part %s of %s", part.name, sub.origin)
            error = _("internal grader error on part {part} ({error}); please report "
                      "it").format(part=part.name, error=f"{type(exc).__name__}: {exc}")
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

    problem = _static_problem(part, code)
    if problem:
        return PartResult.zero(part.name, part.points, problem, notes=notes)

    def run() -> tuple[JobOutcome, bool]:
        return _run_job(part, part.job(tuple(cells), answer_from), worker, slots)

    if part.part.memoize and memo is not None:  # the worker's outcome, scored for each
        key = (part.name, hashlib.sha256("\0".join(code).encode()).hexdigest())  # language
        outcome, retried = memo.get_or_compute(key, run)[0]
    else:
        outcome, retried = run()
    if retried:
        notes += (_("the grading worker failed once while running this part (not your "
                    "code's fault), so it was run again on a fresh worker"),)
    result = part.score(parse_report(outcome, part.probe_ids, part.limits.timeout_s))
    return replace(result, output=outcome.output, seconds=outcome.seconds, notes=notes)


def _static_problem(part: Prepared, code: tuple[str, ...]) -> str | None:
    """What the answer code shows before it runs that costs the part, or None."""
    decl = part.part
    if not code:
        return _("the answer cell ({cells}) is missing from your notebook: download a fresh "
                 "copy of the exercise and paste your code into its answer cell.").format(
            cells=", ".join(decl.answer_ids))
    imports = [h for c in code for h in static_imports(c, decl.refused_imports)]
    if imports:
        line, module = imports[0]
        return _("Your answer imports {module} (line {line}), which holds the course's "
                 "reference answers, so this part earns no points. Write {name} yourself "
                 "in its answer cell, as in the chapter: it needs only torch.").format(
            module=module, line=line, name=decl.object_name)
    hits = [h for c in code for h in static_library_uses(c, decl.forbidden_names)]
    if hits:
        return decl.library_message([_at_line(name, line) for line, name in hits[:3]])
    switches = [h for c in code for h in static_library_uses(c, RECORDER_SWITCHES)] \
        if decl.forbidden_ops else []
    if switches:
        return _("{name} switches off torch's function hooks ({uses}), which the grader "
                 "uses to see library calls, so this part earns no points. Remove those "
                 "lines: a correct answer needs none of them.").format(
            name=decl.object_name,
            uses=", ".join(_at_line(name, line) for line, name in switches[:3]))
    return None


def _at_line(name: str, line: int) -> str:
    return _("{name} (line {line})").format(name=name, line=line)


def _run_job(part: Prepared, job, worker: WorkerHandle,
             slots: Slots) -> tuple[JobOutcome, bool]:
    """The job's outcome, and whether the worker broke once and it ran again on a fresh
    one (a worker that breaks twice is a ``WorkerStartError``)."""
    retried = False
    with slots.hold(part.limits.threads, gpu=part.uses_gpu):
        outcome = worker.run(job)
        if outcome.worker_failure:  # the worker itself broke: once more, on a fresh one
            log.warning("the worker failed on part %s (%s); running it again on a fresh "
                        "worker", part.name, outcome.worker_failure)
            outcome, retried = worker.run(job), True
    if outcome.worker_failure:
        raise WorkerStartError(f"the worker failed twice on part {part.name}: "
                               f"{outcome.worker_failure}")
    return outcome, retried
