"""Does ``python -m autograder export`` turn a real grading output into each platform's
files, with exactly the field names the platforms read, without regrading; and does bad
input end with a clear message, exit 2 and nothing written?

The grading output is a real run (training part left out: it adds nothing here but time)
of the solution (10/10), the release (0/10), a partly correct submission (corr2d off by
one: 7/10) and the Korean release (0/10, graded in Korean by its metadata)."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli

from helpers import REPO

SOLUTION = REPO / "solutions/assignment1/assignment1.ipynb"
RELEASE = REPO / "exercises/assignment1/assignment1.ipynb"
RELEASE_KO = REPO / "exercises/assignment1/ko/assignment1.ipynb"
PARTIAL = REPO / "tests/fixtures/assignment1/corr2d__off_by_one.ipynb"
PARTS = "corr2d,pool2d,residual"
EXPECTED = {"solution": 10.0, "release": 0.0, "partial": 7.0, "release_ko": 0.0}

GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "visibility",
                  "stdout_visibility", "extra_data", "tests"}
GRADESCOPE_TEST = {"name", "number", "score", "max_score", "status", "output", "visibility",
                   "tags"}
PRAIRIELEARN_TOP = {"gradable", "score", "message", "output", "tests", "images"}
PRAIRIELEARN_TEST = {"name", "description", "points", "max_points", "message", "output"}
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def run_cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("graded")
    for name, src in (("solution", SOLUTION), ("release", RELEASE), ("partial", PARTIAL),
                      ("release_ko", RELEASE_KO)):
        shutil.copyfile(src, tmp / f"{name}.ipynb")
    out = tmp / "out"
    proc = run_cli("grade", "--assignment", "assignment1", "--out", out, "--parts", PARTS,
                   *sorted(tmp.glob("*.ipynb")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def results(out: Path) -> dict[str, dict]:
    return {s["student_id"]: s for s in json.loads((out / "results.json").read_text())
            ["submissions"]}


def export(fmt: str, graded: Path, out: Path, *extra: str | Path) -> subprocess.CompletedProcess:
    proc = run_cli("export", "--format", fmt, "--out", out, *extra, graded)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_are_the_scores_the_grading_runs(graded):
    assert {k: v["total"] for k, v in results(graded).items()} == EXPECTED
    assert results(graded)["release_ko"]["language"] == "ko"


def test_does_gradescope_get_its_schema_with_one_test_per_check(graded, tmp_path):
    export("gradescope", graded, tmp_path / "gs")
    graded_results = results(graded)
    for student, expected in EXPECTED.items():
        data = json.loads((tmp_path / "gs" / student / "results.json").read_text())
        assert set(data) == GRADESCOPE_TOP
        assert data["score"] == expected
        assert data["visibility"] == "visible" and data["stdout_visibility"] == "hidden"
        checks = [c for p in graded_results[student]["parts"] for c in p["checks"]]
        left = graded_results[student]["not_graded"]
        assert len(data["tests"]) == len(checks) + len(left) == 18 + 1
        for test in data["tests"]:
            assert set(test) == GRADESCOPE_TEST
            assert test["status"] in ("passed", "failed")
            assert isinstance(test["number"], str) and isinstance(test["tags"], list)
        check_tests = data["tests"][:len(checks)]
        assert [t["visibility"] for t in check_tests] == [
            "after_published" if c["hidden"] else "visible" for c in checks]
        assert [t["status"] == "passed" for t in check_tests] == [c["passed"] for c in checks]
        assert round(sum(t["score"] for t in data["tests"]), 4) == expected
        assert round(sum(t["max_score"] for t in data["tests"]), 4) == 12.0  # full total
        assert data["tests"][-1]["name"] == "residual_training"
        assert data["tests"][-1]["score"] == 0 and data["tests"][-1]["max_score"] == 2
    partial = json.loads((tmp_path / "gs/partial/results.json").read_text())
    failed = [t for t in partial["tests"][:-1] if t["status"] == "failed"]
    assert {t["tags"][0] for t in failed} == {"corr2d"} and len(failed) == 5
    corr2d = graded_results["partial"]["parts"][0]["checks"]
    assert [t["output"] for t in failed] == [c["message"] for c in corr2d]


def test_is_the_visibility_of_hidden_input_checks_configurable(graded, tmp_path):
    export("gradescope", graded, tmp_path / "gs", "--hidden-visibility", "hidden",
           "--visibility", "after_due_date")
    data = json.loads((tmp_path / "gs/solution/results.json").read_text())
    assert {t["visibility"] for t in data["tests"]} == {"hidden", "after_due_date"}
    assert data["visibility"] == "after_due_date"


def test_does_prairielearn_get_its_schema_and_a_score_from_0_to_1(graded, tmp_path):
    export("prairielearn", graded, tmp_path / "pl")
    for student, expected in EXPECTED.items():
        data = json.loads((tmp_path / "pl" / student / "results.json").read_text())
        assert PRAIRIELEARN_TOP <= set(data) and set(data) <= PRAIRIELEARN_TOP | {
            "format_errors"}
        assert data["gradable"] is True and data["score"] == round(expected / 12, 4)
        for test in data["tests"]:
            assert set(test) == PRAIRIELEARN_TEST
        assert round(sum(t["points"] for t in data["tests"]), 4) == expected
        assert sum(t["max_points"] for t in data["tests"]) == 12.0
        assert data["images"] == []  # the training part (the curve) was not graded
        assert len(json.dumps(data).encode()) < 1_000_000


def test_are_the_korean_submissions_exports_in_korean(graded, tmp_path):
    export("gradescope", graded, tmp_path / "gs")
    export("prairielearn", graded, tmp_path / "pl")
    gs = json.loads((tmp_path / "gs/release_ko/results.json").read_text())
    pl = json.loads((tmp_path / "pl/release_ko/results.json").read_text())
    english = json.loads((tmp_path / "gs/release/results.json").read_text())
    for text in (gs["output"], pl["message"], pl["output"],
                 *(t["output"] for t in gs["tests"]), *(t["message"] for t in pl["tests"])):
        assert HANGUL.search(text), text
    assert "Total" not in gs["output"] and "out of" not in pl["message"]
    assert "Total: 0 out of 10" in english["output"]
    assert [t["score"] for t in gs["tests"]] == [t["score"] for t in english["tests"]]


def test_does_prairielearn_show_the_training_curve_under_1_mb(graded, tmp_path):
    """A page with a figure, as the training part's feedback has one (rendered by the
    grader's own page code), gives an image with its label; one too large for PrairieLearn
    is left out and the message says so."""
    from dataclasses import replace

    from autograder.export.prairielearn import LIMIT_BYTES, results_json
    from autograder.export.source import load
    from autograder.output.feedback import render
    from autograder.output.results import Figure

    out = tmp_path / "out"
    shutil.copytree(graded, out)
    run = load(out)
    entry = next(e for e in run.entries if e.student_id == "solution")
    png = _png()
    with_figure = replace(entry.result, parts=(
        *entry.result.parts[:-1], replace(entry.result.parts[-1], figures=(
            Figure(png, "training curves: yours and the reference"),))))
    entry.page.write_text(render(with_figure, "assignment1"))
    data = results_json(entry, run)
    assert data["images"] == [{"label": "training curves: yours and the reference",
                               "url": "data:image/png;base64,"
                                      + __import__("base64").b64encode(png).decode()}]
    big = replace(with_figure.parts[-1], figures=(Figure(png + os.urandom(900_000), "big"),))
    entry.page.write_text(render(replace(with_figure, parts=(*with_figure.parts[:-1], big)),
                                 "assignment1"))
    data = results_json(entry, run)
    assert data["images"] == [] and "1 MB" in data["message"]
    assert len(json.dumps(data, ensure_ascii=False).encode()) <= LIMIT_BYTES


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 3])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _roster(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, "Assignment 1 (12345)"])
    writer.writerow(["    Points Possible", "", "", "", "", "12"])
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))
    return path


ROSTER = [["Solution, Sam", "101", "S101", "solution", "Section A", ""],
          ["Partial, Pat", "102", "S102", "PARTIAL ", "Section A", ""],
          ["Korean, Kim", "103", "S103", "release_ko", "Section B", ""],
          ["Absent, Carol", "104", "S104", "carol", "Section B", ""]]


def test_does_canvas_get_its_import_csv_joined_to_the_roster(graded, tmp_path):
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    proc = export("canvas", graded, tmp_path / "cv", "--roster", roster,
                  "--canvas-assignment", "Assignment 1 (12345)")
    rows = list(csv.reader((tmp_path / "cv/canvas_grades.csv").read_text().splitlines()))
    assert rows[0] == [*CANVAS_COLUMNS, "Assignment 1 (12345)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "12"]
    assert rows[2:] == [["Solution, Sam", "101", "S101", "solution", "Section A", "10"],
                        ["Partial, Pat", "102", "S102", "PARTIAL", "Section A", "7"],
                        ["Korean, Kim", "103", "S103", "release_ko", "Section B", "0"]]
    unmatched = list(csv.DictReader((tmp_path / "cv/unmatched.csv").read_text()
                                    .splitlines()))
    assert {(u["problem"], u["student_id"] or u["Student"]) for u in unmatched} == {
        ("grade without a student", "release"), ("student without a grade", "Absent, Carol")}
    assert "release" in proc.stderr and "Absent, Carol" in proc.stderr


def test_does_roster_key_choose_the_column_to_join_on(graded, tmp_path):
    rows = [[*r[:2], r[3].strip().lower(), "x" + r[2], *r[4:]] for r in ROSTER]
    roster = _roster(tmp_path / "roster.csv", rows)
    export("canvas", graded, tmp_path / "cv", "--roster", roster, "--roster-key",
           "SIS User ID", "--canvas-assignment", "Assignment 1 (12345)")
    rows = list(csv.reader((tmp_path / "cv/canvas_grades.csv").read_text().splitlines()))
    assert [r[-1] for r in rows[2:]] == ["10", "7", "0"]


def test_does_a_late_penalty_show_in_every_format(graded, tmp_path):
    """The late-submission step adds timestamp, late_by_seconds and late_penalty (points
    off, as nbgrader's late_submission_penalty) to a submission; every export uses them."""
    out = tmp_path / "out"
    shutil.copytree(graded, out)
    data = json.loads((out / "results.json").read_text())
    for s in data["submissions"]:
        if s["student_id"] in ("solution", "release_ko"):
            s.update(timestamp="2026-12-01T10:00:00+00:00", late_by_seconds=2 * 3600,
                     late_penalty=1.5)
    (out / "results.json").write_text(json.dumps(data))
    export("gradescope", out, tmp_path / "gs")
    gs = json.loads((tmp_path / "gs/solution/results.json").read_text())
    assert gs["score"] == 8.5 and "1.5 points off" in gs["output"]
    assert gs["extra_data"]["late_penalty"] == 1.5 and gs["extra_data"]["raw_score"] == 10
    ko = json.loads((tmp_path / "gs/release_ko/results.json").read_text())
    assert ko["score"] == 0 and "감점" in ko["output"]
    export("prairielearn", out, tmp_path / "pl")
    pl = json.loads((tmp_path / "pl/solution/results.json").read_text())
    assert pl["score"] == round(8.5 / 12, 4) and "late penalty" in pl["message"]
    export("nbgrader", out, tmp_path / "course")
    page = (tmp_path / "course/feedback/solution/assignment1/assignment1.html").read_text()
    assert "1.5 points off" in page
    stamp = (tmp_path / "course/feedback/solution/assignment1/timestamp.txt").read_text()
    assert stamp == "2026-12-01 10:00:00.000000 UTC"
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    export("canvas", out, tmp_path / "cv", "--roster", roster, "--canvas-assignment",
           "Assignment 1 (12345)")
    assert "8.5" in (tmp_path / "cv/canvas_grades.csv").read_text().splitlines()[2]
    plain = json.loads((tmp_path / "gs/partial/results.json").read_text())
    assert plain["score"] == 7 and "late" not in plain["output"]


# ---- bad input: a clear message, exit 2, nothing written -----------------------------------

def _refused(argv: list[str], words: str, capsys, out: Path) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.startswith("error: "), err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".export-tmp-" in p.name]
    return err


