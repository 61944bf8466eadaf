"""The exports with the platforms' own tools, as far as they run here: real nbgrader hands
our feedback to students through a temporary exchange (``release_feedback`` /
``fetch_feedback``), and the Gradescope bundle grades in a temporary root as Gradescope
would run it (with this checkout's Python instead of what ``setup.sh`` installs:
``AUTOGRADER_PYTHON``)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import REPO

SOLUTION = REPO / "solutions/assignment1/assignment1.ipynb"
RELEASE = REPO / "exercises/assignment1/assignment1.ipynb"
PARTIAL = REPO / "tests/fixtures/assignment1/corr2d__off_by_one.ipynb"
PARTS = "corr2d,pool2d,residual"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    # nbgrader's gradebook migrations call the alembic script of this venv
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra)


def _run(cmd: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=_env(**env))
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _nbgrader(tmp: Path, cwd: Path, *args: str, student: str | None = None):
    exchange = [f"--Exchange.root={tmp / 'exchange'}", "--CourseDirectory.course_id=cnn-course"]
    if student:
        exchange += [f"--Exchange.cache={tmp / 'cache' / student}",
                     f"--CourseDirectory.student_id={student}"]
    return _run([BIN / "nbgrader", *args, *exchange], cwd)


def test_does_nbgrader_hand_our_feedback_to_each_student(tmp_path):
    """release_assignment, fetch_assignment and submit as two students, collect, grade with
    our grader, export --format nbgrader, release_feedback, fetch_feedback: each student
    receives exactly the page we exported, with their own score."""
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    (course / "release/assignment1").mkdir(parents=True)
    exchange.mkdir()
    exchange.chmod(0o777)
    shutil.copyfile(RELEASE, course / "release/assignment1/assignment1.ipynb")
    _nbgrader(tmp_path, course, "release_assignment", "assignment1")
    answers = {"alice": SOLUTION, "bob": PARTIAL}
    for student, notebook in answers.items():
        home = tmp_path / student
        home.mkdir()
        _nbgrader(tmp_path, home, "fetch_assignment", "assignment1", student=student)
        shutil.copyfile(notebook, home / "assignment1/assignment1.ipynb")
        _nbgrader(tmp_path, home, "submit", "assignment1", student=student)
    _nbgrader(tmp_path, course, "collect", "assignment1")
    _run([sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
          "--out", tmp_path / "graded", "--parts", PARTS, "submitted"], course)
    _run([sys.executable, "-m", "autograder", "export", "--format", "nbgrader", "--out",
          ".", tmp_path / "graded"], course)
    for student in answers:
        folder = course / "feedback" / student / "assignment1"
        assert sorted(p.name for p in folder.iterdir()) == [
            "assignment1.html", "submission_secret.txt", "timestamp.txt"]
        assert (folder / "timestamp.txt").read_text() == (
            course / "submitted" / student / "assignment1/timestamp.txt").read_text().strip()
    _nbgrader(tmp_path, course, "release_feedback", "assignment1")
    for student, total in (("alice", "10"), ("bob", "7")):
        _nbgrader(tmp_path, tmp_path / student, "fetch_feedback", "assignment1",
                  student=student)
        fetched = list((tmp_path / student / "assignment1/feedback").glob("*/assignment1.html"))
        assert len(fetched) == 1, fetched
        exported = course / "feedback" / student / "assignment1/assignment1.html"
        assert fetched[0].read_bytes() == exported.read_bytes()
        assert f"Total: {total} out of 10" in fetched[0].read_text()
        assert fetched[0].parent.name == (exported.parent / "timestamp.txt").read_text()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    _run([sys.executable, "-m", "autograder", "bundle", "gradescope", "--assignment",
          "assignment1", "--out", out, "--parts", PARTS], REPO)
    return out


def _gradescope_root(tmp: Path, bundle: Path, *notebooks: Path) -> Path:
    """A root laid out as Gradescope's /autograder: the zip in source/, run_autograder
    copied beside it, the submission's files in submission/."""
    root = tmp / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # zipfile drops the modes: restore them as unzip does
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (root / "source" / info.filename).chmod(mode)
    shutil.copy2(root / "source/run_autograder", root / "run_autograder")
    for notebook in notebooks:
        shutil.copyfile(notebook, root / "submission" / notebook.name)
    return root


