"""An existing grading output read back as plain data, for the platform exporters.

A grading output is the folder ``python -m autograder grade --out`` wrote: ``results.json``
(read back with ``GradingRun``'s ``from_dict`` pieces) and ``feedback/<student>.html``.
Nothing is regraded. Anything else is refused with a ``UsageError`` (exit 2) before a
file is written.

Late submissions: ``timestamp``, ``late_by_seconds`` and ``late_penalty`` come with each
``SubmissionResult`` (``autograder/late.py``); ``late_penalty`` is in points, taken off
``total`` as nbgrader's ``late_submission_penalty`` is taken off ``raw_score``. None of the
three is required.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import unescape
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..intake.submissions import safe_file_name
from ..late import nbgrader_time
from ..output.results import CheckResult, PartResult, SubmissionResult

__all__ = ["Entry", "GradingOutput", "load", "late_line", "nbgrader_timestamp", "beside",
           "check_points", "gated"]

_REQUIRED = ("student_id", "parts", "max_total")
_FIGURE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')


@dataclass(frozen=True)
class Entry:
    """One submission of the output: its result, its feedback page and its late data."""

    result: SubmissionResult
    page: Path
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def timestamp(self) -> str | None:
        return self.result.timestamp

    @property
    def late_by_seconds(self) -> float | None:
        return self.result.late_by_seconds

    @property
    def late_penalty(self) -> float:
        return self.result.late_penalty

    @property
    def student_id(self) -> str:
        return self.result.student_id

    @property
    def folder_name(self) -> str:
        return safe_file_name(self.result.student_id)

    @property
    def score(self) -> float:
        """The total after the late penalty (never below zero); 0 when not graded."""
        return self.result.score if self.result.graded else 0.0

    def figures(self) -> list[tuple[bytes, str]]:
        """The pictures embedded in the feedback page (the training curves): PNG, alt."""
        if not self.page.is_file():
            return []
        html = self.page.read_text(encoding="utf-8", errors="replace")
        return [(base64.b64decode(data), unescape(alt)) for data, alt in _FIGURE.findall(html)]


@dataclass(frozen=True)
class GradingOutput:
    path: Path
    assignment: str
    entries: tuple[Entry, ...]
    duplicates: tuple[Entry, ...]   # a second file claiming an id already taken
    isolation: dict[str, Any] = field(default_factory=dict)

    @property
    def full_total(self) -> float:
        totals = [e.result.full_total for e in self.entries if e.result.graded]
        return max(totals) if totals else max((e.result.full_total for e in self.entries),
                                              default=0.0)


def _not_output(path: Path, why: str) -> UsageError:
    return UsageError(f"{path} is not a grading output ({why}); pass the --out folder of "
                      "'python -m autograder grade'")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise _not_output(path, "no such folder" if not path.exists() else "not a folder")
    results = path / "results.json"
    if not results.is_file():
        raise _not_output(path, "it has no results.json")
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_output(path, f"results.json is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("assignment"), str) \
            or not isinstance(data.get("submissions"), list):
        raise _not_output(path, "results.json lacks 'assignment' or a 'submissions' list")
    if not (path / "feedback").is_dir():
        raise _not_output(path, "it has no feedback/ folder")
    return data


def _entry(path: Path, raw: Any, index: int) -> Entry:
    if not isinstance(raw, dict) or any(k not in raw for k in _REQUIRED):
        raise _not_output(path, f"submission {index} of results.json lacks "
                                f"{', '.join(_REQUIRED)}")
    try:
        result = SubmissionResult.from_dict(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _not_output(path, f"submission {index} of results.json is malformed: "
                                f"{exc!r}") from None
    return Entry(result, _page(path, result), raw)


def _page(path: Path, result: SubmissionResult) -> Path:
    """feedback/<student>.html as ``output.folder.OutputDir.feedback_path`` names it."""
    from ..output.folder import OutputDir

    return OutputDir.feedback_path(_FakeDir(path), result.student_id, result.key)


class _FakeDir:
    """Just what ``OutputDir.feedback_path`` reads, without taking the folder's lock."""

    def __init__(self, path: Path):
        self.feedback_dir = path / "feedback"


