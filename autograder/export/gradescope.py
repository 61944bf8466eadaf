"""Gradescope: ``DIR/<student>/results.json`` in Gradescope's autograder schema.

Top level ``score``, ``execution_time``, ``output``, ``visibility``, ``stdout_visibility``,
``tests`` (and ``output_format``, ``extra_data``); each test ``name``, ``number``, ``score``,
``max_score``, ``status`` (``passed``/``failed``), ``output``, ``visibility``, ``tags``. One
test per check, so students see which check failed; checks on hidden inputs get
``Settings.hidden_visibility`` (default ``after_published``), the others
``Settings.visibility``. A part left out of the run is a test of 0 points with the reason.
"""
from __future__ import annotations

import json
from typing import Any

from ..i18n import _, language
from .common import Settings, left_out_reason, summary
from .source import Entry, GradingOutput, check_points, gated

__all__ = ["results_json", "write"]


def _test(number: str, name: str, score: float, max_score: float, passed: bool, output: str,
          visibility: str, tags: list[str]) -> dict[str, Any]:
    return {"name": name, "number": number, "score": score, "max_score": max_score,
            "status": "passed" if passed else "failed", "output": output,
            "visibility": visibility, "tags": tags}


def _part_tests(index: int, part, settings: Settings) -> list[dict[str, Any]]:
    points = check_points(part)
    if not points:  # no checks ran (the part could not run): one test for the part
        return [_test(str(index), part.name, part.score, part.max_score,
                      part.score >= part.max_score, part.feedback, settings.visibility,
                      [part.name])]
    tests = []
    for j, (check, score, max_score) in enumerate(points, 1):
        output = _("Passed") if check.passed else check.message
        if gated(part):
            output += "\n" + part.feedback
        tests.append(_test(f"{index}.{j}", f"{part.name}: {check.name}", score,
                           max_score, check.passed, output,
                           settings.hidden_visibility if check.hidden else settings.visibility,
                           [part.name]))
    return tests


def tests(entry: Entry, settings: Settings) -> list[dict[str, Any]]:
    r = entry.result
    out = [t for i, p in enumerate(r.parts, 1) for t in _part_tests(i, p, settings)]
    for i, p in enumerate(r.left_out, len(r.parts) + 1):
        out.append(_test(str(i), p.name, 0.0, p.max_score, False,
                         _("not graded") + ": " + left_out_reason(p), settings.visibility,
                         [p.name]))
    return out


def results_json(entry: Entry, settings: Settings, run: GradingOutput) -> dict[str, Any]:
    """Gradescope's results.json for one submission, in the submission's language."""
    with language(entry.result.language):
        r = entry.result
        return {"score": entry.score, "execution_time": round(r.seconds, 3),
                "output": summary(entry), "output_format": "text",
                "visibility": settings.visibility,
                "stdout_visibility": settings.stdout_visibility,
                "extra_data": {"student_id": r.student_id, "assignment": run.assignment,
                               "language": r.language, "raw_score": r.total,
                               "max_total": r.max_total, "full_total": r.full_total,
                               "timestamp": entry.timestamp,
                               "late_by_seconds": entry.late_by_seconds,
                               "late_penalty": entry.late_penalty,
                               "isolation": run.isolation.get("method")},
                "tests": tests(entry, settings) if r.graded else []}


def write(run: GradingOutput, staging, settings: Settings) -> list[str]:
    for entry in run.entries:
        data = results_json(entry, settings, run)
        staging.write(f"{entry.folder_name}/results.json",
                      json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return [f"wrote {len(run.entries)} Gradescope result(s): DIR/<student>/results.json"]
