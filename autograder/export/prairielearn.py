"""PrairieLearn: ``DIR/<student>/results.json`` as its external grader reads it.

``gradable``, ``score`` (0 to 1: points after any late penalty over the assignment's full
total), ``message``, ``output``, ``tests`` (``name``, ``description``, ``points``,
``max_points``, ``message``, ``output``) and ``images`` (the training-curve PNG of the
feedback page as a data URL with a ``label``). PrairieLearn refuses a results file over
1 MB: pictures that do not fit are left out (the message says so), then the output is cut.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from ..i18n import _, language
from .common import Settings, left_out_reason, summary
from .source import Entry, GradingOutput, check_points, gated

__all__ = ["results_json", "write", "LIMIT_BYTES"]

LIMIT_BYTES = 1_000_000


def _tests(entry: Entry) -> list[dict[str, Any]]:
    out = []
    for part in entry.result.parts:
        points = check_points(part)
        if not points:
            out.append({"name": part.name, "description": part.feedback,
                        "points": part.score, "max_points": part.max_score,
                        "message": part.feedback, "output": part.output})
        for check, score, max_score in points:
            kind = _("(hidden cases)") if check.hidden else _("(worked example)")
            message = _("Passed") if check.passed else check.message
            if gated(part):
                message += "\n" + part.feedback
            out.append({"name": f"{part.name}: {check.name}",
                        "description": f"{part.name} {kind}", "points": score,
                        "max_points": max_score, "message": message, "output": ""})
    for p in entry.result.left_out:
        out.append({"name": p.name, "description": _("not graded"), "points": 0.0,
                    "max_points": p.max_score, "message": left_out_reason(p), "output": ""})
    return out


def _images(entry: Entry) -> list[dict[str, str]]:
    return [{"label": alt, "url": "data:image/png;base64," + base64.b64encode(png).decode()}
            for png, alt in entry.figures()]


def results_json(entry: Entry, run: GradingOutput) -> dict[str, Any]:
    """PrairieLearn's results.json for one submission, in its language, under 1 MB."""
    with language(entry.result.language):
        r = entry.result
        full = r.full_total or r.max_total
        data = {"gradable": r.graded,
                "score": round(entry.score / full, 4) if r.graded and full else 0.0,
                "message": summary(entry, parts=False), "output": summary(entry),
                "tests": _tests(entry) if r.graded else [], "images": _images(entry)}
        if not r.graded:
            data["format_errors"] = [r.error or ""]
        return _fit(data)


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, ensure_ascii=False).encode("utf-8"))


def _fit(data: dict[str, Any]) -> dict[str, Any]:
    """Leave out pictures, then cut the output, until the file is under the limit."""
    while data["images"] and _size(data) > LIMIT_BYTES:
        data["images"].pop()
        note = _("A picture was left out: the results would exceed PrairieLearn's 1 MB "
                 "limit. Your instructor has the full feedback page.")
        if note not in data["message"]:
            data["message"] += "\n" + note
    excess = _size(data) - LIMIT_BYTES
    if excess > 0:
        data["output"] = data["output"][:max(0, len(data["output"]) - excess - 100)]
    return data


def write(run: GradingOutput, staging, settings: Settings) -> list[str]:
    for entry in run.entries:
        staging.write(f"{entry.folder_name}/results.json",
                      json.dumps(results_json(entry, run), ensure_ascii=False) + "\n")
    return [f"wrote {len(run.entries)} PrairieLearn result(s): DIR/<student>/results.json"]
