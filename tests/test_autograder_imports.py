"""Does an answer that imports the reference instead of writing it earn nothing?

The course's package (``cnncourse``) and d2l hold working ``corr2d``, ``pool2d`` and
``Residual``. An answer cell that takes one of them, directly, through a wrapper, a
subclass, ``importlib`` or ``__import__`` with built strings, or ``exec``, scores zero for
that part with a message that says to write it; honest answers with helpers, decorators
and a base class of their own keep full marks. The refusal happens in the sandboxed child
(an audit hook and a provenance check that student code cannot switch off) and, for plain
import statements, in the grader before anything runs.
"""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from autograder.assignments import get_assignment
from autograder.pipeline import Options, grade

from helpers import REPO

FIXTURES = REPO / "tests" / "fixtures" / "imports"
POINTS = {"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}
# fixture -> the parts that must score zero (the others keep full marks), words to find
EXPECTED = {
    "import__course_package_for_every_answer_scores_zero":
        ({"corr2d", "pool2d", "residual"}, "imports cnncourse"),
    "import__d2l_aliases_score_zero": ({"corr2d", "residual"}, "imports d2l"),
    "import__wrapper_importing_inside_the_function_scores_zero": ({"corr2d"}, "imports d2l"),
    "import__wrapper_with_built_names_through_importlib_scores_zero":
        ({"corr2d"}, "imports cnncourse"),
    "import__dunder_import_with_built_strings_scores_zero": ({"pool2d"}, "imports cnncourse"),
    "import__exec_of_an_import_scores_zero": ({"corr2d"}, "imports d2l"),
    "import__subclass_of_the_course_block_scores_zero": ({"residual"}, "imports cnncourse"),
    "import__subclass_of_a_torch_container_scores_zero":
        ({"residual"}, "not written in your answer cell"),
    "import__function_code_swapped_for_a_library_one_scores_zero":
        ({"corr2d"}, "not written in your answer cell"),
    "import__honest_helpers_decorator_and_base_class_score_full": (set(), ""),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Every import fixture and the solution, graded once without the training part."""
    subs = tmp_path_factory.mktemp("imports")
    for nb in FIXTURES.glob("*.ipynb"):
        shutil.copy(nb, subs / nb.name)
    shutil.copy(REPO / "solutions/assignment1/assignment1.ipynb", subs / "solution.ipynb")
    full = get_assignment("assignment1")
    assignment = dataclasses.replace(full, parts=tuple(p for p in full.parts
                                                      if p.name in POINTS))
    out = tmp_path_factory.mktemp("grades")
    grade(assignment, [subs], out, Options(jobs=2))
    data = json.loads((out / "results.json").read_text())
    return {s["student_id"]: {p["name"]: p for p in s["parts"]} for s in data["submissions"]}


def test_is_every_import_fixture_given_an_expected_outcome(graded):
    assert {p.stem for p in FIXTURES.glob("*.ipynb")} == set(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_does_an_imported_answer_score_zero_and_say_to_write_it(graded, fixture):
    zero, words = EXPECTED[fixture]
    parts = graded[fixture]
    for name, points in POINTS.items():
        got = parts[name]
        if name in zero:
            assert got["score"] == 0.0, got
            assert words in got["feedback"] and "earns no points" in got["feedback"], got
        else:
            assert got["score"] == points, (name, got["feedback"])


def test_does_the_solution_keep_full_marks_beside_them(graded):
    assert all(graded["solution"][n]["score"] == pts for n, pts in POINTS.items())


def test_is_a_plain_import_refused_before_anything_runs(graded):
    """A plain import statement is caught in the grader and names its line."""
    feedback = graded["import__course_package_for_every_answer_scores_zero"]["corr2d"]
    assert "(line 1)" in feedback["feedback"] and "Write corr2d yourself" in \
        feedback["feedback"]


def test_does_the_sandbox_refuse_an_import_the_grader_cannot_see(graded):
    """Built strings get past any scan of the source; the audit hook in the child stops
    the import itself and reports it, whatever the answer does with the ImportError."""
    feedback = graded["import__wrapper_with_built_names_through_importlib_scores_zero"]
    assert "imports cnncourse" in feedback["corr2d"]["feedback"]
    assert "(line" not in feedback["corr2d"]["feedback"]