@pytest.mark.parametrize("make, words", [
    (lambda p: None, "no such folder"),
    (lambda p: p.mkdir(), "it has no results.json"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text("{not json")), "not valid JSON"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text('{"a": 1}')),
     "lacks 'assignment'"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text(
        '{"assignment": "assignment1", "submissions": []}')), "no feedback/ folder"),
    (lambda p: (p.mkdir(), (p / "feedback").mkdir(), (p / "results.json").write_text(
        '{"assignment": "assignment1", "submissions": [{"student_id": "x"}]}')),
     "submission 0 of results.json lacks"),
])
def test_is_a_folder_that_is_not_a_grading_output_refused(make, words, tmp_path, capsys):
    make(tmp_path / "in")
    for fmt in ("gradescope", "nbgrader"):
        err = _refused(["export", "--format", fmt, "--out", str(tmp_path / "x"),
                        str(tmp_path / "in")], words, capsys, tmp_path / "x")
        assert "is not a grading output" in err and "python -m autograder grade" in err


def test_is_an_unknown_format_refused(graded, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["export", "--format", "moodle", "--out", str(tmp_path / "x"), str(graded)])
    assert info.value.code == 2 and "invalid choice: 'moodle'" in capsys.readouterr().err
    from autograder.errors import UsageError
    from autograder.export import Settings
    from autograder.export import export as do_export

    with pytest.raises(UsageError, match="unknown format 'moodle'"):
        do_export("moodle", graded, tmp_path / "x", Settings())
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("rows, encoding, extra, words", [
    (ROSTER + [["Again, Sam", "105", "S105", "Solution", "Section A", ""]], "utf-8", [],
     "duplicate 'SIS Login ID' values: solution"),
    (ROSTER, "utf-16", [], "UTF-16"),
    ([["Müller, Jörg", "106", "S106", "joerg", "Section A", ""]], "latin-1", [],
     "is not UTF-8"),
    (ROSTER, "utf-8", ["--roster-key", "Email"], "has no column 'Email'"),
])
def test_is_a_bad_roster_refused(graded, tmp_path, capsys, rows, encoding, extra, words):
    roster = _roster(tmp_path / "roster.csv", rows, encoding)
    _refused(["export", "--format", "canvas", "--out", str(tmp_path / "cv"), "--roster",
              str(roster), "--canvas-assignment", "Assignment 1 (12345)", *extra,
              str(graded)], words, capsys, tmp_path / "cv")


