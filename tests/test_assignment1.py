"""Is Assignment 1 authored once and derived correctly: is the release what nbgrader makes
of the source, free of solutions and hidden tests, is the solution right, and does
``nbgrader autograde`` agree with the autograder's totals?"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.assignments import get_assignment
from autograder.release import release

from helpers import REPO

SOURCE = REPO / "solutions/assignment1/assignment1.ipynb"
RELEASED = REPO / "exercises/assignment1/assignment1.ipynb"
FIXTURES = REPO / "tests/fixtures"


def cells(path: Path) -> dict[str, dict]:
    nb = json.loads(path.read_text())
    return {c["metadata"].get("nbgrader", {}).get("grade_id", f"#{i}"): c
            for i, c in enumerate(nb["cells"])}


def source_of(cell: dict) -> str:
    return "".join(cell["source"])


def between(text: str, begin: str, end: str) -> list[str]:
    """The non-trivial lines strictly between each begin/end marker pair."""
    lines, inside, found = text.splitlines(), False, []
    for line in lines:
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside and len(line.strip()) > 8:
            found.append(line.strip())
    return found


@pytest.mark.slow
def test_is_the_release_exactly_what_nbgrader_generates_from_the_source(tmp_path):
    fresh = release(get_assignment("assignment1"), dest_root=tmp_path)
    assert json.loads(fresh.read_text()) == json.loads(RELEASED.read_text()), (
        "exercises/ is out of date: run `make exercises` (python -m autograder release)")


def test_does_no_solution_code_or_hidden_test_leak_into_the_release():
    released = RELEASED.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in released
    text = "\n".join(source_of(c) for c in cells(SOURCE).values())
    secret = between(text, "### BEGIN SOLUTION", "### END SOLUTION") + \
        between(text, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    assert secret, "the source should have solutions and hidden tests"
    released_lines = {line.strip() for line in
                      "\n".join(source_of(c) for c in cells(RELEASED).values()).splitlines()}
    leaked = [line for line in secret if line in released_lines]
    assert not leaked, f"solution or hidden-test lines in exercises/: {leaked}"


def test_does_the_release_keep_stubs_and_self_checks_for_each_part():
    released = cells(RELEASED)
    for part in ("corr2d", "pool2d", "residual"):
        assert "raise NotImplementedError()" in source_of(released[f"{part}_answer"])
    for part in ("corr2d", "pool2d", "residual", "residual_training"):
        outputs = "".join("".join(o.get("text", "")) for o in released[part].get("outputs", []))
        assert "not implemented yet" in outputs, f"{part}: run `make exercises` again"


def test_are_the_points_three_three_four_and_two():
    got = {gid: c["metadata"]["nbgrader"].get("points") for gid, c in cells(SOURCE).items()
           if c["metadata"].get("nbgrader", {}).get("grade")}
    assert got == {"corr2d": 3, "pool2d": 3, "residual": 4, "residual_training": 2}


def _solution_namespace() -> dict:
    ns: dict = {}
    for gid in ("setup", "corr2d_answer", "pool2d_answer", "residual_answer"):
        exec(compile(source_of(cells(SOURCE)[gid]), gid, "exec"), ns)  # noqa: S102 - our code
    return ns


def test_does_the_solution_agree_with_cnncourse():
    from cnncourse import models, ops

    ns = _solution_namespace()
    gen = torch.Generator().manual_seed(0)
    for h, w, kh, kw in [(5, 7, 2, 3), (4, 4, 4, 4), (1, 6, 1, 2)]:
        X, K = torch.randn(h, w, generator=gen), torch.randn(kh, kw, generator=gen)
        assert torch.allclose(ns["corr2d"](X, K), ops.corr2d(X, K), atol=1e-5)
        for mode in ("max", "avg"):
            assert torch.allclose(ns["pool2d"](X, (kh, kw), mode), ops.pool2d(X, (kh, kw), mode))
    X = torch.randn(2, 3, 6, 6, generator=gen)
    mine, theirs = ns["Residual"](5, use_1x1conv=True, strides=2), models.Residual(
        5, use_1x1conv=True, strides=2)
    mine(X), theirs(X)
    theirs.load_state_dict(mine.state_dict())
    for training in (True, False):
        mine.train(training), theirs.train(training)
        assert torch.allclose(mine(X), theirs(X), atol=1e-6)


def test_does_the_residual_reference_written_out_match_cnncourse():
    from autograder.jobs import RunSettings
    from autograder.parts import Residual

    config = Residual().prepare(4.0, RunSettings()).state[1]
    from autograder.parts.residual import _functional

    w = {k: torch.from_numpy(v) for k, v in config.weights.items()}
    with torch.no_grad():
        for mode in ("eval", "train"):
            got = _functional(w, torch.from_numpy(config.X), mode == "train", config.strides)
            np.testing.assert_allclose(got.numpy(), config.expected[mode], atol=1e-5)


def test_are_the_fixture_notebooks_in_step_with_the_solution():
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_fixtures
    finally:
        sys.path.remove(str(FIXTURES))
    expected = make_fixtures.all_fixtures()
    on_disk = {p.stem: json.loads(p.read_text())
               for p in (FIXTURES / "assignment1").glob("*.ipynb")}
    assert on_disk == expected, "run .venv/bin/python tests/fixtures/make_fixtures.py"


@pytest.mark.slow
@pytest.mark.data  # our grader trains ResNet-18 on the real files
def test_does_nbgrader_autograde_agree_with_our_totals(tmp_path, monkeypatch):
    """nbgrader runs the whole notebook with the source's tests restored; so do our totals.

    Our grader gets a data root that does not exist yet, as on a fresh CI machine: it must
    link the data there before its sandboxed workers start (a CI run once scored 0 here)."""
    from nbgrader.api import Gradebook

    from autograder.pipeline import Options, grade

    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions", course / "solutions")
    shutil.copy(REPO / "nbgrader_config.py", course)
    for student, nb in (("sol", SOURCE), ("rel", RELEASED)):
        dest = course / "submitted" / student / "assignment1"
        dest.mkdir(parents=True)
        shutil.copy(nb, dest / "assignment1.ipynb")
    env = dict(os.environ, CNN_QUICK="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    db = f"sqlite:///{course / 'gradebook.db'}"
    for cmd in (["generate_assignment", "assignment1", "--force"],
                ["autograde", "assignment1", "--force"]):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *cmd, f"--db={db}"],
                              cwd=course, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with Gradebook(db, "cnn-course") as gb:
        theirs = {s: gb.find_submission("assignment1", s).score for s in ("sol", "rel")}
    monkeypatch.setenv("CNN_DATA", str(tmp_path / "fresh-home" / "data"))
    _, ours = grade(get_assignment("assignment1"), [course / "submitted"], tmp_path / "out",
                    Options())
    why = {r.student_id: (r.error, [(p.name, p.score, p.feedback) for p in r.parts])
           for r in ours}
    assert {r.student_id: r.total for r in ours} == theirs == {"sol": 12.0, "rel": 0.0}, why
