"""answers.json: each submission's answer cells as the grader read them, for the
instructor's similarity report (``python -m autograder similarity``).

Written once per ``grade`` command, after the submissions are read and before any is
graded (a killed run keeps it), to a temporary name and renamed. Entries of earlier
commands stay; a submission read again replaces its entry. Nothing student-facing reads
this file: not the feedback pages, not the exporters.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..intake.notebook import Answers
from ..intake.submissions import Submission
from .folder import atomic_write

__all__ = ["AnswerFile", "ANSWERS_JSON"]

ANSWERS_JSON = "answers.json"
_NOTE = ("The answer cells of each submission, for 'python -m autograder similarity'. For "
         "the instructor only.")


class AnswerFile:
    """``DIR/answers.json``: key -> student id, origin, fingerprint, answer id -> cells."""

    def __init__(self, folder: Path, assignment: str):
        self.path, self.assignment = Path(folder) / ANSWERS_JSON, assignment
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or unreadable: rebuilt from this command's reading
        if isinstance(data, dict) and data.get("assignment") == assignment \
                and isinstance(data.get("submissions"), dict):
            self.entries = data["submissions"]

    def has(self, key: str, fingerprint: str) -> bool:
        entry = self.entries.get(key)
        return isinstance(entry, dict) and entry.get("fingerprint") == fingerprint

    def put(self, sub: Submission, fingerprint: str, answers: Answers | str) -> None:
        """File what ``read_submission`` gave; an unreadable notebook has no entry."""
        if isinstance(answers, str):
            self.changed |= self.entries.pop(sub.key, None) is not None
            return
        self.entries[sub.key] = {"student_id": sub.student_id, "origin": sub.origin,
                                 "fingerprint": fingerprint,
                                 "answers": {aid: list(cells)
                                             for aid, cells in answers.sources.items()}}
        self.changed = True

    def save(self) -> None:
        if self.changed:
            atomic_write(self.path, json.dumps(
                {"assignment": self.assignment, "note": _NOTE, "submissions": self.entries},
                indent=1, ensure_ascii=False))
            self.changed = False
