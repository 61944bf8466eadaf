"""Does the code keep the shape ARCHITECTURE.md describes?

What runs inside the sandbox imports nothing of the grader's; the files bound into the
sandbox are exactly that folder's; functions and modules stay within their budgets; one
switch means one thing everywhere; one limit is the same number from the part's
declaration to the worker.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from helpers import REPO

INSIDE = REPO / "autograder" / "sandbox" / "inside"
# Beyond the standard library and each other: what the sandbox's interpreter may import.
ALLOWED_INSIDE = {"numpy", "torch"}
# The training entry builds the course's ResNet-18 with the course's trainer (trusted code,
# bound read-only into the sandbox); no other module inside may import the course package.
ALLOWED_EXTRA = {"training.py": {"cnncourse"}}
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 350


def _imports(path: Path) -> set[tuple[str, int]]:
    """(top-level module, level) for every import in the file, nested ones included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], 0) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: must stay among the siblings
                found |= {(node.module or alias.name, node.level) for alias in node.names}
            else:
                found.add((node.module.split(".")[0], 0))
    return found


def test_does_code_inside_the_sandbox_import_only_stdlib_numpy_torch_and_itself():
    siblings = {p.stem for p in INSIDE.glob("*.py")}
    problems = []
    for path in sorted(INSIDE.glob("*.py")):
        allowed = ALLOWED_INSIDE | siblings | ALLOWED_EXTRA.get(path.name, set())
        for name, level in _imports(path):
            if level > 1 or (level == 1 and name.split(".")[0] not in siblings):
                problems.append(f"{path.name}: relative import {'.' * level}{name}")
            elif level == 0 and name not in allowed and name not in sys.stdlib_module_names \
                    and name != "__future__":
                problems.append(f"{path.name}: imports {name}")
    assert not problems, problems


def test_are_the_files_bound_into_the_sandbox_exactly_the_inside_folder():
    from autograder.sandbox import launch

    bound = {p.name for p in launch.inside_files()}
    assert bound == {p.name for p in INSIDE.glob("*.py")} - {"__init__.py"}
    assert {"worker.py", "server.py", "child.py", "drivers.py", "wire.py", "seccomp.py",
            "confine.py", "training.py"} <= bound
    argv = launch._bwrap_argv([], launch.inside_files(), 1 << 20, None, sys.executable)
    targets = {argv[i + 2] for i, a in enumerate(argv) if a == "--ro-bind"
               and argv[i + 2].startswith("/run/grader/")}
    assert targets == {f"/run/grader/{name}" for name in bound}


def test_does_no_grader_module_import_from_outside_its_layer_upwards():
    """Inside code is imported by the grader, never the other way round; intake, checking
    and output never import the pipeline or the command line."""
    problems = []
    for path in (REPO / "autograder").rglob("*.py"):
        rel = path.relative_to(REPO / "autograder").parts
        text = path.read_text()
        if rel[0] in ("intake", "checking", "output") and re.search(
                r"from \.\.(pipeline|cli|grading) import", text):
            problems.append(str(path))
    assert not problems, problems


