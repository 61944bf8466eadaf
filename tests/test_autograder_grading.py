"""Does the autograder give each kind of submission the score and message it deserves?

One grading run over the solution, the untouched release and every fixture notebook in
tests/fixtures/assignment1/ (named by outcome) is shared by all the questions below.
"""
from __future__ import annotations

import json
import shutil

import pytest

from autograder.assignments import get_assignment
from autograder.pipeline import Options, grade

from helpers import REPO

FIXTURES = REPO / "tests" / "fixtures" / "assignment1"
POINTS = {"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0, "residual_training": 2.0}
pytestmark = pytest.mark.data  # the training part trains on the real Fashion-MNIST files
PART_TIMEOUT_S = 15.0  # the endless-loop fixture costs exactly this; d2l imports slowly


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Grade everything once (two workers); returns results.json plus the output folder."""
    subs = tmp_path_factory.mktemp("submissions")
    shutil.copy(REPO / "solutions/assignment1/assignment1.ipynb", subs / "solution.ipynb")
    shutil.copy(REPO / "exercises/assignment1/assignment1.ipynb", subs / "release.ipynb")
    for nb in FIXTURES.glob("*.ipynb"):
        shutil.copy(nb, subs / nb.name)
    out = tmp_path_factory.mktemp("grades")
    run, results = grade(get_assignment("assignment1"), [subs], out,
                         Options(jobs=2, timeout_s=PART_TIMEOUT_S))
    data = json.loads((out / "results.json").read_text())
    by_id = {s["student_id"]: s for s in data["submissions"]}
    return {"data": data, "by_id": by_id, "out": out, "results": results}


def part(graded: dict, student: str, name: str) -> dict:
    return next(p for p in graded["by_id"][student]["parts"] if p["name"] == name)


def test_does_the_solution_score_full_marks(graded):
    s = graded["by_id"]["solution"]
    assert s["error"] is None
    assert s["total"] == s["max_total"] == 12.0
    assert all(p["feedback"].startswith(("All ", "Passed")) for p in s["parts"])


def test_does_the_untouched_release_score_zero_without_crashing(graded):
    s = graded["by_id"]["release"]
    assert s["error"] is None and s["total"] == 0.0
    for p in s["parts"]:
        assert "not implemented yet" in p["feedback"], p


# fixture, part, expected score, words the feedback must contain
MISTAKES = [
    ("corr2d__off_by_one", "corr2d", 0.0, "one too small"),
    ("corr2d__flipped_kernel", "corr2d", 0.0, "true convolution"),
    ("corr2d__integer_output", "corr2d", 0.0, "int64 tensor"),
    ("corr2d__calls_f_conv2d", "corr2d", 0.0, "conv2d (line 2)"),
    ("corr2d__calls_conv2d_indirectly", "corr2d", 0.0, "conv2d seen at run time"),
    ("pool2d__avg_computes_max", "pool2d", 1.5, "maximum of each window, not the mean"),
    ("pool2d__one_too_large", "pool2d", 0.0, "one too large"),
    ("pool2d__calls_max_pool2d", "pool2d", 0.0, "MaxPool2d (line 2)"),
    ("residual__no_1x1_when_shape_changes", "residual", 0.5, "1x1 convolution (conv3)"),
    ("residual__relu_before_add", "residual", 2.5, "ReLU before adding the shortcut"),
    ("residual__forward_indented_wrong", "residual", 0.0, "indented inside `__init__`"),
]


@pytest.mark.parametrize("fixture, name, score, words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_does_each_typical_mistake_get_its_score_and_message(graded, fixture, name, score,
                                                             words):
    got = part(graded, fixture, name)
    assert got["score"] == score, got
    assert words in got["feedback"], got["feedback"]
    # a wrong block may also train worse: the training part is asked about separately below
    others = [p for p in graded["by_id"][fixture]["parts"]
              if p["name"] not in (name, "residual_training")]
    assert all(p["score"] == p["max_score"] for p in others), others


def test_does_calling_the_library_op_name_the_reason(graded):
    feedback = part(graded, "corr2d__calls_f_conv2d", "corr2d")["feedback"]
    assert "earns no points" in feedback and "write yourself" in feedback


@pytest.mark.parametrize("fixture, words", [
    ("corr2d__endless_loop", f"did not finish within the {PART_TIMEOUT_S:g} s limit"),
    ("corr2d__crashes_its_process", "segmentation fault"),
])
def test_does_a_hang_or_crash_in_one_part_leave_the_others_their_points(graded, fixture,
                                                                        words):
    s = graded["by_id"][fixture]
    assert s["error"] is None
    assert part(graded, fixture, "corr2d")["score"] == 0.0
    assert words in part(graded, fixture, "corr2d")["feedback"]
    assert part(graded, fixture, "pool2d")["score"] == 3.0
    assert part(graded, fixture, "residual")["score"] == 4.0


def test_does_a_part_that_hangs_late_keep_the_checks_it_passed_before(graded):
    got = part(graded, "corr2d__hangs_on_1x1_kernels_after_passing_the_rest", "corr2d")
    assert got["score"] == 2.5  # 5 of 6 weights: only the edge-size check is lost
    assert "did not finish" in got["feedback"]


def test_are_points_and_tests_taken_from_the_source_not_the_submission(graded):
    s = graded["by_id"]["tampered__points_and_tests_edited"]
    assert s["max_total"] == 12.0 and s["total"] == 12.0
    assert {p["name"]: p["max_score"] for p in s["parts"]} == POINTS


def test_does_results_json_have_the_documented_shape(graded):
    data = graded["data"]
    assert data["assignment"] == "assignment1"
    assert {"isolation", "profile", "timing"} <= set(data)
    for s in data["submissions"]:
        assert isinstance(s["student_id"], str) and isinstance(s["total"], float)
        assert s["error"] is None or isinstance(s["error"], str)
        assert [p["name"] for p in s["parts"]] == list(POINTS)
        for p in s["parts"]:
            assert {"name", "score", "max_score", "feedback"} <= set(p)
            assert p["max_score"] == POINTS[p["name"]]
            passed = sum(c["weight"] for c in p["checks"] if c["passed"])
            total = sum(c["weight"] for c in p["checks"])
            if total:
                assert p["score"] == pytest.approx(p["max_score"] * passed / total)
        assert s["total"] == pytest.approx(sum(p["score"] for p in s["parts"]))


def test_does_grades_csv_have_a_column_per_part(graded):
    lines = (graded["out"] / "grades.csv").read_text().splitlines()
    assert lines[0] == "student_id,corr2d,pool2d,residual,residual_training,total,max_total"
    assert "solution,3.0,3.0,4.0,2.0,12.0,12.0" in lines
    assert len(lines) == 1 + len(graded["data"]["submissions"])


def test_is_there_a_feedback_page_per_student(graded):
    for s in graded["data"]["submissions"]:
        page = (graded["out"] / "feedback" / f"{s['student_id']}.html").read_text()
        assert f"for {s['student_id']}</h1>" in page and '<html lang="en">' in page


def test_do_hidden_checks_keep_their_inputs_hidden(graded):
    for s in graded["data"]["submissions"]:
        for p in s["parts"]:
            for c in p["checks"]:
                if c["hidden"] and not c["passed"]:
                    assert "expected [[" not in c["message"], c


def test_is_the_isolation_in_force_recorded(graded):
    iso = graded["data"]["isolation"]
    assert iso["method"] in ("bwrap", "namespaces", "rlimits")
    if shutil.which("bwrap"):
        assert iso["method"] == "bwrap" and iso["pid_namespace"] is True
        assert iso["network"].startswith("none")
    assert iso["seccomp"] in (True, False) and "notes" in iso


def test_does_the_gradebook_hold_each_students_part_scores(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}", "cnn-course") as gb:
        for s in graded["data"]["submissions"]:
            sub = gb.find_submission("assignment1", s["student_id"])
            assert sub.score == pytest.approx(s["total"])
            assert sub.max_score == 12.0
        assert len(gb.assignment_submissions("assignment1")) == len(graded["data"]["submissions"])


# --- the training part (residual_training): ResNet-18 built from the student's block ------
# fixture -> (expected training score, words its feedback must contain)
TRAINING = {
    "solution": (2.0, "Passed"),
    # it trains (0.5 on its own) but falls short; and its gradients do not reach every
    # weight, which the training points rest on
    "residual_training__main_path_detached": (0.0, "Expected validation accuracy of at least"),
    "residual_training__loss_explodes": (0.0, "NaN or infinite"),
    "residual__no_1x1_when_shape_changes": (0.0, "failed with RuntimeError"),
    "residual__forward_indented_wrong": (0.0, "forward"),
    # trains, but its weights do not reproduce the reported accuracy with the reference
    # forward pass, which is how the grader checks a run it did not watch
    "residual__relu_before_add": (0.0, "could not be reproduced"),
    "release": (0.0, "not implemented yet"),
}


@pytest.mark.parametrize("fixture", list(TRAINING))
def test_does_the_training_part_score_each_block_as_it_trains(graded, fixture):
    score, words = TRAINING[fixture]
    got = part(graded, fixture, "residual_training")
    assert got["score"] == score, got
    assert words in got["feedback"], got["feedback"]


def test_does_the_training_feedback_show_the_curves_with_alt_text(graded):
    page = (graded["out"] / "feedback" / "residual_training__main_path_detached.html").read_text()
    assert '<img src="data:image/png;base64,' in page
    assert 'alt="Training loss and validation accuracy per epoch for ResNet-18' in page


def test_is_the_training_profile_recorded_in_results_and_feedback(graded):
    training = graded["data"]["profile"]["training"]
    assert training["profile"] == "quick" and "ResNet-18 at 28x28" in training["description"]
    assert 0.0 < training["reference_val_acc"] <= 1.0 and training["time_limit_s"] > 0
    feedback = part(graded, "solution", "residual_training")["feedback"]
    assert "QUICK profile" in feedback


def test_is_identical_block_code_trained_once_per_run(graded):
    # most fixtures keep the solution's Residual: their training results are one result
    same = [part(graded, name, "residual_training") for name in
            ("solution", "corr2d__off_by_one", "pool2d__one_too_large",
             "corr2d__crashes_its_process", "tampered__points_and_tests_edited")]
    assert all(s["checks"] == same[0]["checks"] for s in same)
    # one run, even for copies graded at the same time (jobs=2): the same seconds too
    runs = {s["seconds"] for s in same[1:]}
    assert len(runs) == 1, runs
