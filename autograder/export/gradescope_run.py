"""What the Gradescope bundle's ``run_autograder`` runs: grade the one notebook in
``ROOT/submission`` and write ``ROOT/results/results.json`` (``ROOT`` is
``AUTOGRADER_ROOT``, default ``/autograder``).

It grades with ``python -m autograder grade`` in a scratch folder, with the strongest
isolation this machine offers (``--isolation auto``; ``extra_data.isolation`` and
``extra_data.isolation_details`` record what it used), then turns that output into
Gradescope's results with ``export.gradescope``. Whatever happens, Gradescope gets a
results.json: a submission without a notebook, or a run that failed, scores 0 and says why.
``--warm`` (from ``setup.sh``) grades the source notebook instead, once, so the reference
training run is cached in the image, and fails unless it scores full marks.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..i18n import _
from ..output.folder import atomic_write

__all__ = ["main"]


def _find(submission: Path, notebook: str) -> tuple[Path | None, str]:
    """The notebook to grade, or None and the student's message."""
    found = sorted(p for p in submission.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    named = [p for p in found if p.name == notebook]
    if named or len(found) == 1:
        return (named or found)[0], ""
    if not found:
        return None, _("Your submission holds no notebook (.ipynb). Upload {notebook}.").format(
            notebook=notebook)
    return None, _("Your submission holds {count} notebooks and none is named {notebook}; "
                   "upload that notebook only.").format(count=len(found), notebook=notebook)


def _failed(message: str, details: str = "") -> dict[str, Any]:
    return {"score": 0.0, "output": message, "visibility": "visible",
            "stdout_visibility": "hidden", "tests": [],
            "extra_data": {"error": details or message}}


def _grade(notebook: Path, config: dict[str, Any], work: Path) -> tuple[int, str]:
    from .. import cli

    args = ["grade", "--assignment", config["assignment"], "--out", str(work / "out"),
            "--isolation", "auto"]
    if config.get("parts"):
        args += ["--parts", ",".join(config["parts"])]
    if config.get("profile"):
        args += ["--profile", config["profile"]]
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        rc = cli.main([*args, str(notebook)])
    sys.stderr.write(log.getvalue())
    return rc, log.getvalue()


def _results(work: Path, config: dict[str, Any]) -> dict[str, Any]:
    from .common import Settings
    from .gradescope import results_json
    from .source import load

    run = load(work / "out")
    if not run.entries:
        raise ValueError("the grader recorded no submission")
    settings = Settings(hidden_visibility=config.get("hidden_visibility", "after_published"))
    data = results_json(run.entries[0], settings, run)
    data["extra_data"]["isolation_details"] = run.isolation
    return data


def grade(root: Path, config: dict[str, Any], notebook: Path | None = None) -> dict[str, Any]:
    """Gradescope's results for the submission in ``root`` (or ``notebook``)."""
    message = ""
    if notebook is None:
        notebook, message = _find(root / "submission", config["notebook"])
    if notebook is None:
        return _failed(message)
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    try:
        student = work / "in" / "student.ipynb"
        student.parent.mkdir()
        shutil.copyfile(notebook, student)
        rc, log = _grade(student, config, work)
        if rc == 2 or not (work / "out" / "results.json").is_file():
            return _failed(_("The autograder could not run; your instructor has been told "
                             "the reason. Your submission was not graded."), log[-2000:])
        return _results(work, config)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_autograder")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--warm", action="store_true", help="grade the source notebook once")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    if args.warm:
        from ..assignments import get_assignment

        source = get_assignment(config["assignment"]).source_path()
        data = grade(args.root, config, source)
        full = sum(t["max_score"] for t in data["tests"])
        print(f"warm-up: the source notebook scored {data['score']:g} of {full:g}")
        return 0 if data["tests"] and data["score"] >= full - 1e-6 else 1
    try:
        data = grade(args.root, config)
    except Exception as exc:  # noqa: BLE001 - the student must still see a result
        data = _failed(_("The autograder could not run; your instructor has been told the "
                         "reason. Your submission was not graded."), repr(exc))
    (args.root / "results").mkdir(parents=True, exist_ok=True)
    atomic_write(args.root / "results" / "results.json",
                 json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"score {data['score']:g}; isolation {data['extra_data'].get('isolation')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
