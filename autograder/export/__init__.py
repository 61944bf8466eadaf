"""Exports of an existing grading output into the course platforms' files, without
regrading: one module per platform (``gradescope``, ``prairielearn``, ``canvas``,
``nbgrader_feedback``), each a ``write(run, staging, settings)`` that reads the plain data
of ``source.load`` and writes through ``staging.Staging`` (nothing half-written). The
Gradescope autograder zip is ``bundle.py``; what its ``run_autograder`` runs is
``gradescope_run.py``."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from . import canvas, gradescope, nbgrader_feedback, prairielearn
from .common import VISIBILITIES, Settings
from .source import load
from .staging import Staging

__all__ = ["FORMATS", "VISIBILITIES", "Settings", "export"]

FORMATS = {"gradescope": gradescope.write, "prairielearn": prairielearn.write,
           "canvas": canvas.write, "nbgrader": nbgrader_feedback.write}


def export(fmt: str, grading_out: Path, out: Path, settings: Settings) -> list[str]:
    """Write ``fmt``'s files for the grading output into ``out``; returns notes for the
    instructor (stderr). Every input is checked before anything is written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for name, value in (("--visibility", settings.visibility),
                        ("--hidden-visibility", settings.hidden_visibility)):
        if value not in VISIBILITIES:
            raise UsageError(f"{name} must be one of {', '.join(VISIBILITIES)}; got {value!r}")
    run = load(grading_out)
    if fmt == "canvas":
        canvas.check_settings(settings)
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    with Staging(Path(out)) as staging:
        notes = FORMATS[fmt](run, staging, settings)
    if run.duplicates and fmt != "canvas":
        notes.append(f"{len(run.duplicates)} duplicate submission(s) not exported: "
                     + ", ".join(d.student_id for d in run.duplicates))
    return notes
