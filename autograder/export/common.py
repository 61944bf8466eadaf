"""What every platform's student-facing text shares: the summary of one submission, in its
language, built from messages of the grader's catalog (``i18n._``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..i18n import _
from ..output.results import LeftOut
from .source import Entry, late_line

__all__ = ["Settings", "summary", "left_out_reason", "fmt"]

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


@dataclass(frozen=True)
class Settings:
    """An ``export`` command's options (see ``cli.py``)."""

    visibility: str = "visible"                 # Gradescope: the result and visible checks
    hidden_visibility: str = "after_published"  # Gradescope: checks on hidden inputs
    stdout_visibility: str = "hidden"
    roster: Path | None = None                  # Canvas: the gradebook export to join to
    roster_key: str = "SIS Login ID"
    canvas_assignment: str | None = None        # Canvas: "Assignment 1 (12345)"


def fmt(x: float) -> str:
    return f"{x:g}"


def left_out_reason(part: LeftOut) -> str:
    """Why a part was not graded, in the current language (as the feedback page says)."""
    if part.kind == "chosen":
        return _("left out with --parts")
    if part.kind == "rests_on" and part.rests_on:
        return _("it rests on {parts}, which was not graded").format(
            parts=", ".join(part.rests_on))
    return (_("the grading machine could not run this part (not a problem with your "
              "code); your instructor has the details:") + " " + part.reason)


def summary(entry: Entry, parts: bool = True) -> str:
    """The submission's result in a few lines: total, late penalty, parts, parts left out."""
    r = entry.result
    if not r.graded:
        return "\n".join([_("This submission could not be graded"), r.error or "",
                          _("Fix the problem and submit again, or ask your instructor.")])
    lines = [_("Total: {score} out of {max}").format(score=fmt(r.total), max=fmt(r.max_total))]
    late = late_line(entry)
    if late:
        lines += [late, _("Score after the late penalty: {score} out of {max}").format(
            score=fmt(entry.score), max=fmt(r.max_total))]
    if parts:
        lines += [_("{part}: {score} out of {max}").format(
            part=p.name, score=fmt(p.score), max=fmt(p.max_score)) + " - " + p.feedback
            for p in r.parts]
    if r.left_out:
        lines.append(_("The total covers the parts graded in this run. Not graded:"))
        lines += ["- " + _("{part} ({points} points): {reason}").format(
            part=p.name, points=fmt(p.max_score), reason=left_out_reason(p))
            for p in r.left_out]
    return "\n".join(lines)
