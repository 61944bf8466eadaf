"""Does ``python -m autograder grade`` behave as a class-wide command should: exit codes,
inputs as an LMS or nbgrader hands them over, re-runs that replace and resume, and grades
that nbgrader's own tools can read?"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from autograder import cli

from helpers import REPO

pytestmark = pytest.mark.data  # grading trains ResNet-18 on the real Fashion-MNIST files

SOLUTION = REPO / "solutions/assignment1/assignment1.ipynb"
RELEASE = REPO / "exercises/assignment1/assignment1.ipynb"


def grade(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess:
    """The command as an instructor runs it (not a terminal: plain progress lines)."""
    cmd = [sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
           *map(str, args)]
    # CI-sized: the training part uses its quick profile
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, CNN_QUICK="1"))
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def results(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text())
    return {s["student_id"]: s for s in data["submissions"]} | {"__run__": data}


@pytest.mark.parametrize("argv, words", [
    (["grade", "--assignment", "nope", "--out", "x", str(SOLUTION)], "unknown assignment"),
    (["grade", "--assignment", "assignment1", "--out", "x", "missing.ipynb"], "no such file"),
    (["grade", "--assignment", "assignment1", "--out", "x", "--jobs", "0", str(SOLUTION)],
     "--jobs"),
    (["grade", "--assignment", "assignment1", "--out", "x", "--isolation", "rlimits",
      "--timeout", "-1", str(SOLUTION)], "--timeout"),
])
def test_is_a_usage_error_exit_code_2_with_a_message(argv, words, capsys, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_is_a_missing_argument_exit_code_2():
    with pytest.raises(SystemExit) as info:
        cli.main(["grade", "--assignment", "assignment1"])
    assert info.value.code == 2


def _bulk_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.write(SOLUTION, "submitted/alice/assignment1/assignment1.ipynb")
        z.write(RELEASE, "submitted/bob/assignment1/assignment1.ipynb")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Three runs into one folder, as a term goes: an LMS zip; the zip again with late
    and broken files added; then everything regraded with --force."""
    tmp = tmp_path_factory.mktemp("class")
    z = _bulk_zip(tmp / "class.zip")
    late = tmp / "late"
    late.mkdir()
    shutil.copy(SOLUTION, late / "carl.ipynb")
    (late / "ben.ipynb").write_bytes(b"")
    (late / "cho.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    (late / "dev.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    out = tmp / "out"
    first = grade("--out", out, z)
    first_results = results(out)
    second = grade("--out", out, z, late)
    second_results = results(out)
    third = grade("--out", out, "--force", z)
    return {"out": out, "procs": (first, second, third),
            "results": (first_results, second_results, results(out))}


def test_is_an_nbgrader_layout_zip_graded_by_student(runs):
    assert runs["procs"][0].returncode == 0, runs["procs"][0].stderr
    r = runs["results"][0]
    assert r["alice"]["total"] == 12.0 and r["bob"]["total"] == 0.0


def test_are_unreadable_files_named_and_the_rest_graded_with_exit_1(runs):
    proc, r = runs["procs"][1], runs["results"][1]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for student, words in (("ben", "empty"), ("cho", "not text"), ("dev", "nbformat 3")):
        assert f"could not grade {student}" in proc.stdout and words in proc.stdout
        assert r[student]["error"] and r[student]["parts"] == []
        assert (runs["out"] / "feedback" / f"{student}.html").exists()
    assert r["carl"]["total"] == 12.0
    assert "[1/6]" in proc.stderr  # plain progress lines when not on a terminal


def test_does_a_rerun_reuse_unchanged_results_and_grade_only_new_ones(runs):
    timing = runs["results"][1]["__run__"]["timing"]
    assert timing["graded"] == 1  # carl; alice and bob were reused, the rest unreadable
    assert timing["reused_or_unreadable"] == 5


def test_does_regrading_replace_and_never_duplicate(runs):
    from nbgrader.api import Gradebook

    assert runs["procs"][2].returncode == 0
    first, last = runs["results"][0], runs["results"][2]
    assert last["__run__"]["timing"]["graded"] == 2
    assert len(last["__run__"]["submissions"]) == 6  # earlier students stay on file
    for student in ("alice", "bob"):
        assert first[student]["total"] == last[student]["total"]
    with Gradebook(f"sqlite:///{runs['out'] / 'gradebook.db'}", "cnn-course") as gb:
        subs = gb.assignment_submissions("assignment1")
        assert sorted(s.student.id for s in subs) == ["alice", "bob", "carl"]
        assert sum(len(nb.grades) for s in subs for nb in s.notebooks) == 3 * 4  # 4 parts


def test_does_nbgrader_export_see_the_grades(runs, tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    db = f"sqlite:///{runs['out'] / 'gradebook.db'}"
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--db={db}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "grades.csv").read_text().splitlines()
    scores = {r.split(",")[3]: r for r in rows[1:]}  # assignment,duedate,timestamp,student_id
    assert set(scores) == {"alice", "bob", "carl"}
    assert ",12.0," in scores["alice"]


def _worker_processes() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "worker.py --tmp" in cmd:
            found.append(f"{pid}: {cmd[:80]}")
    return found


@pytest.mark.slow
def test_does_a_kill_9_mid_run_lose_nothing_on_the_rerun(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(8):
        shutil.copy(SOLUTION if i % 2 else RELEASE, subs / f"s{i}.ipynb")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
           "--out", str(out), str(subs)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "results.json").exists() and results(out)["__run__"]["submissions"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    assert not _worker_processes(), "workers outlived the killed grader"
    grade("--out", out, subs, check=True)
    r = results(out)
    assert sorted(s["student_id"] for s in r["__run__"]["submissions"]) == \
        [f"s{i}" for i in range(8)]
    assert all(r[f"s{i}"]["total"] == (12.0 if i % 2 else 0.0) for i in range(8))
    assert not list(out.glob(".*.tmp-*")) and not (out / ".lock").exists()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "cnn-course") as gb:
        assert len(gb.assignment_submissions("assignment1")) == 8
