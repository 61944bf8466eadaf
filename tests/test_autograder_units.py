"""Do the autograder's pieces hold up on their own: the wire format, comparisons, notebook
and zip reading, results, feedback pages? (No workers are started here.)"""
from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder.checking import compare
from autograder.checking.report import Value
from autograder.checking.scans import static_library_uses
from autograder.intake import notebook, submissions
from autograder.output import feedback
from autograder.output.results import CheckResult, Figure, GradingRun, PartResult, SubmissionResult
from autograder.sandbox.inside import wire

from helpers import REPO

SOLUTION = REPO / "solutions/assignment1/assignment1.ipynb"
ANSWER_NAMES = {"corr2d_answer": "corr2d", "pool2d_answer": "pool2d",
                "residual_answer": "Residual"}


# --- wire ---------------------------------------------------------------------------------
def test_does_an_array_survive_the_wire_bit_for_bit():
    a = np.random.default_rng(0).standard_normal((3, 4)).astype("<f4")
    frame = wire.encode_frame({"op": "x", "value": wire.describe_array("<f4", [3, 4], 0)},
                              [a.tobytes()])
    (header, blobs), = wire.split_frames(frame)[0]
    b = wire.decode_array(header["value"], blobs)
    assert b.dtype == a.dtype and np.array_equal(a, b) and not b.flags.writeable


@pytest.mark.parametrize("desc, blob, words", [
    ({"dtype": "|O", "shape": [1], "blob": 0}, b"\0" * 8, "accepted types"),
    ({"dtype": "<f4", "shape": [2, 2], "blob": 0}, b"\0" * 12, "needs 16"),
    ({"dtype": "<f4", "shape": [-1], "blob": 0}, b"", "shape"),
    ({"dtype": "<f4", "shape": [1], "blob": 3}, b"\0" * 4, "does not exist"),
    ({"dtype": "<f4", "shape": [1], "blob": 0, "extra": 1}, b"\0" * 4, "exactly"),
])
def test_are_malformed_arrays_refused(desc, blob, words):
    with pytest.raises(wire.WireError, match=words):
        wire.decode_array(desc, [blob])


def test_does_a_truncated_report_keep_only_whole_frames():
    one = wire.encode_frame({"op": "cell", "ok": True})
    two = wire.encode_frame({"op": "end"}, [b"abcd"])
    frames, problem = wire.split_frames(one + two[:-2])
    assert [h["op"] for h, _ in frames] == ["cell"] and problem


def test_is_a_non_json_header_refused():
    bad = (5).to_bytes(4, "big") + b"{oops"
    frames, problem = wire.split_frames(bad)
    assert frames == [] and "JSON" in problem


# --- comparing ----------------------------------------------------------------------------
def _tensor(a: np.ndarray, dtype: str = "float32") -> Value:
    return Value("tensor", "torch.Tensor", dtype, tuple(a.shape), a)


def test_does_judge_check_type_dtype_shape_then_values():
    expected = np.array([[1.0, 2.0]], np.float32)
    assert compare.judge(_tensor(expected.copy()), expected, "float32").ok
    assert compare.judge(Value("other", "builtins.list"), expected, "float32").problem == "type"
    assert compare.judge(Value("other", "x.Fake", tensor_subclass=True), expected,
                         "float32").problem == "type"
    assert compare.judge(_tensor(expected.astype(np.int64), "int64"), expected,
                         "float32").problem == "dtype"
    assert compare.judge(_tensor(expected.T.copy()), expected, "float32").problem == "shape"
    assert compare.judge(_tensor(expected + 1), expected, "float32").problem == "values"


def test_does_a_scalar_not_broadcast_into_a_match():
    expected = np.full((2, 2), 3.0, np.float32)
    assert compare.judge(_tensor(np.array(3.0, np.float32)), expected, "float32").problem == "shape"


def test_does_nan_never_match():
    expected = np.array([np.nan], np.float64)
    assert not compare.close(np.array([np.nan]), expected, "float64")[0]


def test_is_a_float32_answer_to_float64_inputs_close_enough():
    x = np.random.default_rng(1).standard_normal((4, 4))
    assert compare.close(x.astype(np.float32), x, "float32", "float64")[0]


# --- notebooks ----------------------------------------------------------------------------
@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not text"),
    (b"{not json", "not valid notebook JSON"),
    (b"[1, 2]", "not a notebook"),
    (json.dumps({"nbformat": 3, "worksheets": []}).encode(), "nbformat 3"),
    (json.dumps({"nbformat": 4, "metadata": {}}).encode(), "no list of cells"),
    (b" " * (notebook.MAX_NOTEBOOK_BYTES + 1), "MiB limit"),
])
def test_does_a_broken_notebook_get_a_clear_reason(data, words):
    with pytest.raises(notebook.NotebookError, match=words):
        notebook.parse_notebook(data)


def _solution() -> dict:
    return json.loads(SOLUTION.read_text())


