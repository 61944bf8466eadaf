"""Does a grader killed with -9 mid-run lose nothing when the same command runs again, does
grading twice give the same scores, and does a run leave nothing behind?

The grader runs as an instructor runs it, in a subprocess, from a copy of the course that is
its own git repository (so ``git status`` shows anything a run changed), with a private
TMPDIR (so its temporary files can be counted). The training part is left out (see
``redteam_support.fast_assignment``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "redteam"))
import redteam_attacks as attack  # noqa: E402
import redteam_support as support  # noqa: E402

fx = support.load_fixtures()
# The grader as `python -m autograder grade`, with the parts that train a network left out.
GRADER = ("import dataclasses, sys\n"
          "from autograder import assignments, cli\n"
          "a = assignments.ASSIGNMENTS['assignment1']\n"
          "assignments.ASSIGNMENTS['assignment1'] = dataclasses.replace(a, parts=tuple(\n"
          "    p for p in a.parts if p.driver != 'plain_data'))\n"
          "sys.exit(cli.main(sys.argv[1:]))\n")
STUDENTS = {f"s{i}": i % 3 for i in range(8)}  # 0: solution, 1: stubs, 2: a fork bomb
TOTALS = {0: 10.0, 1: 0.0, 2: 7.0}


def _notebook(kind: int) -> bytes:
    nb = {0: fx.completed_solution, 1: fx.stubs,
          2: lambda: fx.build({"corr2d_answer": attack.FORK_BOMB})}[kind]()
    return fx.notebook_bytes(nb)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _results(out: Path) -> dict:
    try:
        return json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return {"submissions": []}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("faults")
    course = support.course_copy(tmp / "course")
    subs = tmp / "submissions"
    subs.mkdir()
    for student, kind in STUDENTS.items():
        (subs / f"{student}.ipynb").write_bytes(_notebook(kind))
    private_tmp = tmp / "tmpdir"
    private_tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(course), TMPDIR=str(private_tmp))
    env.pop("CNN_AUTOGRADER_CACHE", None)
    return {"course": course, "subs": subs, "out": tmp / "out", "env": env,
            "private_tmp": private_tmp, "subs_before": _snapshot(subs)}


def _command(course: dict, *extra: str) -> list[str]:
    return [sys.executable, "-c", GRADER, "grade", "--assignment", "assignment1",
            "--out", str(course["out"]), "--timeout", "10", "--isolation",
            support.isolation(), *extra, str(course["subs"])]


def _run_markers(course: dict, pid: int) -> list[str]:
    """Live processes of the run with this grader pid: its dedicated uids, its process
    group, or the course copy (which every worker's command line names) in their argv."""
    found = support.processes_of(support.dedicated_uids(pid))
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            pgid = os.getpgid(int(p))
        except (OSError, ProcessLookupError):
            continue
        if int(p) != os.getpid() and (pgid == pid or str(course["course"]) in cmd):
            found.append(f"{p}: {cmd[:100]}")
    return found


@pytest.fixture(scope="module")
def killed_then_rerun(course) -> dict:
    """Start the grader, kill -9 it once the first results are on disk, run it again, then
    run it a third time with --force."""
    tmp_before = support.temp_entries()
    proc = subprocess.Popen(_command(course), cwd=course["course"], env=course["env"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if _results(course["out"])["submissions"]:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = [s["student_id"] for s in _results(course["out"])["submissions"]]
    time.sleep(2.0)  # the sandbox dies with its parent; give the kernel a moment
    left_after_kill = _run_markers(course, proc.pid)
    rerun = subprocess.run(_command(course), cwd=course["course"], env=course["env"],
                           capture_output=True, text=True, timeout=600)
    after_rerun = _results(course["out"])
    forced = subprocess.run(_command(course, "--force"), cwd=course["course"],
                            env=course["env"], capture_output=True, text=True, timeout=600)
    time.sleep(0.5)
    return {"killed_pid": proc.pid, "at_kill": at_kill, "left_after_kill": left_after_kill,
            "rerun": rerun, "after_rerun": after_rerun, "forced": forced,
            "after_forced": _results(course["out"]), "tmp_before": tmp_before}


def test_was_the_grader_really_killed_mid_run(killed_then_rerun):
    assert 1 <= len(killed_then_rerun["at_kill"]) < len(STUDENTS), killed_then_rerun["at_kill"]


def test_did_no_process_of_the_killed_run_outlive_it(course, killed_then_rerun):
    assert killed_then_rerun["left_after_kill"] == []


def test_does_the_rerun_grade_every_submission_exactly_once(killed_then_rerun):
    rerun = killed_then_rerun["rerun"]
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    subs = killed_then_rerun["after_rerun"]["submissions"]
    assert sorted(s["student_id"] for s in subs) == sorted(STUDENTS)
    for s in subs:
        assert s["error"] is None and s["total"] == TOTALS[STUDENTS[s["student_id"]]], s
    timing = killed_then_rerun["after_rerun"]["timing"]
    assert timing["reused_or_unreadable"] == len(killed_then_rerun["at_kill"])


def test_does_the_gradebook_hold_each_submission_once(course, killed_then_rerun):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course['out'] / 'gradebook.db'}", "cnn-course") as gb:
        subs = gb.assignment_submissions("assignment1")
        assert sorted(s.student.id for s in subs) == sorted(STUDENTS)
        assert sum(len(nb.grades) for s in subs for nb in s.notebooks) == 3 * len(STUDENTS)
        for s in subs:
            assert s.score == TOTALS[STUDENTS[s.student.id]]


def test_does_grading_the_same_submissions_again_give_identical_scores(killed_then_rerun):
    forced = killed_then_rerun["forced"]
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert killed_then_rerun["after_forced"]["timing"]["graded"] == len(STUDENTS)

    def scores(run: dict) -> dict:
        return {s["student_id"]: [(p["name"], p["score"], [c["passed"] for c in p["checks"]])
                                  for p in s["parts"]] for s in run["submissions"]}
    assert scores(killed_then_rerun["after_forced"]) == scores(killed_then_rerun["after_rerun"])


def test_is_nothing_outside_the_output_folder_changed(course, killed_then_rerun):
    assert support.git_status(course["course"]) == ""
    assert _snapshot(course["subs"]) == course["subs_before"]
    assert sorted(p.name for p in course["out"].iterdir()) == [
        "answers.json", "feedback", "gradebook.db", "grades.csv", "results.json"]
    assert not list(course["out"].glob(".*.tmp-*"))


def test_is_no_process_or_temporary_file_of_any_run_left(course, killed_then_rerun):
    assert _run_markers(course, killed_then_rerun["killed_pid"]) == []
    assert [p.name for p in course["private_tmp"].iterdir()] == []
    for pid in (killed_then_rerun["killed_pid"],):
        assert support.our_temp_leftovers(killed_then_rerun["tmp_before"], pid,
                                          support.dedicated_uids(pid)) == []
    shutil.rmtree(course["private_tmp"], ignore_errors=True)
