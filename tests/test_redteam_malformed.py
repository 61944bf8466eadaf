"""Does broken input get a clear error naming the file and the reason, while everything else
is graded, the command exits 1, and nothing is lost?

One ``python -m autograder grade`` (called in-process, the training part left out: see
``redteam_support.fast_assignment``) over a class folder of broken and odd notebooks, a
late folder with duplicate ids, a zip with unsafe entries, a zip bomb and a zip with too
many entries. The large inputs are built here by tests/fixtures/redteam/redteam_fixtures.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from autograder import assignments, cli

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "redteam"))
import redteam_inputs as inputs  # noqa: E402
import redteam_support as support  # noqa: E402

fx = support.load_fixtures()
KOREAN = "kim min-jun 김민준"
FORMULA = "=HYPERLINK(\"evil\",\"click me\")"  # a name a spreadsheet would run
LONG_A, LONG_B = "a" * 125 + "-first", "a" * 125 + "-second"  # same first 120 characters

# input file stem -> words its per-file error must contain
UNREADABLE = {
    "invalid_json": "is not valid notebook JSON",
    "empty": "the file is empty",
    "binary_named_ipynb": "the file is not text",
    "nbformat_3": "nbformat 3 notebook",
    "json_nested_too_deep": "nested too deeply",
    "json_but_a_list": "not a notebook",
    "no_cells": "none of the answer cells",
    "another_notebook": "none of the answer cells",
    "one_hundred_mb": "over the 32 MiB limit",
}
# student id -> (score per part, words the feedback or notes of a lost part must contain)
GRADED = {
    "alice": ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    KOREAN: ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    "syntax_error_in_pool2d": ({"corr2d": 3.0, "pool2d": 0.0, "residual": 4.0},
                               "raised SyntaxError"),
    "oversized_corr2d_answer": ({"corr2d": 0.0, "pool2d": 3.0, "residual": 4.0},
                                "over the grader's 256 KiB limit"),
    "corr2d_nested_too_deeply": ({"corr2d": 0.0, "pool2d": 3.0, "residual": 4.0},
                                 "cannot be compiled"),
    "grade_ids_that_are_not_strings": ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    "colab_export": ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    "colab_export_without_nbgrader_metadata": (
        {"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    "bob_in_a_zip": ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    FORMULA: ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    LONG_A: ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
    LONG_B: ({"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}, ""),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("malformed")
    klass, late = tmp / "class", tmp / "late"
    klass.mkdir()
    late.mkdir()
    for name, data in inputs.MALFORMED_BYTES.items():
        (klass / f"{name}.ipynb").write_bytes(data)
    built = {"no_cells": inputs.no_cells(), "another_notebook": inputs.another_notebook(),
             "alice": fx.completed_solution(), KOREAN: fx.completed_solution(),
             FORMULA: fx.completed_solution(), LONG_A: fx.completed_solution(),
             LONG_B: fx.completed_solution(),
             "syntax_error_in_pool2d": inputs.syntax_error_in_one_part(),
             "oversized_corr2d_answer": inputs.oversized_answer(),
             "corr2d_nested_too_deeply": inputs.deeply_nested_answer(),
             "grade_ids_that_are_not_strings": inputs.non_string_grade_ids(),
             "colab_export": fx.colab_export(fx.completed_solution()),
             "colab_export_without_nbgrader_metadata":
                 fx.colab_export(fx.completed_solution(), keep_nbgrader=False)}
    for name, nb in built.items():
        (klass / f"{name}.ipynb").write_bytes(fx.notebook_bytes(nb))
    (klass / "one_hundred_mb.ipynb").write_bytes(inputs.hundred_mb_notebook())
    # the same students again: a stub under alice's id, and the Korean name decomposed (NFD)
    (late / "alice.ipynb").write_bytes(fx.notebook_bytes(fx.stubs()))
    (late / f"{inputs.nfd(KOREAN)}.ipynb").write_bytes(fx.notebook_bytes(fx.stubs()))
    good = fx.notebook_bytes(fx.completed_solution())
    unsafe = inputs.write_zip(tmp / "unsafe.zip", {
        "bob_in_a_zip.ipynb": good, "../escaped.ipynb": good, "/absolute.ipynb": good},
        links={"linked.ipynb": "/etc/passwd"})
    bomb = inputs.zip_bomb(tmp / "bomb.zip")
    many = inputs.many_entries_zip(tmp / "many.zip")
    out = tmp / "out"
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout):
        mp.setitem(assignments.ASSIGNMENTS, "assignment1", support.fast_assignment())
        code = cli.main(["grade", "--assignment", "assignment1", "--out", str(out),
                         "--jobs", "2", "--timeout", "10", "--isolation", support.isolation(),
                         str(klass), str(late),
                         str(unsafe), str(bomb), str(many)])
    data = json.loads((out / "results.json").read_text())
    count = len(list(klass.iterdir())) + len(list(late.iterdir())) + 4 + 2
    return {"code": code, "stdout": stdout.getvalue(), "data": data, "out": out,
            "by_key": {s["key"]: s for s in data["submissions"]}, "tmp": tmp,
            "inputs": count}


def test_does_the_command_exit_1_when_some_files_could_not_be_graded(graded):
    assert graded["code"] == 1, graded["stdout"]


def test_is_every_input_recorded_exactly_once(graded):
    """Each notebook, each zip entry refused on its own and each refused zip is one entry."""
    keys = [s["key"] for s in graded["data"]["submissions"]]
    assert len(keys) == len(set(keys)) == graded["inputs"], keys


@pytest.mark.parametrize("stem", sorted(UNREADABLE))
def test_does_each_unreadable_file_get_an_error_naming_it_and_why(graded, stem):
    entry = graded["by_key"][stem]
    assert entry["parts"] == [] and entry["total"] == 0
    assert f"{stem}.ipynb" in entry["error"] and UNREADABLE[stem] in entry["error"], entry
    assert f"could not grade {stem}: " in graded["stdout"]
    page = (graded["out"] / "feedback" / f"{stem}.html").read_text()
    assert "could not be graded" in page


@pytest.mark.parametrize("student", sorted(GRADED))
def test_is_everything_else_graded_normally(graded, student):
    expected, words = GRADED[student]
    entry = graded["by_key"][student]
    assert entry["error"] is None, entry["error"]
    assert {p["name"]: p["score"] for p in entry["parts"]} == expected
    for p in entry["parts"]:
        if p["score"] < p["max_score"]:
            assert words in p["feedback"], p["feedback"]


def test_does_a_colab_notebook_without_grader_metadata_say_how_it_was_read(graded):
    notes = [n for p in graded["by_key"]["colab_export_without_nbgrader_metadata"]["parts"]
             for n in p["notes"]]
    assert any("was not found by its id" in n for n in notes), notes


@pytest.mark.parametrize("student", ["alice", KOREAN])
def test_does_a_duplicate_id_lose_nothing_of_the_first_copy(graded, student):
    first = graded["by_key"][student]
    dupes = [s for s in graded["data"]["submissions"]
             if s["student_id"] == student and s["key"] != student]
    assert len(dupes) == 1 and "duplicate student id" in dupes[0]["error"]
    assert "late" in dupes[0]["error"] or "late" in dupes[0]["source"]
    assert first["total"] == 10.0
    page = (graded["out"] / "feedback" / f"{student}.html").read_text()
    assert "Total: 10 out of 10" in page, "the duplicate replaced the real feedback page"
    rows = [r for r in (graded["out"] / "grades.csv").read_text().splitlines()
            if r.split(",")[0] == student]
    assert rows == [f"{student},3.0,3.0,4.0,10.0,10.0"]


def test_are_unsafe_zip_entries_refused_one_by_one_and_written_nowhere(graded):
    errors = {s["key"]: s["error"] for s in graded["data"]["submissions"]
              if "unsafe.zip:" in s["source"]}
    assert set(errors) == {"../escaped.ipynb", "/absolute.ipynb", "linked.ipynb"}, errors
    assert "leaves the archive's folder" in errors["../escaped.ipynb"]
    assert "absolute path" in errors["/absolute.ipynb"]
    assert "symbolic link" in errors["linked.ipynb"]
    assert not (graded["tmp"] / "escaped.ipynb").exists()
    assert not Path("/absolute.ipynb").exists()


@pytest.mark.parametrize("archive, words", [
    ("bomb", "would inflate"), ("many", "6000 entries, over the limit of 5000")])
def test_is_a_zip_bomb_refused_before_it_is_unpacked(graded, archive, words):
    entry = graded["by_key"][archive]
    assert f"{archive}.zip" in entry["source"] and words in entry["error"], entry


def test_do_odd_names_become_safe_feedback_files(graded):
    assert (graded["out"] / "feedback" / f"{KOREAN}.html").exists()
    names = [p.name for p in (graded["out"] / "feedback").iterdir()]
    assert all("/" not in n and not n.startswith(".") for n in names)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}", "cnn-course") as gb:
        assert gb.find_submission("assignment1", KOREAN).score == 10.0


def test_is_a_file_name_that_looks_like_a_formula_written_as_text_in_the_csv(graded):
    rows = (graded["out"] / "grades.csv").read_text().splitlines()
    assert not any(r.startswith(("=", '"=')) for r in rows)
    assert any(r.startswith(("'=", "\"'=")) for r in rows), rows


def test_do_two_long_ids_with_the_same_beginning_keep_their_own_pages(graded):
    pages = [p for p in (graded["out"] / "feedback").iterdir() if p.name.startswith("a" * 50)]
    assert len(pages) == 2 and all(len(p.name) < 200 for p in pages)
    assert all("Total: 10 out of 10" in p.read_text() for p in pages)
