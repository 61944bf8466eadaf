"""Grading results as frozen dataclasses, with their JSON and CSV forms.

``results.json`` has the documented shape::

    {"assignment": ID, "submissions": [{"student_id", "total", "max_total",
      "parts": [{"name", "score", "max_score", "feedback"}], "error"}]}

plus extra keys that never rename those: ``isolation``, ``profile`` and ``timing`` at the
top, ``checks``, ``seconds`` and ``fingerprint`` inside entries.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ..i18n import DEFAULT, _, ngettext
from ..late import NO_TIME

__all__ = ["Figure", "CheckResult", "PartResult", "LeftOut", "SubmissionResult", "GradingRun",
           "spreadsheet_safe"]


@dataclass(frozen=True)
class Figure:
    """A picture for the feedback page (PNG bytes) and the words that stand in for it."""

    png: bytes = field(repr=False)
    alt: str


@dataclass(frozen=True)
class CheckResult:
    """One check of a part: its share of the points and what the student should know."""

    name: str
    passed: bool
    weight: float
    message: str
    hidden: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "weight": self.weight,
                "message": self.message, "hidden": self.hidden}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CheckResult":
        return cls(d["name"], d["passed"], d["weight"], d["message"], d.get("hidden", False))


@dataclass(frozen=True)
class PartResult:
    """A graded part: score out of ``max_score``, a summary line and its checks."""

    name: str
    score: float
    max_score: float
    feedback: str
    checks: tuple[CheckResult, ...] = ()
    output: str = ""               # what the student's code printed (capped), for the page
    seconds: float = 0.0
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()    # how the answer cells were found (copies, magics, ...)

    @classmethod
    def from_checks(cls, name: str, max_score: float, checks: list[CheckResult],
                    summary: str = "", **extra: Any) -> "PartResult":
        """Score = max_score x (weight of passed checks / all weight), to 4 decimals."""
        total = sum(c.weight for c in checks)
        won = sum(c.weight for c in checks if c.passed)
        score = round(max_score * won / total, 4) if total else 0.0
        if not summary:
            failed = [c for c in checks if not c.passed]
            summary = (ngettext("All {n} check passed.", "All {n} checks passed.",
                                len(checks)).format(n=len(checks)) if not failed else
                       _("{passed} of {n} checks passed. First problem ({check}): "
                         "{message}").format(passed=len(checks) - len(failed), n=len(checks),
                                             check=failed[0].name, message=failed[0].message))
        return cls(name, score, max_score, summary, tuple(checks), **extra)

    @classmethod
    def zero(cls, name: str, max_score: float, feedback: str, **extra: Any) -> "PartResult":
        return cls(name, 0.0, max_score, feedback, **extra)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "max_score": self.max_score,
                "feedback": self.feedback, "checks": [c.to_dict() for c in self.checks],
                "notes": list(self.notes), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PartResult":
        return cls(d["name"], d["score"], d["max_score"], d["feedback"],
                   tuple(CheckResult.from_dict(c) for c in d.get("checks", [])),
                   seconds=d.get("seconds", 0.0), notes=tuple(d.get("notes", ())))


@dataclass(frozen=True)
class LeftOut:
    """A part of the assignment this run did not grade, its points, and why: ``reason`` in
    English for the instructor; ``kind`` ("setup": it cannot run here, "chosen": --parts
    left it out, "rests_on": it rests on the parts in ``rests_on``) lets the feedback page
    say it in the student's language."""

    name: str
    max_score: float
    reason: str
    kind: str = "setup"
    rests_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "max_score": self.max_score, "reason": self.reason,
                "kind": self.kind, "rests_on": list(self.rests_on)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LeftOut":
        return cls(d["name"], d["max_score"], d["reason"], d.get("kind", "setup"),
                   tuple(d.get("rests_on", ())))


