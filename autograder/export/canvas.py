"""Canvas: ``DIR/canvas_grades.csv`` for the gradebook's CSV import, joined to a roster.

Columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one named
``<assignment name> (<Canvas assignment id>)``; the ``Points Possible`` row comes first.
The roster is Canvas's own gradebook export (``--roster``); a grade joins the row whose
``--roster-key`` column (default ``SIS Login ID``) equals the student id, ignoring case and
surrounding spaces. Students of the roster without a grade, grades without a student and
submissions that were not graded go to stderr and ``DIR/unmatched.csv``; none is dropped
silently. Instructor-facing, so English.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

from ..errors import UsageError
from ..output.results import spreadsheet_safe
from .common import Settings, fmt
from .source import GradingOutput

__all__ = ["COLUMNS", "read_roster", "write"]

COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
_ASSIGNMENT = re.compile(r"^.*\S \((\d+)\)$")
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _decode(path: Path, raw: bytes) -> str:
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise UsageError(f"the roster {path} is {name}-encoded; save it as UTF-8 CSV "
                             "(Canvas's own export is UTF-8) and run the command again")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"the roster {path} is not UTF-8 (byte {exc.start} cannot be "
                         "read: Latin-1 or Windows-1252?); save it as UTF-8 CSV and run "
                         "the command again") from None


def read_roster(path: Path, key: str) -> tuple[list[str], list[dict[str, str]]]:
    """The roster's header and student rows (Canvas's ``Points Possible`` and
    muted/read-only rows skipped), or a ``UsageError``."""
    if not path.is_file():
        raise UsageError(f"no such roster file: {path}")
    rows = list(csv.reader(io.StringIO(_decode(path, path.read_bytes()), newline="")))
    if not rows:
        raise UsageError(f"the roster {path} is empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in (*COLUMNS, key) if c not in header]
    if missing:
        raise UsageError(f"the roster {path} has no column {', '.join(map(repr, missing))}; "
                         f"it has {', '.join(map(repr, header))} (use Canvas's gradebook "
                         "export, or --roster-key to name the column to join on)")
    students = [dict(zip(header, (c.strip() for c in row), strict=False)) for row in rows[1:]
                if row and row[0].strip() not in ("Points Possible", "")]
    _check_unique(path, students, key)
    return header, students


def _check_unique(path: Path, students: list[dict[str, str]], key: str) -> None:
    seen: dict[str, int] = {}
    for s in students:
        k = s.get(key, "").casefold()
        if k:
            seen[k] = seen.get(k, 0) + 1
    dups = sorted(k for k, n in seen.items() if n > 1)
    if dups:
        raise UsageError(f"the roster {path} has duplicate {key!r} values: "
                         f"{', '.join(dups[:10])}{' ...' if len(dups) > 10 else ''}; each "
                         f"student must appear once (or join on another column with "
                         "--roster-key)")


def check_settings(settings: Settings) -> None:
    if settings.roster is None:
        raise UsageError("--format canvas needs --roster FILE (Canvas's gradebook export)")
    if not settings.canvas_assignment or not _ASSIGNMENT.match(settings.canvas_assignment):
        raise UsageError("--format canvas needs --canvas-assignment \"NAME (ID)\", the "
                         "assignment's column as Canvas names it, e.g. \"Assignment 1 "
                         f"(12345)\"; got {settings.canvas_assignment!r}")
    read_roster(settings.roster, settings.roster_key)


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _join(run: GradingOutput, students: list[dict[str, str]], key: str):
    """Grade rows in the roster's order, and every row that could not be joined."""
    entries = {e.student_id.strip().casefold(): e for e in run.entries}
    grades, unmatched, used = [], [], set()
    for s in students:
        entry = entries.get(s.get(key, "").casefold()) if s.get(key) else None
        if entry is None:
            unmatched.append(["student without a grade", "", s["Student"], s.get(key, ""),
                              "", "no graded submission for this student"])
        elif not entry.result.graded:
            used.add(entry.student_id)
            unmatched.append(["not graded", entry.student_id, s["Student"], s[key], "",
                              entry.result.error or ""])
        else:
            used.add(entry.student_id)
            grades.append([s[c] for c in COLUMNS] + [fmt(entry.score)])
    for e in run.entries:
        if e.student_id not in used:
            unmatched.append(["grade without a student", e.student_id, "", "",
                              fmt(e.score) if e.result.graded else "",
                              f"no roster row has {key} = {e.student_id!r}"])
    for d in run.duplicates:
        unmatched.append(["duplicate submission", d.student_id, "", "", "",
                          f"a second file for this id ({d.result.source}); not exported"])
    return grades, unmatched


def write(run: GradingOutput, staging, settings: Settings) -> list[str]:
    _header, students = read_roster(settings.roster, settings.roster_key)
    grades, unmatched = _join(run, students, settings.roster_key)
    points = ["Points Possible", "", "", "", "", fmt(run.full_total)]
    staging.write("canvas_grades.csv", _csv([[*COLUMNS, settings.canvas_assignment],
                                             points, *grades]))
    rows = [[spreadsheet_safe(c) for c in row] for row in unmatched]
    staging.write("unmatched.csv", _csv([["problem", "student_id", "Student",
                                          settings.roster_key, "score", "reason"], *rows]))
    notes = [f"wrote canvas_grades.csv: {len(grades)} grade(s) for "
             f"{settings.canvas_assignment}, out of {fmt(run.full_total)} points"]
    notes += [f"unmatched: {r[0]}: {r[1] or r[2]} ({r[5]})" for r in unmatched]
    if unmatched:
        notes.append(f"{len(unmatched)} unmatched row(s) listed in DIR/unmatched.csv")
    return notes
