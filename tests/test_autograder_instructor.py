"""Does a new instructor's first hour go right: on a fresh copy of the course with no data
set and no internet, with an empty folder, with parts left out on purpose?

The no-data run uses a copy of the course in a temporary folder with nothing beside it
(no ``../shared``), an empty data root and a proxy that refuses every connection, so the
training part really cannot find or download Fashion-MNIST.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

SOLUTION = REPO / "solutions" / "assignment1" / "assignment1.ipynb"
RELEASE = REPO / "exercises" / "assignment1" / "assignment1.ipynb"


def _grade(args: list[str], cwd: Path = REPO, env: dict | None = None,
           timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "grade",
                           "--assignment", "assignment1", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "CNN_QUICK": "1", **(env or {})})


@pytest.fixture(scope="module")
def no_data_run(tmp_path_factory) -> dict:
    """The solution graded from a copy of the course that has no data and no internet."""
    top = tmp_path_factory.mktemp("fresh")
    course = top / "course"
    for name in ("autograder", "cnncourse", "solutions", "exercises"):
        shutil.copytree(REPO / name, course / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "nbgrader_config.py", course)
    subs = top / "submissions"
    subs.mkdir()
    shutil.copy(SOLUTION, subs / "alice.ipynb")
    out = top / "out"
    proc = _grade(["--out", str(out), str(subs)], cwd=course, env={
        "PYTHONPATH": str(course), "CNN_DATA": str(top / "empty-data"),
        "CNN_AUTOGRADER_CACHE": str(top / "cache"), "HOME": str(top / "home"),
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"})
    return {"proc": proc, "out": out}


def test_does_a_run_without_data_grade_every_other_part(no_data_run):
    proc, out = no_data_run["proc"], no_data_run["out"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads((out / "results.json").read_text())
    (alice,) = data["submissions"]
    assert alice["error"] is None
    assert {p["name"]: p["score"] for p in alice["parts"]} == \
        {"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}
    (left,) = alice["not_graded"]
    assert left["name"] == "residual_training" and left["max_score"] == 2.0
    assert "Fashion-MNIST" in left["reason"]
    assert alice["max_total"] == 10.0 and alice["full_total"] == 12.0


def test_does_a_run_without_data_say_what_to_do(no_data_run):
    proc = no_data_run["proc"]
    assert "not graded: residual_training (2 points)" in proc.stdout
    assert "--parts corr2d,pool2d,residual" in proc.stdout, proc.stdout


def test_do_grades_csv_and_feedback_name_the_part_left_out(no_data_run):
    out = no_data_run["out"]
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert rows[0]["residual_training"] == "" and rows[0]["total"] == "10.0"
    assert rows[0]["full_total"] == "12.0" and "residual_training:" in rows[0]["not_graded"]
    page = (out / "feedback" / "alice.html").read_text()
    assert "Not graded:" in page and "full total is 12 points" in page
    assert "<td>not graded</td>" in page


def test_does_leaving_a_part_out_on_purpose_say_so_and_exit_zero(tmp_path):
    proc = _grade(["--out", str(tmp_path / "out"), "--parts", "corr2d,pool2d,residual",
                   str(SOLUTION)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not graded: residual_training (2 points): left out with --parts" in proc.stdout
    page = next((tmp_path / "out" / "feedback").glob("*.html")).read_text()
    assert "Total: 10 out of 10" in page and "full total is 12 points" in page


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_is_a_folder_without_notebooks_an_error(tmp_path, content):
    folder = tmp_path / "downloads"
    folder.mkdir()
    if content:
        (folder / content).write_text("not a notebook")
    proc = _grade(["--out", str(tmp_path / "out"), str(folder)])
    assert proc.returncode == 2 and "no notebooks found" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_does_a_zero_timeout_get_a_message_that_fits():
    proc = _grade(["--out", "x", "--timeout", "0", str(SOLUTION)])
    assert proc.returncode == 2
    assert "more than 0 and at most 3600 seconds; got 0" in proc.stderr


def test_do_make_and_the_command_line_read_the_same_data_root():
    """The Makefile once set CNN_DATA=./data while the command line read ~/.cache."""
    assert "CNN_DATA" not in (REPO / "Makefile").read_text()


def test_does_each_residual_check_name_its_own_configuration(tmp_path):
    """An unfinished block: the 1x1 check names the block with the 1x1 convolution."""
    proc = _grade(["--out", str(tmp_path / "out"), "--parts", "residual", str(RELEASE)])
    assert proc.returncode == 0, proc.stderr
    (sub,) = json.loads((tmp_path / "out" / "results.json").read_text())["submissions"]
    checks = {c["name"]: c["message"] for c in sub["parts"][0]["checks"]}
    assert checks["output shape with the 1x1 convolution"].startswith(
        "Residual(6, use_1x1conv=True, strides=2)")
    assert checks["output shape without the 1x1 convolution"].startswith("Residual(3) ")
