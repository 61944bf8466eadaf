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

from helpers import REPO, make_fixtures

SOURCE = REPO / "solutions/assignment1/assignment1.ipynb"
RELEASED = REPO / "exercises/assignment1/assignment1.ipynb"
KOREAN = REPO / "exercises/assignment1/ko/assignment1.ipynb"
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
    expected = make_fixtures().all_fixtures()
    on_disk = {p.stem: json.loads(p.read_text())
               for p in (FIXTURES / "assignment1").glob("*.ipynb")}
    assert on_disk == expected, "run .venv/bin/python tests/fixtures/make_fixtures.py"


@pytest.mark.slow
@pytest.mark.data  # our grader trains ResNet-18 on the real files
def test_does_nbgrader_autograde_agree_with_our_totals(tmp_path, monkeypatch):
    """nbgrader runs the whole notebook with the source's tests restored; so do our totals,
    for the English notebooks and the Korean ones alike.

    Our grader gets a data root that does not exist yet, as on a fresh CI machine: it must
    link the data there before its sandboxed workers start (a CI run once scored 0 here)."""
    from nbgrader.api import Gradebook

    from autograder.pipeline import Options, grade

    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions", course / "solutions")
    shutil.copy(REPO / "nbgrader_config.py", course)
    korean = json.loads(KOREAN.read_text())  # the Korean release, and filled in
    for student, nb in (("sol", SOURCE.read_text()), ("rel", RELEASED.read_text()),
                        ("sol_ko", json.dumps(make_fixtures().filled(korean))),
                        ("rel_ko", KOREAN.read_text())):
        dest = course / "submitted" / student / "assignment1"
        dest.mkdir(parents=True)
        (dest / "assignment1.ipynb").write_text(nb)
    env = dict(os.environ, CNN_QUICK="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    db = f"sqlite:///{course / 'gradebook.db'}"
    for cmd in (["generate_assignment", "assignment1", "--force"],
                ["autograde", "assignment1", "--force"]):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *cmd, f"--db={db}"],
                              cwd=course, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with Gradebook(db, "cnn-course") as gb:
        theirs = {s: gb.find_submission("assignment1", s).score
                  for s in ("sol", "rel", "sol_ko", "rel_ko")}
    monkeypatch.setenv("CNN_DATA", str(tmp_path / "fresh-home" / "data"))
    _, ours = grade(get_assignment("assignment1"), [course / "submitted"], tmp_path / "out",
                    Options())
    why = {r.student_id: (r.error, [(p.name, p.score, p.feedback) for p in r.parts])
           for r in ours}
    assert {r.student_id: r.total for r in ours} == theirs == {
        "sol": 12.0, "rel": 0.0, "sol_ko": 12.0, "rel_ko": 0.0}, why


# --- the visible self-checks: the solution passes them, common mistakes fail them ---------
SELF_CHECKS = {"corr2d": "corr2d_answer", "pool2d": "pool2d_answer", "residual": "residual_answer"}


def _visible(gid: str) -> str:
    """A test cell's code above its hidden tests: what the student's notebook runs."""
    return source_of(cells(SOURCE)[gid]).split("### BEGIN HIDDEN TESTS")[0]


