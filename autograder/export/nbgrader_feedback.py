"""nbgrader: feedback in its course layout, ``DIR/feedback/<student>/<assignment>/
<notebook>.html`` with ``timestamp.txt`` and ``submission_secret.txt``, so ``nbgrader
release_feedback`` (instructor) and ``fetch_feedback`` (student) hand each page back
through the exchange.

nbgrader 0.9 files a student's feedback under a hash of the submission's secret (written by
``nbgrader submit``, brought in by ``collect``), which is copied from beside the graded
notebook; the student's copy lands in a folder named by the timestamp, which is the
submission's own: nbgrader's ``timestamp.txt`` beside the graded notebook (its
``submitted/`` layout), else the entry's ``timestamp``, else (with a warning) now.
``DIR`` is the course folder (nbgrader's ``CourseDirectory.root``).
"""
from __future__ import annotations

import shutil
from html import escape

from ..i18n import language
from .common import Settings
from .source import Entry, GradingOutput, beside, late_line, nbgrader_timestamp

__all__ = ["notebook_name", "page", "write", "SECRET"]

SECRET = "submission_secret.txt"  # nbgrader 0.9 finds the feedback by a hash of it


def notebook_name(assignment: str) -> str:
    """The notebook's name without ``.ipynb``: nbgrader names the feedback page after it."""
    from ..assignments import ASSIGNMENTS

    known = ASSIGNMENTS.get(assignment)
    return known.notebook.removesuffix(".ipynb") if known else assignment


def page(entry: Entry) -> str:
    """The grader's feedback page, with the late penalty said after its heading."""
    html = entry.page.read_text(encoding="utf-8")
    with language(entry.result.language):
        late = late_line(entry)
    if late and "</h1>" in html:
        html = html.replace("</h1>", f'</h1>\n<p class="late"><strong>{escape(late)}'
                                     "</strong></p>", 1)
    return html


def write(run: GradingOutput, staging, settings: Settings) -> list[str]:
    notebook, notes, written = notebook_name(run.assignment), [], 0
    bases = (staging.dest.absolute(), run.path.absolute().parent)
    for entry in run.entries:
        if not entry.page.is_file():
            notes.append(f"no feedback page for {entry.student_id} ({entry.page}); skipped")
            continue
        if not entry.timestamp and not beside(entry, "timestamp.txt", bases):
            notes.append(f"{entry.student_id}: no submission time (nbgrader's timestamp.txt "
                         "or 'timestamp'); used now, so fetch_feedback will not match it to "
                         "the student's submission")
        folder = f"feedback/{entry.folder_name}/{run.assignment}"
        staging.piece(folder).mkdir()
        (staging.root / folder / f"{notebook}.html").write_text(page(entry), encoding="utf-8")
        (staging.root / folder / "timestamp.txt").write_text(nbgrader_timestamp(entry, bases),
                                                             encoding="utf-8")
        secret = beside(entry, SECRET, bases)
        if secret:
            shutil.copyfile(secret, staging.root / folder / SECRET)
        else:
            notes.append(f"{entry.student_id}: no {SECRET} beside the graded notebook (it "
                         "comes with nbgrader collect's submitted/ folder); nbgrader 0.9's "
                         "release_feedback needs it")
        written += 1
    notes.append(f"wrote {written} nbgrader feedback page(s): DIR/feedback/<student>/"
                 f"{run.assignment}/{notebook}.html")
    return notes
