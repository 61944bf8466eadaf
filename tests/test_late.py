"""Are submission times read, lateness measured and each late policy applied, everywhere a
grade is written (results.json, grades.csv, the gradebook, the feedback page)?

The class is in nbgrader's submitted/ layout with its timestamp.txt files, or in a zip
whose entries carry their times; only the corr2d part is graded (3 points), which is all
the penalty needs.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder import cli
from autograder.errors import UsageError
from autograder.late import (
    LatePolicy,
    nbgrader_time,
    parse_policy,
    parse_time,
    penalty,
    read_timestamps,
)

from helpers import REPO

SOLUTION = REPO / "solutions" / "assignment1" / "assignment1.ipynb"
DUE = "2026-11-30T23:59:00+09:00"
DUE_UTC = datetime(2026, 11, 30, 14, 59, tzinfo=timezone.utc)


def test_are_the_policies_nbgrader_s_and_a_share_per_started_day():
    day = 86400
    assert penalty(3.0, 1.5 * day, LatePolicy("none")) == 0.0
    assert penalty(3.0, 10, LatePolicy("zero")) == 3.0
    assert penalty(3.0, 1.5 * day, parse_policy("per-day:10")) == pytest.approx(0.6)
    assert penalty(3.0, 30 * day, parse_policy("per-day:10")) == 3.0  # never below zero
    assert penalty(3.0, -60, LatePolicy("zero")) == 0.0  # early
    for bad in ("per-day", "per-day:0", "per-day:150", "half", "per-week:10"):
        with pytest.raises(UsageError):
            parse_policy(bad)


def test_is_a_time_without_a_zone_refused():
    assert parse_time(DUE, "--due") == DUE_UTC
    assert parse_time("2026-11-30T14:59:00Z", "--due") == DUE_UTC
    for bad in ("2026-11-30T23:59:00", "tomorrow"):
        with pytest.raises(UsageError):
            parse_time(bad, "--due")


def test_is_nbgrader_s_timestamp_read():
    assert nbgrader_time("2026-12-02 05:00:00.123456 UTC") == \
        datetime(2026, 12, 2, 5, 0, 0, 123456, tzinfo=timezone.utc)
    assert nbgrader_time("not a time") is None


@pytest.mark.parametrize("text, words", [
    ("alice,2026-11-30T10:00:00+00:00\nalice,2026-11-30T11:00:00+00:00\n", "twice"),
    ("alice,2026-11-30T10:00:00\n", "no time zone"),
    ("alice,2999-01-01T00:00:00+00:00\n", "in the future"),
    ("alice\n", "expected student_id,timestamp"),
])
def test_is_a_bad_timestamps_file_refused(tmp_path, text, words):
    path = tmp_path / "times.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=words):
        read_timestamps(path)


def _class(root: Path) -> Path:
    """alice 1.5 days late, bob on time, carl without a timestamp.txt."""
    times = {"alice": DUE_UTC + timedelta(days=1.5), "bob": DUE_UTC - timedelta(hours=2)}
    for student in ("alice", "bob", "carl"):
        folder = root / "submitted" / student / "assignment1"
        folder.mkdir(parents=True)
        shutil.copy(SOLUTION, folder / "assignment1.ipynb")
        if student in times:  # as nbgrader writes it
            (folder / "timestamp.txt").write_text(
                times[student].strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    return root


def _grade(tmp_path: Path, *extra: str, subs: Path | None = None) -> tuple[int, Path]:
    out = tmp_path / "out"
    code = cli.main(["grade", "--assignment", "assignment1", "--out", str(out), "--profile",
                     "quick", "--parts", "corr2d", *extra,
                     str(subs or _class(tmp_path / "class"))])
    return code, out


def _results(out: Path) -> dict:
    return {s["student_id"]: s for s in json.loads((out / "results.json").read_text())
            ["submissions"]}


@pytest.mark.parametrize("policy, alice", [("none", 0.0), ("zero", 3.0),
                                           ("per-day:10", 0.6)])
def test_is_a_late_submission_penalised_under_each_policy(tmp_path, policy, alice):
    code, out = _grade(tmp_path, "--due", DUE, "--late-policy", policy)
    assert code == 0
    r = _results(out)
    assert r["alice"]["late_by_seconds"] == pytest.approx(1.5 * 86400, abs=1)
    assert r["alice"]["late_penalty"] == pytest.approx(alice)
    assert r["alice"]["score"] == pytest.approx(3.0 - alice)
    assert r["alice"]["timestamp_source"] == "nbgrader timestamp.txt"
    assert r["bob"]["late_by_seconds"] < 0 and r["bob"]["late_penalty"] == 0.0
    assert r["carl"]["timestamp"] is None and r["carl"]["timestamp_source"] == "none found"
    rows = {row["student_id"]: row for row in
            csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert float(rows["alice"]["late_penalty"]) == pytest.approx(alice)
    assert float(rows["alice"]["score"]) == pytest.approx(3.0 - alice)
    assert rows["carl"]["timestamp"] == ""
    page = (out / "feedback" / "alice.html").read_text()
    assert "after the due time" in page or alice == 0.0
    assert "not checked for lateness" in (out / "feedback" / "carl.html").read_text()
    assert "on time" in (out / "feedback" / "bob.html").read_text()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "cnn-course") as gb:
        sub = gb.find_submission("assignment1", "alice")
        assert sub.late_submission_penalty == pytest.approx(alice or 0.0)
        assert sub.timestamp.replace(tzinfo=timezone.utc) == \
            datetime.fromisoformat(r["alice"]["timestamp"]).astimezone(timezone.utc)


def test_does_a_timestamps_file_win_and_a_zip_entry_give_its_time(tmp_path):
    z = tmp_path / "class.zip"
    with zipfile.ZipFile(z, "w") as archive:
        info = zipfile.ZipInfo("dana.ipynb", date_time=(2026, 12, 1, 16, 0, 0))
        archive.writestr(info, SOLUTION.read_bytes())
        archive.writestr(zipfile.ZipInfo("erin.ipynb", date_time=(2026, 11, 29, 9, 0, 0)),
                         SOLUTION.read_bytes())
    times = tmp_path / "times.csv"
    times.write_text("student_id,timestamp\nerin,2026-12-03T00:00:00+09:00\n")
    code, out = _grade(tmp_path, "--due", DUE, "--late-policy", "zero", "--timestamps",
                       str(times), subs=z)
    assert code == 0
    r = _results(out)
    assert r["dana"]["timestamp_source"] == "zip entry"
    assert r["dana"]["timestamp"].startswith("2026-12-01T16:00:00")  # read as UTC
    assert r["dana"]["late_penalty"] == 3.0
    assert r["erin"]["timestamp_source"] == "--timestamps" and r["erin"]["score"] == 0.0


@pytest.mark.parametrize("extra, words", [
    (["--due", "2026-11-30T23:59:00"], "no time zone"),
    (["--late-policy", "zero"], "--late-policy needs --due"),
    (["--due", DUE, "--late-policy", "per-day:x"], "per-day:PERCENT"),
])
def test_is_bad_late_input_a_usage_error_that_writes_nothing(tmp_path, capsys, extra, words):
    code, out = _grade(tmp_path, *extra)
    assert code == 2 and words in capsys.readouterr().err
    assert not out.exists()


def test_do_the_exports_call_only_late_submissions_late(tmp_path):
    """An early submission (negative late_by_seconds) is not "submitted -2 hours after"."""
    code, out = _grade(tmp_path, "--due", DUE, "--late-policy", "per-day:10")
    assert code == 0
    assert cli.main(["export", "--format", "gradescope", "--out", str(tmp_path / "gs"),
                     str(out)]) == 0
    early = (tmp_path / "gs" / "bob" / "results.json").read_text()
    late = (tmp_path / "gs" / "alice" / "results.json").read_text()
    assert "after the due date" not in early
    assert "after the due date" in late and "0.6 points off" in late
