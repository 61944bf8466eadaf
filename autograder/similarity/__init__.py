"""The instructor's similarity report: ``python -m autograder similarity --out DIR
GRADING_OUT`` (or ``grade --similarity DIR``).

It reads a grading output (``results.json`` and the answer cells the grader read,
``answers.json``), takes out the code every student may share (``shared``), fingerprints
each part of each submission (``compare``) and writes ``DIR/similarity.csv`` and
``DIR/similarity.html`` (``report``). Nothing is regraded, and nothing of it reaches a
student: the feedback pages and every export are made without it.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..assignments import COURSE_ROOT, get_assignment
from ..errors import UsageError
from ..export.source import load
from ..export.staging import Staging
from ..output.answers import ANSWERS_JSON
from .compare import Params, find_pairs, fingerprint, shared_hashes
from .report import Report, to_csv, to_html
from .shared import shared_code

__all__ = ["Params", "Report", "similarity", "check_report_folder"]

NO_OWN_CODE = "no answer code of its own (only the release's or the textbook's)"


def _answers(grading_out: Path) -> dict:
    path = grading_out / ANSWERS_JSON
    if not path.is_file():
        raise UsageError(f"{grading_out} has no {ANSWERS_JSON} (it was graded by an older "
                         "grader): run the same grade command again; it reuses every grade "
                         "and records the answer code")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["submissions"]
        if not isinstance(entries, dict):
            raise TypeError("'submissions' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not readable answer data ({exc}); run the same grade "
                         "command again to rewrite it") from None
    return entries


def check_report_folder(grading_out: Path, out: Path) -> None:
    """Refuse (exit 2) a report folder inside the students' feedback folder."""
    feedback = (Path(grading_out) / "feedback").resolve()
    target = Path(out).resolve()
    if target == feedback or feedback in target.parents:
        raise UsageError(f"the report folder {out} is inside the students' feedback folder; "
                         "the report is for the instructor only: choose a folder outside it")


def _codes(run, answers: dict) -> tuple[dict, dict, list]:
    """key -> answer id -> code, key -> student id, and the submissions left out (why)."""
    codes, students, left = {}, {}, []
    for entry in (*run.entries, *run.duplicates):
        result, key = entry.result, entry.result.key or entry.student_id
        on_file = answers.get(key)
        if not isinstance(on_file, dict) or not isinstance(on_file.get("answers"), dict):
            left.append((entry.student_id, result.error or "no answer code on file"))
        elif result.fingerprint and on_file.get("fingerprint") != result.fingerprint:
            left.append((entry.student_id, "its answer code on file is from another version "
                                           "of the file; run grade again"))
        else:
            students[key] = entry.student_id
            codes[key] = {aid: "\n\n".join(str(c) for c in cells)
                          for aid, cells in on_file["answers"].items()
                          if isinstance(cells, list)}
    return codes, students, left


def similarity(grading_out: Path, out: Path, params: Params | None = None,
               course_root: Path = COURSE_ROOT) -> Report:
    """Write the report for ``grading_out`` into ``out``; a ``UsageError`` (exit 2, nothing
    written) when the input is not a grading output with its answer code."""
    grading_out, out, params = Path(grading_out), Path(out), params or Params()
    run = load(grading_out)
    check_report_folder(grading_out, out)
    try:
        assignment = get_assignment(run.assignment)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    codes, students, left = _codes(run, _answers(grading_out))
    sources = shared_code(assignment, course_root)
    shared = shared_hashes([p for s in sources for p in s.pieces], params)
    prints = {key: {aid: fingerprint(code, shared, params) for aid, code in parts.items()}
              for key, parts in codes.items()}
    for key in [k for k, parts in prints.items()
                if sum(fp.coverage for fp in parts.values()) < params.min_chars]:
        left.append((students[key], NO_OWN_CODE))
        del prints[key]
    pairs = find_pairs(prints, params, lambda a, b: students[a] == students[b])
    names = {aid: next(q.name for q in assignment.parts if aid in q.answer_ids)
             for p in assignment.parts for aid in p.answer_ids}  # residual, not its training
    report = Report(run.assignment, tuple(pairs), codes, students, names, len(prints),
                    tuple(left), tuple(s.label for s in sources), params)
    with Staging(out) as staging:
        staging.write("similarity.csv", to_csv(report))
        staging.write("similarity.html", to_html(report))
    return report