def test_does_canvas_need_its_roster_and_column(graded, tmp_path, capsys):
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    base = ["export", "--format", "canvas", "--out", str(tmp_path / "cv")]
    _refused([*base, "--canvas-assignment", "A (1)", str(graded)], "needs --roster", capsys,
             tmp_path / "cv")
    _refused([*base, "--roster", str(roster), str(graded)], "--canvas-assignment", capsys,
             tmp_path / "cv")
    _refused([*base, "--roster", str(roster), "--canvas-assignment", "Assignment 1",
              str(graded)], "NAME (ID)", capsys, tmp_path / "cv")


def test_does_a_failure_midway_leave_the_old_export_untouched(graded, tmp_path, monkeypatch,
                                                              capsys):
    from autograder import export as exports

    out = tmp_path / "gs"
    export("gradescope", graded, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(run, staging, settings):
        staging.write("solution/results.json", "{}")
        raise OSError("disk full")

    monkeypatch.setitem(exports.FORMATS, "gradescope", broken)
    with pytest.raises(OSError):
        exports.export("gradescope", graded, out, exports.Settings())
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if ".export-tmp-" in p.name]


def test_is_a_submission_that_could_not_be_graded_exported_as_such(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{")
    proc = run_cli("grade", "--assignment", "assignment1", "--out", tmp_path / "out",
                   "--parts", "corr2d", tmp_path / "broken.ipynb")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = results(tmp_path / "out")["broken"]["error"]
    export("gradescope", tmp_path / "out", tmp_path / "gs")
    gs = json.loads((tmp_path / "gs/broken/results.json").read_text())
    assert set(gs) == GRADESCOPE_TOP and gs["score"] == 0 and gs["tests"] == []
    assert "could not be graded" in gs["output"] and error in gs["output"]
    export("prairielearn", tmp_path / "out", tmp_path / "pl")
    pl = json.loads((tmp_path / "pl/broken/results.json").read_text())
    assert pl["gradable"] is False and pl["score"] == 0 and pl["format_errors"] == [error]
    roster = _roster(tmp_path / "roster.csv", [["Broken, Bo", "9", "S9", "broken", "A", ""]])
    proc = export("canvas", tmp_path / "out", tmp_path / "cv", "--roster", roster,
                  "--canvas-assignment", "Assignment 1 (12345)")
    assert len((tmp_path / "cv/canvas_grades.csv").read_text().splitlines()) == 2
    assert "not graded" in (tmp_path / "cv/unmatched.csv").read_text()
    assert "not graded: broken" in proc.stderr


@pytest.mark.parametrize("extra, words", [
    (["--assignment", "nope"], "unknown assignment"),
    (["--assignment", "assignment1", "--parts", "corr2d,corr3d"], "unknown part(s)"),
])
def test_is_a_bad_bundle_refused(extra, words, tmp_path, capsys):
    zip_path = tmp_path / "autograder.zip"
    assert cli.main(["bundle", "gradescope", *extra, "--out", str(zip_path)]) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