def _solution(gid: str) -> str:
    return "".join(line for line in source_of(cells(SOURCE)[gid]).splitlines(True)
                   if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def _run_self_check(gid: str, answer: str | None = None) -> dict:
    """Run the set-up, the helpers, the answers (the solution's, or ``answer`` for this
    part) and the visible part of the test cell ``gid``, as a student's kernel would."""
    ns: dict = {}
    for cell_id in ("setup", "self_check_messages", "self_check_helpers"):
        exec(compile(source_of(cells(SOURCE)[cell_id]), cell_id, "exec"), ns)  # noqa: S102
    for part, answer_id in SELF_CHECKS.items():
        code = answer if part == gid and answer is not None else _solution(answer_id)
        exec(compile(code, answer_id, "exec"), ns)  # noqa: S102 - our code and its variants
    exec(compile(_visible(gid), gid, "exec"), ns)  # noqa: S102
    return ns


@pytest.mark.parametrize("gid", ["corr2d", "pool2d", "residual"])
def test_does_the_solution_pass_the_visible_self_checks_quickly(gid, capsys):
    import time

    start = time.perf_counter()
    _run_self_check(gid)
    elapsed = time.perf_counter() - start
    printed = capsys.readouterr().out
    assert printed.count(": OK") + printed.count(" OK\n") >= 3 and "not implemented" not in printed
    assert elapsed < 1.0, f"{gid}'s self-checks took {elapsed:.2f} s; keep them under a second"


SQUARE_ONLY_CORR2D = '''def corr2d(X, K):
    k = K.shape[0]
    Y = torch.zeros((X.shape[0] - k + 1, X.shape[1] - k + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + k, j:j + k] * K).sum()
    return Y
'''
STRIDE_IS_WINDOW_POOL2D = '''def pool2d(X, pool_size, mode="max"):
    ph, pw = pool_size
    Y = torch.zeros((X.shape[0] // ph, X.shape[1] // pw))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i * ph:(i + 1) * ph, j * pw:(j + 1) * pw]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y
'''
GOOD_FORWARD = '''        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        shortcut = X if self.conv3 is None else self.conv3(X)
        return F.relu(Y + shortcut)
'''
SHORTCUT = "        shortcut = X if self.conv3 is None else self.conv3(X)\n"
FIRST_HALF = "        Y = F.relu(self.bn1(self.conv1(X)))\n"


def _mistake(answer_id: str, old: str, new: str) -> str:
    code = _solution(answer_id)
    assert old in code, f"the solution's {answer_id} no longer contains {old!r}"
    return code.replace(old, new)


# (test cell, its answer with the mistake, words the failure must contain)
MISTAKES = {
    "corr2d_square_only": ("corr2d", SQUARE_ONLY_CORR2D, "only works for square kernels"),
    "corr2d_kh_kw_swapped": ("corr2d", _mistake("corr2d_answer", "kh, kw = K.shape",
                                                "kw, kh = K.shape"), "swaps k_h and k_w"),
    "corr2d_flipped_kernel": ("corr2d", _mistake("corr2d_answer", "K[a, b]",
                                                 "K[kh - 1 - a, kw - 1 - b]"),
                              "the kernel is flipped"),
    "pool2d_stride_is_window": ("pool2d", STRIDE_IS_WINDOW_POOL2D,
                                "stride = window size (2, 2)"),
    "pool2d_default_avg": ("pool2d", _mistake("pool2d_answer", 'mode="max"', 'mode="avg"'),
                           "the default must be the maximum"),
    "pool2d_ph_pw_swapped": ("pool2d", _mistake("pool2d_answer", "ph, pw = pool_size",
                                                "pw, ph = pool_size"),
                             "p_h and p_w are swapped"),
    "residual_old_d2l_signature": (
        "residual", _mistake("residual_answer", "def __init__(self, num_channels,",
                             "def __init__(self, input_channels, num_channels,"),
        "Residual(num_channels, use_1x1conv=False, strides=1) with lazy layers"),
    "residual_relu_before_add": (
        "residual", _mistake("residual_answer", "F.relu(Y + shortcut)", "F.relu(Y) + shortcut"),
        "the ReLU is applied before the shortcut is added"),
    "residual_no_shortcut": (
        "residual", _mistake("residual_answer", "F.relu(Y + shortcut)", "F.relu(Y)"),
        "the shortcut is missing"),
    "residual_conv2_after_add": (
        "residual", _mistake("residual_answer", GOOD_FORWARD, FIRST_HALF + SHORTCUT +
                             "        return F.relu(self.bn2(self.conv2(Y + shortcut)))\n"),
        "conv2 is applied after the shortcut is added"),
    "residual_bn2_after_add": (
        "residual", _mistake("residual_answer", GOOD_FORWARD, FIRST_HALF + SHORTCUT +
                             "        return F.relu(self.bn2(self.conv2(Y) + shortcut))\n"),
        "bn2 is applied after the shortcut is added"),
    "residual_no_final_relu": (
        "residual", _mistake("residual_answer", "F.relu(Y + shortcut)", "Y + shortcut"),
        "the ReLU on the output is missing"),
    "residual_no_middle_relu": (
        "residual", _mistake("residual_answer", FIRST_HALF,
                             "        Y = self.bn1(self.conv1(X))\n"),
        "the ReLU between bn1 and conv2 is missing"),
    "residual_unnamed_layers": (
        "residual", _mistake("residual_answer", "self.bn1", "self.norm1"),
        "the layers must be the attributes conv1, conv2"),
    "residual_other_arithmetic": (
        "residual", _mistake("residual_answer", "F.relu(Y + shortcut)", "F.relu(Y + 2 * shortcut)"),
        "compare your forward with the block's order"),
}
SECTIONS = {"corr2d": "02_cross_correlation.html#", "pool2d": "05_pooling.html#",
            "residual": "08_resnet.html#the-residual-block"}


@pytest.mark.parametrize("case", MISTAKES)
def test_does_a_common_mistake_fail_its_self_check_with_the_cause(case):
    gid, answer, words = MISTAKES[case]
    with pytest.raises(AssertionError) as failed:
        _run_self_check(gid, answer)
    message = str(failed.value)
    assert words in message, message
    assert "\nLikely cause: " in message, message
    assert "\nReread: https://cnn-course.github.io/cnn-course/book/" + SECTIONS[gid] in message, \
        message


def test_do_the_stored_residual_sums_tell_the_mistakes_apart():
    """The stored numbers came from the solution (the solution passes), and each mistake's
    sums are far from the reference's and from each other's, so a match names one mistake."""
    ns = _run_self_check("residual")
    for label, by_mistake in ns["MISTAKES"].items():
        reference = tuple(ns["EXPECTED"][label][mode][1] for mode in ("eval", "train"))
        sums = [reference, *by_mistake.values()]
        assert len(by_mistake) == 6
        for i, first in enumerate(sums):
            for second in sums[i + 1:]:
                assert max(abs(a - b) for a, b in zip(first, second, strict=True)) > 0.05, label


def test_does_the_release_hold_the_same_visible_self_checks():
    """The student's notebook holds the same visible checks (nbgrader only cuts the rest)."""
    released = cells(RELEASED)
    for gid in SELF_CHECKS:
        assert source_of(released[gid]).strip() == _visible(gid).strip(), (
            f"{gid}: run `make exercises` (python -m autograder release)")