def _run_autograder(root: Path) -> dict:
    # the explicit switch: this checkout's Python instead of setup.sh's $ROOT/venv
    _run([root / "run_autograder"], root, AUTOGRADER_ROOT=str(root),
         AUTOGRADER_PYTHON=sys.executable)
    return json.loads((root / "results/results.json").read_text())


def test_does_the_bundle_hold_what_gradescope_runs(bundle):
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        config = json.loads(z.read("bundle.json"))
        requirements = z.read("requirements-grading.txt").decode()
    assert {"setup.sh", "run_autograder", "bundle.json", "requirements-grading.txt",
            "course/autograder/cli.py", "course/cnncourse/__init__.py",
            "course/solutions/assignment1/assignment1.ipynb",
            "course/locale/ko/LC_MESSAGES/autograder.po"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert not any("__pycache__" in n or n.startswith("course/tests") for n in names)
    assert config["assignment"] == "assignment1" and config["parts"] == PARTS.split(",")
    assert "torch==" in requirements and "numpy==" in requirements
    for script in ("setup.sh", "run_autograder"):
        with zipfile.ZipFile(bundle) as z:
            text = z.read(script).decode()
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
        assert 'ROOT="${AUTOGRADER_ROOT:-/autograder}"' in text


@pytest.mark.parametrize("notebook, score", [(SOLUTION, 10.0), (RELEASE, 0.0)])
def test_does_run_autograder_grade_in_a_temporary_root(bundle, tmp_path, notebook, score):
    from autograder.sandbox.launch import METHODS

    root = _gradescope_root(tmp_path, bundle, notebook)
    data = _run_autograder(root)
    assert data["score"] == score
    assert len(data["tests"]) == 19 and round(sum(t["score"] for t in data["tests"]), 4) == score
    assert {"name", "number", "score", "max_score", "status", "output", "visibility",
            "tags"} == set(data["tests"][0])
    isolation = data["extra_data"]["isolation"]
    assert isolation in METHODS and data["extra_data"]["isolation_details"]["method"] == isolation
    # the course's own folder (solutions, grader) is hidden from student code
    hidden = data["extra_data"]["isolation_details"].get("hidden_paths", [])
    assert isolation == "bwrap" or str(root / "source/course") in hidden
    assert list((root / "results").iterdir()) == [root / "results/results.json"]


def test_does_a_submission_without_a_notebook_get_a_result_that_says_so(bundle, tmp_path):
    root = _gradescope_root(tmp_path, bundle)
    (root / "submission/notes.txt").write_text("forgot the notebook")
    data = _run_autograder(root)
    assert data["score"] == 0 and data["tests"] == []
    assert "no notebook" in data["output"] and "assignment1.ipynb" in data["output"]


@pytest.mark.data
def test_does_prairielearn_get_the_real_training_curve(tmp_path):
    """The solution graded with every part (the training part's quick profile): its
    PrairieLearn results carry the feedback page's training-curve PNG as a data URL."""
    import base64

    shutil.copyfile(SOLUTION, tmp_path / "alice.ipynb")
    _run([sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
          "--out", tmp_path / "graded", tmp_path / "alice.ipynb"], REPO, CNN_QUICK="1")
    _run([sys.executable, "-m", "autograder", "export", "--format", "prairielearn", "--out",
          tmp_path / "pl", tmp_path / "graded"], REPO)
    data = json.loads((tmp_path / "pl/alice/results.json").read_text())
    assert data["score"] == 1.0 and len(data["images"]) == 1
    image = data["images"][0]
    assert set(image) == {"label", "url"} and "ResNet-18" in image["label"]
    prefix = "data:image/png;base64,"
    assert image["url"].startswith(prefix)
    assert base64.b64decode(image["url"][len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((tmp_path / "pl/alice/results.json").read_bytes()) < 1_000_000