def load(path: Path) -> GradingOutput:
    """The grading output at ``path``, or a ``UsageError`` saying why it is not one."""
    path = Path(path)
    data = _read_json(path)
    entries = [_entry(path, raw, i) for i, raw in enumerate(data["submissions"])]
    main = tuple(e for e in entries if not e.result.key or e.result.key == e.student_id)
    dups = tuple(e for e in entries if e not in main)
    isolation = data.get("isolation") if isinstance(data.get("isolation"), dict) else {}
    return GradingOutput(path, data["assignment"], main, dups, isolation)


def late_line(entry: Entry) -> str | None:
    """The student's sentence on lateness, in the current language, or None."""
    from ..i18n import _

    if not entry.late_penalty and not (entry.late_by_seconds or 0) > 0:
        return None  # on time, early, or no due time
    hours = (entry.late_by_seconds or 0) / 3600
    if entry.late_penalty:
        return _("Submitted {hours:.1f} hours after the due date: {penalty} points off "
                 "(late penalty).").format(hours=hours, penalty=f"{entry.late_penalty:g}")
    return _("Submitted {hours:.1f} hours after the due date; no points taken off.").format(
        hours=hours)


def nbgrader_timestamp(entry: Entry, bases: tuple[Path, ...] = (),
                       now: datetime | None = None) -> str:
    """The submission's time as nbgrader writes timestamp.txt (UTC, microseconds)."""
    exact = _timestamp_beside(entry, bases)  # nbgrader matches feedback on this very string
    if exact:
        return exact
    stamp = entry.timestamp
    if stamp:
        when = nbgrader_time(stamp)  # ISO 8601 as results.json writes it, or nbgrader's
        if when is not None:
            return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S.%f %Z")


def beside(entry: Entry, name: str, bases: tuple[Path, ...] = ()) -> Path | None:
    """The file ``name`` beside the graded notebook (nbgrader's submitted/ layout keeps
    timestamp.txt and submission_secret.txt there). A relative source is tried against the
    working folder, then each of ``bases`` (the course folder)."""
    if not entry.result.source:
        return None
    source = Path(entry.result.source)
    for base in (Path.cwd(), *bases) if not source.is_absolute() else (Path("/"),):
        path = base / source.parent / name
        if path.is_file():
            return path
    return None


def _timestamp_beside(entry: Entry, bases: tuple[Path, ...] = ()) -> str | None:
    """nbgrader's timestamp.txt beside the graded notebook, as it is written."""
    stamp = beside(entry, "timestamp.txt", bases)
    return (stamp.read_text(encoding="utf-8", errors="replace").strip() or None) if stamp \
        else None


def check_points(part: PartResult) -> list[tuple[CheckResult, float, float]]:
    """Each check of a part with its points and its share of the part's points. The shares
    add up to the part's score even when a gate zeroed it (``Part.gate``): then the passed
    checks are scaled down with it, so the tests' sum is the grade."""
    weight = sum(c.weight for c in part.checks)
    if not weight:
        return []
    shares = [part.max_score * c.weight / weight for c in part.checks]
    won = sum(s for s, c in zip(shares, part.checks, strict=True) if c.passed)
    scale = part.score / won if won else 0.0
    return [(c, round(s * scale, 4) if c.passed else 0.0, round(s, 4))
            for c, s in zip(part.checks, shares, strict=True)]


def gated(part: PartResult) -> bool:
    """True when the part's score is less than its passed checks are worth (a gate)."""
    return any(c.passed for c in part.checks) and abs(
        sum(p for _c, p, _m in check_points(part)) - sum(
            m for c, _p, m in check_points(part) if c.passed)) > 1e-3
