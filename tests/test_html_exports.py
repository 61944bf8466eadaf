"""Is a notebook handed in as its HTML export (``jupyter nbconvert --to html``, lab and
classic templates) graded exactly as the notebook itself, and any other HTML refused?

The exports are made here with the real nbconvert from the solution, the untouched release
and a typical mistake. The training part is left out (``--parts``): reading the code back
is what is tested, and it is the same for every part.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.assignments import get_assignment
from autograder.pipeline import Options, grade

from helpers import REPO

SOLUTION = REPO / "solutions" / "assignment1" / "assignment1.ipynb"
RELEASE = REPO / "exercises" / "assignment1" / "assignment1.ipynb"
MISTAKE = REPO / "tests" / "fixtures" / "assignment1" / "corr2d__off_by_one.ipynb"
PARTS = ("corr2d", "pool2d", "residual")
STUDENTS = {"sol": SOLUTION, "release": RELEASE, "off_by_one": MISTAKE}


def _export(notebook: Path, template: str, dest: Path) -> Path:
    out = dest / f"{dest.name}.html"
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--template", template,
                    str(notebook), "--output", out.stem, "--output-dir", str(dest)],
                   check=True, capture_output=True, text=True, timeout=300)
    return out


def _summary(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text())
    return {s["student_id"]: (s["total"], s["error"], [(p["name"], p["score"], [
        (c["name"], c["passed"]) for c in p["checks"]]) for p in s["parts"]])
        for s in data["submissions"]}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("html")
    runs = {}
    for kind in ("ipynb", "lab", "classic"):
        subs = tmp / kind
        for student, notebook in STUDENTS.items():
            folder = subs / student
            folder.mkdir(parents=True)
            if kind == "ipynb":
                shutil.copy(notebook, folder / "assignment1.ipynb")
            else:
                _export(notebook, kind, folder).rename(folder / "assignment1.html")
        out = tmp / f"out-{kind}"
        grade(get_assignment("assignment1"), [subs], out,
              Options(jobs=2, profile="quick", parts=PARTS))
        runs[kind] = out
    return runs


@pytest.mark.parametrize("template", ["lab", "classic"])
def test_is_an_html_export_graded_as_its_notebook(graded, template):
    notebook, exported = _summary(graded["ipynb"]), _summary(graded[template])
    assert set(exported) == set(STUDENTS)
    assert exported == notebook
    assert notebook["sol"][0] == 10.0 and notebook["off_by_one"][0] < 10.0


@pytest.mark.parametrize("template", ["lab", "classic"])
def test_does_the_feedback_say_it_was_graded_from_an_html_export(graded, template):
    data = json.loads((graded[template] / "results.json").read_text())
    for s in data["submissions"]:
        notes = [n for p in s["parts"] for n in p.get("notes", [])]
        assert any("HTML export" in n for n in notes), (s["student_id"], notes)
    page = next((graded[template] / "feedback").rglob("sol.html")).read_text()
    assert "HTML export" in page


def test_is_other_html_a_clear_error_for_that_file_only(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "webpage.html").write_text("<!DOCTYPE html><html><body><p>my homework</p>"
                                       "<pre>def corr2d(X, K): pass</pre></body></html>")
    shutil.copy(SOLUTION, subs / "alice.ipynb")
    out = tmp_path / "out"
    run, results = grade(get_assignment("assignment1"), [subs], out,
                         Options(profile="quick", parts=("corr2d",)))
    by_id = {r.student_id: r for r in results}
    assert by_id["alice"].graded and by_id["alice"].total == 3.0
    assert not by_id["webpage"].graded
    assert "not a notebook exported with jupyter nbconvert" in by_id["webpage"].error


def test_does_a_notebook_win_over_its_own_html_export_beside_it(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(SOLUTION, subs / "alice.ipynb")
    _export(SOLUTION, "lab", tmp_path / "alice").rename(subs / "alice.html")
    run, results = grade(get_assignment("assignment1"), [subs], tmp_path / "out",
                         Options(profile="quick", parts=("corr2d",)))
    assert [(r.student_id, r.source.endswith(".ipynb")) for r in results] == [("alice", True)]
