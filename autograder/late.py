"""Late submissions: when each one came in, how late it is, and what that costs.

Times come from, in this order: ``--timestamps FILE`` (CSV ``student_id,timestamp``),
nbgrader's ``timestamp.txt`` beside the notebook in its ``submitted/`` layout, and the time
stored in an LMS bulk download's zip entry (zip files keep no time zone: read as UTC, and
said so). ``--due`` with ``--late-policy``: ``none`` (record only), ``zero`` (a late
submission scores 0) or ``per-day:P`` (P % of the score off per started day), as nbgrader's
``LateSubmissionPlugin`` does for the first two. The penalty is points off the total, as in
nbgrader's gradebook (``late_submission_penalty``). A submission without a readable time is
reported and not penalised, never taken as on time without a word.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import UsageError

__all__ = ["LatePolicy", "parse_policy", "parse_time", "read_timestamps", "nbgrader_time",
           "penalty", "FROM_FILE", "FROM_NBGRADER", "FROM_ZIP", "NO_TIME"]

FROM_FILE, FROM_NBGRADER, FROM_ZIP = "--timestamps", "nbgrader timestamp.txt", "zip entry"
NO_TIME = "none found"   # --due was given but no time is known for this submission


@dataclass(frozen=True)
class LatePolicy:
    kind: str = "none"        # "none", "zero" or "per-day"
    percent: float = 0.0      # per started day, for "per-day"

    def __str__(self) -> str:
        return f"per-day:{self.percent:g}" if self.kind == "per-day" else self.kind


def parse_policy(text: str) -> LatePolicy:
    if text in ("none", "zero"):
        return LatePolicy(text)
    kind, _, value = text.partition(":")
    try:
        percent = float(value)
    except ValueError:
        percent = -1.0
    if kind != "per-day" or not 0 < percent <= 100:
        raise UsageError(f"--late-policy {text!r}: none, zero or per-day:PERCENT (a number "
                         "from 0 to 100, the share of the score taken off per started day)")
    return LatePolicy("per-day", percent)


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time with its time zone (a time without one is ambiguous: refused)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not an ISO 8601 time, e.g. "
                         "2026-12-01T23:59:00+09:00") from None
    if value.tzinfo is None:
        raise UsageError(f"{what}: {text!r} has no time zone; add one, e.g. +09:00 or Z")
    return value


def read_timestamps(path: Path, now: datetime | None = None) -> dict[str, datetime]:
    """``student_id,timestamp`` rows (a header row is allowed); refused whole on any bad
    row, a repeated student, or a time in the future."""
    now = now or datetime.now(timezone.utc)
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--timestamps {path}: cannot be read as UTF-8 CSV ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["student_id", "timestamp"]:
        rows = rows[1:]
    times: dict[str, datetime] = {}
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2 or not row[0].strip():
            raise UsageError(f"--timestamps {path}, row {number}: expected "
                             "student_id,timestamp")
        student, when = row[0].strip(), parse_time(row[1], f"--timestamps {path}, row {number}")
        if student in times:
            raise UsageError(f"--timestamps {path}: {student} appears twice")
        if when > now:
            raise UsageError(f"--timestamps {path}, row {number}: {row[1].strip()} is in the "
                             "future")
        times[student] = when
    return times


def nbgrader_time(text: str) -> datetime | None:
    """nbgrader's ``timestamp.txt`` (``%Y-%m-%d %H:%M:%S.%f %Z``, UTC; ISO also read)."""
    text = text.strip()
    for pattern in ("%Y-%m-%d %H:%M:%S.%f %Z", "%Y-%m-%d %H:%M:%S %Z"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def penalty(total: float, late_by_seconds: float, policy: LatePolicy) -> float:
    """Points off ``total`` for a submission ``late_by_seconds`` after the due time."""
    if late_by_seconds <= 0 or policy.kind == "none":
        return 0.0
    if policy.kind == "zero":
        return round(total, 4)
    days = math.ceil(late_by_seconds / 86400)
    return round(min(total, total * policy.percent / 100 * days), 4)