def _exceptions() -> set[str]:
    """``path:name`` or ``path`` entries ARCHITECTURE.md's budget section allows."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    section = text.split("## Size budgets", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([^`]+)`", section, flags=re.M))


@pytest.mark.parametrize("package", ["autograder", "cnncourse"])
def test_do_functions_and_modules_keep_to_their_budgets(package):
    allowed = _exceptions()
    problems = []
    for path in sorted((REPO / package).rglob("*.py")):
        rel = str(path.relative_to(REPO))
        source = path.read_text()
        if len(source.splitlines()) > MAX_MODULE_LINES and rel not in allowed:
            problems.append(f"{rel}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in allowed:
                    problems.append(f"{rel}:{node.name}: {n} lines")
    assert not problems, problems


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "0", "false", "no", "off", "",
                                   " False ", "TRUE"])
def test_does_cnn_quick_mean_the_same_to_the_grader_and_to_the_chapters(value, monkeypatch):
    from autograder import cli
    from cnncourse.config import quick_mode

    monkeypatch.setenv("CNN_QUICK", value)
    chapters = quick_mode()  # what the data module and the trainer read
    assert cli.run_profile(None) == ("quick" if chapters else "full")
    assert cli.run_profile("full") == "full" and cli.run_profile("quick") == "quick"
    if value.strip().lower() in ("false", "0", "no", "off", ""):
        assert not chapters


def test_does_one_limit_travel_unchanged_from_the_declaration_to_the_worker():
    from autograder.jobs import Cell, Job
    from autograder.parts import ResidualTraining

    limits = ResidualTraining.limits
    wire = Job("x", "call", "f", (Cell("c", "pass"),), limits).to_wire(True, True)
    assert wire["limits"]["result_bytes"] == 40 << 20 == limits.result_bytes
    assert wire["limits"]["file_bytes"] == 40 << 20
    assert wire["limits"]["cpu_s"] == limits.cpu_s and wire["timeout_s"] == limits.timeout_s
    assert Job("x", "call", "f", (), limits).to_wire(True, False)["limits"]["processes"] is None


@pytest.mark.slow
def test_does_a_35_mib_training_result_pass_where_the_part_allows_40_mib(tmp_path):
    """The training part allows 40 MiB of report (its weights are 22 MB); the pool once cut
    every report at 32 MiB whatever the part said."""
    from dataclasses import replace

    from autograder.checking.report import parse_report, value_info
    from autograder.jobs import Cell, Job
    from autograder.parts import ResidualTraining
    from autograder.sandbox.launch import available_methods
    from autograder.sandbox.pool import WorkerPool, default_private_dirs

    n = (35 << 20) // 4  # float32 elements: 35 MiB
    code = f"import torch\ndef big():\n    return torch.ones({n})\n"
    limits = ResidualTraining.limits.with_timeout(60)
    probes = {"probes": [{"id": 0, "args": [], "kwargs": {}}], "forbidden_ops": []}
    job = Job("residual_training", "call", "big", (Cell("answer", code),), limits, probes)
    with WorkerPool(1, available_methods()[0], default_private_dirs(tmp_path)) as pool:
        outcome = pool.run(job)
        small = pool.run(Job("x", "call", "big", (Cell("answer", code),),
                             replace(limits, result_bytes=32 << 20), probes))
    assert outcome.worker_failure is None and outcome.protocol_error is None, outcome
    report = parse_report(outcome, {0}, 60)
    header, blobs = report.probes[0]
    value = value_info(header["value"], blobs)
    assert value.shape == (n,) and value.array is not None and float(value.array[-1]) == 1.0
    # under the old silent 32 MiB cap the same report is cut, and the grader says so
    assert small.protocol_error and "exceeded" in small.protocol_error


@pytest.mark.slow
def test_is_one_submission_graded_by_one_call_on_plain_data(tmp_path, monkeypatch):
    """grade_submission needs a submission's bytes, a prepared assignment (plain data that
    survives pickling, so it can travel to another machine) and a worker; it writes
    nothing and returns a frozen result."""
    import dataclasses
    import pickle

    from autograder.assignments import get_assignment
    from autograder.grading import grade_submission, prepare_assignment
    from autograder.intake.submissions import Submission
    from autograder.jobs import RunSettings
    from autograder.sandbox.launch import available_methods
    from autograder.sandbox.pool import WorkerPool, default_private_dirs

    full = get_assignment("assignment1")
    assignment = dataclasses.replace(full, parts=tuple(p for p in full.parts
                                                      if p.name != "residual_training"))
    prepared = pickle.loads(pickle.dumps(prepare_assignment(assignment, RunSettings())))
    good = (REPO / "tests/fixtures/redteam/"
            "z_after__a_correct_student_after_the_attacks_scores_full.ipynb").read_bytes()
    monkeypatch.chdir(tmp_path)
    with WorkerPool(1, available_methods()[0], default_private_dirs(tmp_path)) as pool:
        result = grade_submission(Submission("alice", "alice.ipynb", good), prepared, pool)
        broken = grade_submission(Submission("bob", "bob.ipynb", b"{"), prepared, pool)
    assert result.graded and result.total == result.max_total == 10.0, result.parts
    assert [p.name for p in result.parts] == ["corr2d", "pool2d", "residual"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.error = "changed"
    assert not broken.graded and "not valid notebook JSON" in broken.error
    assert list(tmp_path.iterdir()) == []  # no output folder, no file of any kind
