"""Which assignments the grader knows, where their source notebooks are, and their parts.

To add a part, write its ``Part`` subclass in ``parts/`` and list an instance here; its
points come from the source notebook's test cell with the same grade_id.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .parts import Corr2d, Part, Pool2d, Residual, ResidualTraining

__all__ = ["Assignment", "ASSIGNMENTS", "COURSE_ROOT", "get_assignment"]

COURSE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Assignment:
    """An assignment: its id, its source notebook and the parts graded in it."""

    id: str
    notebook: str                       # file name inside solutions/<id>/
    setup_ids: tuple[str, ...]          # locked source cells every part runs first
    parts: tuple[Part, ...]
    languages: tuple[str, ...] = ()     # translations released beside the English notebook

    def __post_init__(self) -> None:
        names = {p.name for p in self.parts}
        for part in self.parts:  # the checks a part rests on are graded beside it
            missing = [name for name, _ in part.requires if name not in names]
            if missing:
                raise ValueError(f"{self.id}: part {part.name} rests on {missing}, which "
                                 f"this assignment does not grade")

    def source_path(self, course_root: Path = COURSE_ROOT) -> Path:
        return course_root / "solutions" / self.id / self.notebook

    def release_path(self, language: str = "en", course_root: Path = COURSE_ROOT) -> Path:
        """The student notebook: exercises/<id>/<notebook>, a translation in <id>/<lang>/
        (the same file name, so nbgrader and the grader take it as the same assignment)."""
        folder = course_root / "exercises" / self.id
        return (folder if language == "en" else folder / language) / self.notebook


ASSIGNMENTS: dict[str, Assignment] = {
    "assignment1": Assignment("assignment1", "assignment1.ipynb", ("setup",),
                              (Corr2d(), Pool2d(), Residual(), ResidualTraining()),
                              languages=("ko",)),
}


def get_assignment(assignment_id: str) -> Assignment:
    try:
        return ASSIGNMENTS[assignment_id]
    except KeyError:
        known = ", ".join(sorted(ASSIGNMENTS))
        raise KeyError(f"unknown assignment {assignment_id!r}; known: {known}") from None