@dataclass(frozen=True)
class SubmissionResult:
    """Everything about one student's submission; ``error`` is set when it was not graded."""

    student_id: str
    parts: tuple[PartResult, ...]
    max_total: float
    error: str | None = None
    source: str = ""
    fingerprint: str = ""
    seconds: float = 0.0

    key: str = ""                  # where it is filed in results.json (see Submission.key)
    left_out: tuple[LeftOut, ...] = ()   # parts not graded: max_total leaves them out
    language: str = DEFAULT        # the language of its messages and feedback page
    graded_by: str | None = None   # the Dask worker that graded it; None: this machine
    timestamp: str | None = None   # when it was handed in (ISO 8601), where that is known
    timestamp_source: str = ""     # where that time came from
    late_by_seconds: float | None = None   # after the due time (negative: early); None: no
    late_penalty: float = 0.0      # points off the total (nbgrader's late_submission_penalty)

    @property
    def score(self) -> float:
        """The total less the late penalty."""
        return round(max(0.0, self.total - self.late_penalty), 4)

    @property
    def full_total(self) -> float:
        """The assignment's full total, the parts left out included."""
        return round(self.max_total + sum(p.max_score for p in self.left_out), 4)

    @property
    def total(self) -> float:
        return round(sum(p.score for p in self.parts), 4)

    @property
    def graded(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"student_id": self.student_id, "total": self.total, "max_total": self.max_total,
                "parts": [p.to_dict() for p in self.parts], "error": self.error,
                "source": self.source, "fingerprint": self.fingerprint,
                "seconds": self.seconds, "key": self.key, "full_total": self.full_total,
                "not_graded": [p.to_dict() for p in self.left_out],
                "language": self.language, "graded_by": self.graded_by,
                "timestamp": self.timestamp, "timestamp_source": self.timestamp_source,
                "late_by_seconds": self.late_by_seconds, "late_penalty": self.late_penalty,
                "score": self.score}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SubmissionResult":
        return cls(d["student_id"], tuple(PartResult.from_dict(p) for p in d["parts"]),
                   d["max_total"], d.get("error"), d.get("source", ""),
                   d.get("fingerprint", ""), d.get("seconds", 0.0),
                   d.get("key") or d["student_id"],
                   tuple(LeftOut.from_dict(p) for p in d.get("not_graded", ())),
                   d.get("language", DEFAULT), d.get("graded_by"), *_late_fields(d))


def _late_fields(d: dict[str, Any]) -> tuple:
    """timestamp, its source, late_by_seconds and late_penalty as results.json holds them;
    a value of the wrong type (a hand-edited file) counts as absent."""
    stamp, source = d.get("timestamp"), d.get("timestamp_source")
    late, points = d.get("late_by_seconds"), d.get("late_penalty")
    number = (int, float)
    return (stamp if isinstance(stamp, str) and stamp else None,
            source if isinstance(source, str) else "",
            float(late) if isinstance(late, number) and not isinstance(late, bool) else None,
            float(points) if isinstance(points, number) and not isinstance(points, bool)
            and points > 0 else 0.0)


@dataclass(frozen=True)
class GradingRun:
    """One ``grade`` command's results over all its submissions."""

    assignment: str
    part_names: tuple[str, ...]
    submissions: tuple[SubmissionResult, ...]
    isolation: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[SubmissionResult]:
        return [s for s in self.submissions if not s.graded]

    def to_dict(self) -> dict[str, Any]:
        return {"assignment": self.assignment,
                "submissions": [s.to_dict() for s in self.submissions],
                "isolation": self.isolation, "profile": self.profile, "timing": self.timing}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """student_id, one column per part, total, max_total; ungraded rows leave scores empty.
        When a part was not graded, two more columns: the assignment's ``full_total`` and
        ``not_graded`` (each part left out, with the reason); its own column stays empty.
        With a due time: ``timestamp``, ``late_by_seconds``, ``late_penalty`` and ``score``
        (the total less the penalty).

        One row per student: a second file claiming an id already taken (a duplicate) is
        listed in results.json only, so importing the CSV can never blank a real grade.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        left = any(s.left_out for s in self.submissions)
        # with a due time (--due): every submission is checked, so the columns appear
        late = any(s.late_by_seconds is not None or s.timestamp_source == NO_TIME
                   for s in self.submissions)
        extra = ["full_total", "not_graded"] if left else []
        extra += ["timestamp", "late_by_seconds", "late_penalty", "score"] if late else []
        writer.writerow(["student_id", *self.part_names, "total", "max_total", *extra])
        for s in self.submissions:
            if s.key and s.key != s.student_id:
                continue
            scores = {p.name: p.score for p in s.parts}
            row = [scores.get(n, "") for n in self.part_names] if s.graded else \
                [""] * len(self.part_names)
            notes = [s.full_total, "; ".join(f"{p.name}: {p.reason}" for p in s.left_out)]
            times = [s.timestamp or "", "" if s.late_by_seconds is None else
                     round(s.late_by_seconds), s.late_penalty, s.score if s.graded else ""]
            writer.writerow([spreadsheet_safe(s.student_id), *row,
                             s.total if s.graded else "", s.max_total,
                             *(notes if left else []), *(times if late else [])])
        return out.getvalue()


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ or a control character
    would be run as a formula (a student picks their file name), so it gets a leading '."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
