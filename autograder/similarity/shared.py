"""Code that every student may hand in without copying from anyone: it never counts.

- the release notebook of the assignment, in every language (the stubs and set-up code
  every student starts from);
- the book's chapters (each defines its own ``corr2d``, ``pool2d`` and ``Residual``);
- the course's package ``cnncourse`` (the textbook's reference code);
- d2l's library (``d2l/torch.py``, the textbook the course builds on), read as text from
  where it is installed, never imported.

Each source is reduced as answers are (``normalize``), so a student's renamed copy of the
textbook is still the textbook.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from ..assignments import COURSE_ROOT, Assignment

__all__ = ["SharedCode", "shared_code"]


@dataclass(frozen=True)
class SharedCode:
    """Where the shared code came from (for the report) and the code itself."""

    label: str
    pieces: tuple[str, ...]    # each cell or file on its own (one fault stops only it)


def _notebook_code(path: Path) -> tuple[str, ...]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return tuple("".join(c.get("source", "")) for c in cells
                 if isinstance(c, dict) and c.get("cell_type") == "code")


def _d2l_source() -> Path | None:
    spec = importlib.util.find_spec("d2l")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "torch.py"
    return path if path.is_file() else None


def shared_code(assignment: Assignment, course_root: Path = COURSE_ROOT) -> list[SharedCode]:
    """Every source the module names that exists here (a missing one is left out; the
    report lists the sources it used)."""
    out: list[SharedCode] = []
    for lang in ("en", *assignment.languages):
        path = assignment.release_path(lang, course_root)
        if path.is_file():
            out.append(SharedCode(f"release notebook ({path.relative_to(course_root)})",
                                  _notebook_code(path)))
    chapters = sorted((course_root / "book").glob("*.ipynb"))
    if chapters:
        out.append(SharedCode(f"the book's chapters ({len(chapters)} notebooks)",
                              tuple(c for p in chapters for c in _notebook_code(p))))
    package = sorted((course_root / "cnncourse").glob("*.py"))
    if package:
        out.append(SharedCode("the course's package cnncourse",
                              tuple(p.read_text(encoding="utf-8") for p in package)))
    d2l = _d2l_source()
    if d2l is not None:
        out.append(SharedCode("d2l's library (d2l/torch.py)", (d2l.read_text(encoding="utf-8"),)))
    return out
