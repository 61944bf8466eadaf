"""Generate the student notebooks in exercises/ from solutions/ with nbgrader, then run them.

nbgrader's ``generate_assignment`` works in a scratch course folder (its gradebook and log
stay there), so the only file that changes in the repository is the released notebook.
The release is then executed top to bottom, so it ships with the self-checks' "not
implemented yet" messages stored as outputs; nbval compares those in CI.

Each of the assignment's ``languages`` is released the same way into ``exercises/<id>/<lang>/``
from a translated copy of the source (``translate.py``: the text cells and the message
table from ``locale/<lang>/LC_MESSAGES/<id>.po``), so its cells, ids, grade ids, points and
code are nbgrader's own output for the same source, with only the text translated.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .assignments import COURSE_ROOT, Assignment

__all__ = ["release", "generate", "execute"]


def _env() -> dict[str, str]:
    env = dict(os.environ, CNN_QUICK="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def generate(assignment: Assignment, scratch: Path, course_root: Path = COURSE_ROOT) -> Path:
    """Run ``nbgrader generate_assignment`` on a copy of the source; returns the release."""
    shutil.copytree(course_root / "solutions" / assignment.id,
                    scratch / "solutions" / assignment.id)
    shutil.copy(course_root / "nbgrader_config.py", scratch / "nbgrader_config.py")
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment.id, "--force",
           f"--db=sqlite:///{scratch / 'gradebook.db'}"]
    proc = subprocess.run(cmd, cwd=scratch, env=_env(), capture_output=True, text=True,
                          timeout=600)
    released = scratch / "exercises" / assignment.id / assignment.notebook
    if proc.returncode != 0 or not released.exists():
        raise RuntimeError(f"nbgrader generate_assignment failed for {assignment.id}:\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return released


def execute(path: Path, timeout: int = 600) -> None:
    """Run the notebook in place (quick mode) and store its outputs, without timings."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("CNN_QUICK")
    os.environ["CNN_QUICK"] = "1"
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("CNN_QUICK", None)
        else:
            os.environ["CNN_QUICK"] = old
    nbformat.write(nb, path)


def release(assignment: Assignment, execute_notebook: bool = True,
            course_root: Path = COURSE_ROOT, dest_root: Path | None = None) -> Path:
    """Regenerate ``exercises/<id>/`` (or ``dest_root/<id>/``), each translation in its
    ``<lang>/`` folder; returns the English notebook's path."""
    from .translate import translated_course

    dest = (dest_root or course_root / "exercises") / assignment.id
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        scratch = Path(tmp)
        made = {dest / assignment.notebook: generate(assignment, scratch / "en", course_root)}
        for language in assignment.languages:
            course = translated_course(assignment, language, scratch / f"{language}-course",
                                       course_root)
            made[dest / language / assignment.notebook] = generate(
                assignment, scratch / language, course)
        for target, released in made.items():
            if execute_notebook:
                execute(released)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(released, target)
    return dest / assignment.notebook