def test_are_answer_cells_found_by_the_source_grade_ids():
    answers = notebook.extract_answers(_solution(), ANSWER_NAMES)
    assert all(len(v) == 1 for v in answers.sources.values())
    assert "def corr2d" in answers.sources["corr2d_answer"][0]
    assert not any(answers.notes.values())


def test_are_copied_and_retyped_answer_cells_run_in_order_with_a_note():
    nb = _solution()
    cell = next(c for c in nb["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == "corr2d_answer")
    copy = json.loads(json.dumps(cell))
    copy["cell_type"] = "markdown"
    nb["cells"].append(copy)
    answers = notebook.extract_answers(nb, ANSWER_NAMES)
    assert len(answers.sources["corr2d_answer"]) == 2
    notes = " ".join(answers.notes["corr2d_answer"])
    assert "2 cells carry" in notes and "'markdown'" in notes


def test_is_an_answer_cell_without_metadata_found_by_what_it_defines():
    nb = _solution()
    for c in nb["cells"]:
        if c["metadata"].get("nbgrader", {}).get("grade_id") == "pool2d_answer":
            del c["metadata"]["nbgrader"]
    answers = notebook.extract_answers(nb, ANSWER_NAMES)
    assert "def pool2d" in answers.sources["pool2d_answer"][0]
    assert "not found by its id" in answers.notes["pool2d_answer"][0]


def test_are_shell_escapes_and_magics_not_run():
    code, notes = notebook.clean_source("!rm -rf /tmp/x\n%time y = 1\ndef f():\n    !ls\n")
    assert "rm -rf" not in code.replace("# removed by the grader: !rm -rf", "")
    compile(code, "<test>", "exec")
    assert notes and "3 shell command" in notes[0]
    code, notes = notebook.clean_source("%%bash\necho hi\n")
    assert code == "" and "cell magic" in notes[0]


def test_does_the_source_give_points_per_part():
    from autograder.assignments import get_assignment

    a = get_assignment("assignment1")
    src = notebook.load_source(a.source_path(), a.setup_ids, a.parts)
    assert src.points == {"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0,
                          "residual_training": 2.0}
    assert [sid for sid, _ in src.setup] == ["setup"]


# --- library calls ------------------------------------------------------------------------
def test_does_the_static_scan_find_library_calls_by_name_and_string():
    src = "import torch.nn.functional as F\ndef f(X, K):\n    g = getattr(F, 'conv2d')\n" \
          "    return F.conv2d(X, K)\n"
    assert static_library_uses(src, ("conv2d",)) == [(3, "conv2d"), (4, "conv2d")]
    assert static_library_uses("def f(X):\n    # conv2d in a comment\n    return X\n",
                               ("conv2d",)) == []


# --- submissions and zips -----------------------------------------------------------------
def _zip(path: Path, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("entries, links, words", [
    ({"../evil.ipynb": b"{}"}, (), "leaves the archive"),
    ({"/abs.ipynb": b"{}"}, (), "absolute path"),
    ({}, ("link.ipynb",), "symbolic link"),
    ({"bomb.ipynb": b"\0" * (50 << 20)}, (), "inflate"),
])
def test_is_a_dangerous_zip_refused_whole(tmp_path, entries, links, words):
    z = _zip(tmp_path / "class.zip", entries, links)
    (sub,) = submissions.collect([z], "assignment1", "assignment1.ipynb", tmp_path / "work")
    assert sub.error and words in sub.error
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/abs.ipynb").exists()


def test_are_lms_and_nbgrader_layouts_read_with_the_right_student_ids(tmp_path):
    nb = SOLUTION.read_bytes()
    z = _zip(tmp_path / "bulk.zip", {
        "submitted/alice/assignment1/assignment1.ipynb": nb,
        "submitted/bob/assignment1/assignment1.ipynb": nb,
        "submitted/bob/assignment1/scratch.ipynb": nb})
    folder = tmp_path / "folder"
    (folder / "김민준").mkdir(parents=True)
    (folder / "김민준" / "my work.ipynb").write_bytes(nb)
    (folder / "carol smith.ipynb").write_bytes(nb)
    subs = submissions.collect([z, folder], "assignment1", "assignment1.ipynb", tmp_path / "w")
    assert [(s.student_id, s.error) for s in subs] == [
        ("alice", None), ("bob", None), ("carol smith", None), ("김민준", None)]


def test_is_a_repeated_student_id_an_error_on_the_second_copy(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "alice.ipynb").write_bytes(b"{}")
    first, second = submissions.collect([tmp_path / "a", tmp_path / "b"], "assignment1",
                                        "assignment1.ipynb", tmp_path / "w")
    assert first.error is None and "duplicate student id" in second.error
    assert first.key != second.key


def test_is_a_symlinked_notebook_not_followed(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mallory.ipynb").symlink_to("/etc/passwd")
    (sub,) = submissions.collect([tmp_path / "sub"], "assignment1", "assignment1.ipynb",
                                 tmp_path / "w")
    assert sub.data is None and "symbolic link" in sub.error


def test_are_student_ids_made_safe_as_file_names():
    assert submissions.safe_file_name("../../etc/passwd") == "_.._etc_passwd"
    assert submissions.safe_file_name("김민준") == "김민준"
    assert submissions.safe_file_name("a\nb") == "a_b"


# --- results and feedback -----------------------------------------------------------------
def _result() -> SubmissionResult:
    checks = [CheckResult("worked example", True, 1.0, "passed"),
              CheckResult("random cases", False, 2.0, "values differ by up to 0.5", True)]
    part = PartResult.from_checks("corr2d", 3.0, checks)
    part = PartResult(part.name, part.score, part.max_score, part.feedback, part.checks,
                      output="<script>alert('x')</script> & done\n",
                      figures=(Figure(b"\x89PNG fake", "training loss per epoch"),))
    return SubmissionResult("alice <b>", (part,), 3.0, key="alice <b>")


def test_does_partial_credit_follow_the_check_weights():
    part = _result().parts[0]
    assert part.score == 1.0 and "1 of 2 checks passed" in part.feedback


def test_do_results_round_trip_through_json_and_csv():
    run = GradingRun("assignment1", ("corr2d",), (_result(),), {"method": "bwrap"})
    data = json.loads(run.to_json())
    assert data["submissions"][0]["parts"][0]["score"] == 1.0
    again = SubmissionResult.from_dict(data["submissions"][0])
    assert again.total == 1.0 and again.key == "alice <b>"
    assert run.to_csv().splitlines() == ["student_id,corr2d,total,max_total",
                                         "alice <b>,1.0,1.0,3.0"]


def test_is_the_feedback_page_accessible_and_escaped():
    page = feedback.render(_result(), "assignment1")
    assert '<html lang="en">' in page and "<title>" in page and "<h1>" in page
    assert "<caption>Scores by part</caption>" in page and 'scope="col"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "alice &lt;b&gt;" in page
    assert 'alt="training loss per epoch"' in page and "data:image/png;base64," in page
    assert "Failed</span>" in page and "Passed</span>" in page


def test_does_an_ungraded_submission_get_a_page_saying_why():
    page = feedback.render(SubmissionResult("bob", (), 10.0, error="the file is empty"),
                           "assignment1")
    assert 'role="alert"' in page and "the file is empty" in page


# --- the output folder --------------------------------------------------------------------
def test_does_an_output_folder_refuse_a_second_grader_and_another_assignment(tmp_path):
    from autograder.errors import OutputLockedError
    from autograder.output.folder import OutputDir

    first = OutputDir(tmp_path / "out", "assignment1")
    with pytest.raises(OutputLockedError, match="in use by another grader"):
        OutputDir(tmp_path / "out", "assignment1")
    first.write(GradingRun("assignment1", ("corr2d",), (_result(),)))
    first.close()
    with pytest.raises(OutputLockedError, match="holds results of 'assignment1'"):
        OutputDir(tmp_path / "out", "assignment2")
    again = OutputDir(tmp_path / "out", "assignment1")
    assert list(again.results) == ["alice <b>"]
    again.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["feedback", "grades.csv", "results.json"]


def test_do_slots_keep_jobs_within_the_cores_and_one_on_the_gpu():
    import threading
    import time

    from autograder.scheduling import Slots

    slots = Slots(cores=2)
    lock = threading.Lock()
    state = {"cpu": 0, "gpu": 0, "max_cpu": 0, "max_gpu": 0}
    order: list[str] = []

    def job(name: str, cores: int, gpu: bool) -> None:
        with slots.hold(cores, gpu=gpu):
            with lock:
                order.append(name)
                state["cpu"] += min(cores, 2)
                state["gpu"] += gpu
                state["max_cpu"] = max(state["max_cpu"], state["cpu"])
                state["max_gpu"] = max(state["max_gpu"], state["gpu"])
            time.sleep(0.05)
            with lock:
                state["cpu"] -= min(cores, 2)
                state["gpu"] -= gpu

    plan = [("light-1", 1, False), ("train-1", 2, True), ("light-2", 1, False),
            ("train-2", 8, True), ("light-3", 1, False), ("light-4", 1, False)]
    threads = []
    for name, cores, gpu in plan:  # started in this order, a little apart
        threads.append(threading.Thread(target=job, args=(name, cores, gpu)))
        threads[-1].start()
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert state["max_cpu"] <= 2 and state["max_gpu"] == 1
    assert order.index("train-1") < order.index("light-2") < order.index("train-2")


def test_does_the_worker_clean_only_what_jobs_left_in_its_tmp(tmp_path):
    """/tmp may hold mount points of bound folders (a checkout under /tmp): never walked."""
    from autograder.sandbox.inside.server import Server

    bound = tmp_path / "cisim" / "work"
    bound.mkdir(parents=True)
    (bound / "keep.txt").write_text("a bound folder's file")
    server = Server(str(tmp_path), kill_all=False, proto_in=None, proto_out=None)
    (tmp_path / "job1").mkdir()
    (tmp_path / "job1" / "left.bin").write_bytes(b"x")
    (tmp_path / "stray.txt").write_text("left by a job")
    server._clean_up()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cisim"]
    assert (bound / "keep.txt").read_text() == "a bound folder's file"
