"""The output folder: results.json, grades.csv and feedback pages, written so nothing is lost.

Every file is written to a temporary name in the same folder and renamed over the old one,
so a reader (or a grader killed with -9) only ever sees complete files. results.json is
rewritten after each submission; a later run over the same folder reuses results whose
notebook fingerprint has not changed and replaces the rest, so each submission ends up
recorded exactly once. A lock file stops two graders from sharing one folder.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from ..errors import OutputLockedError
from ..intake.submissions import safe_file_name
from .results import GradingRun, SubmissionResult

__all__ = ["OutputDir", "OutputLockedError", "atomic_write"]


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (same folder)."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class OutputDir:
    """``DIR`` with results.json, grades.csv, feedback/<student>.html and a lock."""

    def __init__(self, path: Path, assignment: str):
        self.path, self.assignment = Path(path), assignment
        self.feedback_dir = self.path / "feedback"
        self.feedback_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(f"{self.path} is in use by another grader; wait for it "
                                    "or choose another --out folder") from None
        for stale in [*self.path.glob(".*.tmp-*"), *self.feedback_dir.glob(".*.tmp-*")]:
            stale.unlink(missing_ok=True)  # left by a run that was killed mid-write
        self.results: dict[str, SubmissionResult] = self._load()

    def _load(self) -> dict[str, SubmissionResult]:
        path = self.path / "results.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
            entries = [SubmissionResult.from_dict(d) for d in data["submissions"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}  # unreadable: regrade everything rather than trust it
        if data.get("assignment") != self.assignment:
            self.close()
            raise OutputLockedError(f"{self.path} holds results of {data.get('assignment')!r}, "
                                    f"not {self.assignment!r}; choose another --out folder")
        return {e.key: e for e in entries}

    def previous(self, key: str, fingerprint: str) -> SubmissionResult | None:
        """An earlier graded result for the same notebook bytes, if its page still exists."""
        old = self.results.get(key)
        if old and old.graded and old.fingerprint == fingerprint \
                and self.feedback_path(old.student_id, old.key).exists():
            return old
        return None

    def feedback_path(self, student_id: str, key: str | None = None) -> Path:
        """feedback/<student>.html; a duplicate of an id already taken (``key`` differs from
        the id) gets a page of its own, so it never replaces the student's real one."""
        name = safe_file_name(student_id)
        if key and key != student_id:
            name += ".duplicate-" + hashlib.sha256(key.encode()).hexdigest()[:10]
        return self.feedback_dir / f"{name}.html"

    def write_feedback(self, student_id: str, html: str, key: str | None = None) -> None:
        atomic_write(self.feedback_path(student_id, key), html)

    def record(self, result: SubmissionResult, run: GradingRun) -> GradingRun:
        """File ``result`` and rewrite results.json and grades.csv; returns the run so far."""
        self.results[result.key] = result
        run = GradingRun(run.assignment, run.part_names, tuple(self.results.values()),
                         run.isolation, run.profile, run.timing)
        self.write(run)
        return run

    def write(self, run: GradingRun) -> None:
        atomic_write(self.path / "results.json", run.to_json())
        atomic_write(self.path / "grades.csv", run.to_csv())

    def close(self) -> None:
        self._lock.close()
        (self.path / ".lock").unlink(missing_ok=True)
