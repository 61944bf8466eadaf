"""Grades into nbgrader's gradebook, so ``nbgrader export`` and formgrader see them.

The assignment, its notebook and one grade cell per part (max score = the source's points)
are created as nbgrader's own ``generate_assignment`` would; each graded submission then
sets the auto score of its grades. nbgrader keys grades by (assignment, notebook, cell,
student), so grading again updates the same rows and never adds new ones.
"""
from __future__ import annotations

import warnings
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from .results import SubmissionResult

__all__ = ["GradebookWriter", "default_url", "COURSE_ID"]

COURSE_ID = "cnn-course"  # the same as CourseDirectory.course_id in nbgrader_config.py


@lru_cache(maxsize=None)
def _alembic_head() -> str:
    """The schema version nbgrader stamps on a new gradebook, asked of alembic in-process.

    nbgrader finds it by running the ``alembic`` command, which must then be on PATH and
    costs a second Python start; the answer is the same.
    """
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def default_url(out_dir: Path) -> str:
    """The default gradebook: ``DIR/gradebook.db`` next to results.json."""
    return f"sqlite:///{Path(out_dir).resolve() / 'gradebook.db'}"


class GradebookWriter:
    """An open nbgrader gradebook, set up for one assignment's parts."""

    def __init__(self, url: str, assignment: str, notebook: str,
                 grade_cells: dict[str, float], solution_cells: tuple[str, ...] = ()):
        from nbgrader import api
        from nbgrader.api import Gradebook, MissingEntry

        self._missing = MissingEntry
        api.get_alembic_version = _alembic_head
        self.gb = Gradebook(url, COURSE_ID)
        self.assignment, self.notebook = assignment, notebook
        self.gb.update_or_create_assignment(assignment)
        try:
            self.gb.find_notebook(notebook, assignment)
        except MissingEntry:
            self.gb.add_notebook(notebook, assignment)
        for name, points in grade_cells.items():
            self.gb.update_or_create_grade_cell(name, notebook, assignment, max_score=points,
                                                cell_type="code")
        for name in solution_cells:
            self.gb.update_or_create_solution_cell(name, notebook, assignment)
        self.grade_cells = dict(grade_cells)

    def record(self, result: SubmissionResult, part_cells: dict[str, str]) -> None:
        """Set the auto scores of one graded submission; ``part_cells`` maps part -> cell."""
        if not result.graded:
            return
        self.gb.update_or_create_student(result.student_id)
        when = {}
        if result.timestamp:  # nbgrader keeps times as naive UTC
            stamp = datetime.fromisoformat(result.timestamp).astimezone(timezone.utc)
            when = {"timestamp": stamp.replace(tzinfo=None)}
        with warnings.catch_warnings():  # nbgrader's own add_submission trips SQLAlchemy notes
            warnings.simplefilter("ignore")
            self.gb.update_or_create_submission(self.assignment, result.student_id, **when)
        notebook = self.gb.find_submission_notebook(self.notebook, self.assignment,
                                                    result.student_id)
        notebook.late_submission_penalty = result.late_penalty or None
        for part in result.parts:
            grade = self._grade(part_cells[part.name], result.student_id)
            grade.auto_score = part.score
            grade.needs_manual_grade = False
        self.gb.db.commit()

    def _grade(self, cell: str, student: str):
        try:
            return self.gb.find_grade(cell, self.notebook, self.assignment, student)
        except self._missing:  # a part added after this student's first grading
            from nbgrader.api import Grade

            notebook = self.gb.find_submission_notebook(self.notebook, self.assignment, student)
            grade_cell = self.gb.find_grade_cell(cell, self.notebook, self.assignment)
            grade = Grade(cell_id=grade_cell.id, notebook=notebook)
            self.gb.db.add(grade)
            return grade

    def close(self) -> None:
        self.gb.close()
