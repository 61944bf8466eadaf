"""Can a hostile submission earn points it did not earn, harm the grader or another student?

Every notebook in tests/fixtures/redteam/ is an attack named by its outcome, graded in ONE
run (two workers) together with a student who comes after the attacks, a student whose
folder ships code next to the notebook, and a network attack aimed at listeners this module
opens. Canaries are planted in the grader's environment, in solutions/ and the hidden tests
of a copy of the course, in the gradebook and in another student's submission; none may
appear in anything the run writes. The training part is left out (see
``redteam_support.fast_assignment``); the GPU memory bomb needs a GPU.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.pipeline import Options, grade

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "redteam"))
import redteam_attacks as attack  # noqa: E402
import redteam_inputs as inputs  # noqa: E402
import redteam_support as support  # noqa: E402

fx = support.load_fixtures()
FIXTURES = REPO / "tests" / "fixtures" / "redteam"
PART_TIMEOUT_S = 10.0
FULL = {"corr2d": 3.0, "pool2d": 3.0, "residual": 4.0}


def scores(**changed: float) -> dict[str, float]:
    return {**FULL, **changed}


# fixture -> (score of each part, words the changed part's feedback must contain)
EXPECTED: dict[str, tuple[dict[str, float], str]] = {
    "a_victim__other_student_with_a_secret_scores_full": (scores(), ""),
    # 1. results built to pass a comparison
    "corr2d__eq_always_true_scores_zero": (scores(corr2d=0), "expected a plain torch.Tensor"),
    "corr2d__tensor_subclass_fools_allclose_scores_zero":
        (scores(corr2d=0), "a subclass of torch.Tensor"),
    "corr2d__ndarray_subclass_fools_comparisons_scores_zero":
        (scores(corr2d=0), "expected a plain torch.Tensor"),
    "corr2d__scalar_that_broadcasts_scores_zero": (scores(corr2d=0), "returned shape ()"),
    "pool2d__one_by_one_result_that_broadcasts_scores_zero":
        (scores(pool2d=0), "returned shape (1, 1)"),
    "corr2d__tensor_methods_patched_scores_zero": (scores(corr2d=0), "values differ"),
    # 2. monkeypatching at import time
    "corr2d__patches_allclose_builtins_and_seeds_then_returns_zeros_scores_zero":
        (scores(corr2d=0), "values differ"),
    "corr2d__patches_allclose_builtins_and_seeds_but_correct_scores_full": (scores(), ""),
    # 3. faked success
    "corr2d__prints_passed_and_forges_report_frames_scores_zero":
        (scores(corr2d=0), "expected a plain torch.Tensor"),
    "corr2d__overrides_showtraceback_scores_zero":
        (scores(corr2d=0), "raised ValueError"),
    "corr2d__os_exit_0_mid_check_scores_zero": (scores(corr2d=0), "stopped early (exit code 0)"),
    "corr2d__sys_exit_0_scores_zero": (scores(corr2d=0), "raised SystemExit"),
    "corr2d__raises_keyboard_interrupt_scores_zero":
        (scores(corr2d=0), "raised KeyboardInterrupt"),
    "corr2d__system_exit_after_a_correct_definition_scores_full": (scores(), ""),
    "corr2d__writes_fake_results_files_scores_zero": (scores(corr2d=0), "values differ"),
    "corr2d__forged_probe_frames_of_every_wrong_type_scores_zero":
        (scores(corr2d=0), "raised an unreadable error"),
    "residual__forged_report_frames_of_every_wrong_type_scores_zero":
        (scores(residual=0), "input returned an unreadable value"),
    "corr2d__report_frame_nested_too_deeply_scores_zero":
        (scores(corr2d=0), "frame header is nested too deeply"),
    # 4. payloads that run code when unpickled
    "corr2d__returns_a_pickle_payload_scores_zero": (scores(corr2d=0), "returned __main__.Payload"),
    "pool2d__returns_pickled_bytes_scores_zero": (scores(pool2d=0), "returned builtins.bytes"),
    # 5. reading what it must not
    "corr2d__hunts_for_secrets_finds_none_scores_full": (scores(), ""),
    "corr2d__steals_expected_values_with_inspect_and_gc_scores_zero":
        (scores(corr2d=0), "values differ"),
    # 6. writing where it must not
    "corr2d__writes_where_it_must_not_changes_nothing_scores_full": (scores(), ""),
    # 7. resource abuse
    "corr2d__endless_loop_that_disarms_alarm_scores_zero":
        (scores(corr2d=0), f"did not finish within the {PART_TIMEOUT_S:g} s limit"),
    "corr2d__memory_bomb_scores_zero": (scores(corr2d=0), "raised MemoryError"),
    "corr2d__fork_bomb_scores_zero": (scores(corr2d=0), "raised PermissionError"),
    "corr2d__leaves_a_daemon_and_a_thread_scores_full": (scores(), ""),
    "corr2d__prints_300_mb_scores_full": (scores(), ""),
    "corr2d__fills_the_disk_scores_full": (scores(), ""),
    "corr2d__signals_and_limits_the_grader_scores_full": (scores(), ""),
    # 10. the library op the exercise asks for, reached indirectly
    "corr2d__calls_aten_convolution_through_getattr_scores_zero":
        (scores(corr2d=0), "convolution seen at run time"),
    "corr2d__calls_conv2d_through_importlib_and_eval_scores_zero":
        (scores(corr2d=0), "conv2d seen at run time"),
    "corr2d__calls_conv2d_from_the_torch_namespace_scores_zero":
        (scores(corr2d=0), "conv2d seen at run time"),
    "corr2d__switches_off_torch_function_then_calls_conv2d_scores_zero":
        (scores(corr2d=0), "switches off torch's function hooks (DisableTorchFunction"),
    "pool2d__calls_max_pool2d_through_getattr_scores_zero":
        (scores(pool2d=0), "max_pool2d seen at run time"),
    # 9. notebook tampering
    "tampered__stub_answers_with_tests_rewritten_and_checksums_recomputed_scores_zero":
        (scores(corr2d=0, pool2d=0, residual=0), "not implemented yet"),
    "tampered__correct_answers_with_tests_deleted_scores_full": (scores(), ""),
    "tampered__stub_answers_with_ids_and_points_changed_scores_zero":
        (scores(corr2d=0, pool2d=0, residual=0), "not implemented yet"),
    "tampered__duplicated_answer_id_last_copy_counts_scores_full": (scores(), ""),
    "tampered__cells_retyped_still_graded_as_code_scores_full": (scores(), ""),
    "tampered__kernelspec_changed_scores_full": (scores(), ""),
    "tampered__shell_escapes_not_run_pool2d_scores_zero":
        (scores(pool2d=0), "is not defined after running your answer cell"),
    "z_after__a_correct_student_after_the_attacks_scores_full": (scores(), ""),
    # built in this module: a student folder shipping code, and the network attack
    "mallory__ships_conftest_torch_py_and_pth_files_scores_full": (scores(), ""),
    "network__tcp_dns_and_unix_sockets_fail_scores_full": (scores(), ""),
}


class Listener:
    """A TCP listener on 127.0.0.1 and two Unix-socket listeners (a path and an abstract
    name) that record every connection and byte they get, until closed."""

    def __init__(self, unix_path: Path):
        self.received: list[str] = []
        self.sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM),
                        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
                        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)]
        self.abstract = f"\0autograder-redteam-{os.getpid()}"
        self.sockets[0].bind(("127.0.0.1", 0))
        self.sockets[1].bind(str(unix_path))
        self.sockets[2].bind(self.abstract)
        self.port = self.sockets[0].getsockname()[1]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve, args=(s,), daemon=True)
                        for s in self.sockets]
        for s, t in zip(self.sockets, self.threads, strict=True):
            s.listen(8)
            s.settimeout(0.2)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(1)
            try:
                self.received.append(f"connection: {conn.recv(1024)!r}")
            except OSError:
                self.received.append("connection")
            conn.close()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        for s in self.sockets:
            s.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Plant the canaries, open the listeners, grade everything once, then look around."""
    tmp = tmp_path_factory.mktemp("redteam")
    canaries = support.new_canaries(attack.CANARY_PREFIX)
    course = support.course_copy(tmp / "course", canaries)
    out = tmp / "out"
    support.seed_gradebook(out, canaries.gradebook)
    subs = tmp / "submissions"
    subs.mkdir()
    for nb in FIXTURES.glob("*.ipynb"):
        shutil.copy(nb, subs / nb.name)
    mallory = subs / "mallory__ships_conftest_torch_py_and_pth_files_scores_full"
    mallory.mkdir()
    (mallory / "assignment1.ipynb").write_bytes(fx.notebook_bytes(fx.completed_solution()))
    for name, text in inputs.shipped_files().items():
        (mallory / name).write_text(text)
    listener = Listener(tmp / "listener.sock")
    payload = "RT-NETWORK-PAYLOAD"
    (subs / "network__tcp_dns_and_unix_sockets_fail_scores_full.ipynb").write_bytes(
        fx.notebook_bytes(fx.network_attempts(listener.port, str(tmp / "listener.sock"),
                                              listener.abstract, payload)))
    for marker in inputs.SHIPPED_MARKERS:
        Path(marker).unlink(missing_ok=True)
    uids = support.dedicated_uids(os.getpid())
    tmp_before = support.temp_entries()
    os.environ["RT_CANARY_ENV"] = canaries.env
    start = time.monotonic()
    try:
        run, results = grade(support.fast_assignment(), [subs], out,
                             Options(jobs=2, timeout_s=PART_TIMEOUT_S, course_root=course,
                                     isolation=support.isolation()))
    finally:
        os.environ.pop("RT_CANARY_ENV", None)
        listener.close()
    seconds = time.monotonic() - start
    data = json.loads((out / "results.json").read_text())
    texts = {"results.json": (out / "results.json").read_text(),
             "grades.csv": (out / "grades.csv").read_text()}
    texts |= {f"feedback/{p.name}": p.read_text() for p in (out / "feedback").glob("*.html")}
    texts |= {f"output of {r.student_id}/{p.name}": p.output for r in results for p in r.parts}
    return {"data": data, "by_id": {s["student_id"]: s for s in data["submissions"]},
            "results": {r.student_id: r for r in results}, "texts": texts, "out": out,
            "canaries": canaries.all(attack.VICTIM_CANARY), "listener": listener,
            "payload": payload, "course": course, "uids": uids, "tmp_before": tmp_before,
            "seconds": seconds, "subs": subs}


def part(graded: dict, student: str, name: str):
    return next(p for p in graded["results"][student].parts if p.name == name)


def test_is_every_hostile_fixture_given_an_expected_outcome(graded):
    on_disk = {p.stem for p in FIXTURES.glob("*.ipynb")}
    assert on_disk == set(fx.hostile()), \
        "run tests/fixtures/make_fixtures.py: the fixtures are stale"
    assert set(graded["results"]) == set(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_does_each_hostile_submission_get_exactly_its_expected_score(graded, fixture):
    expected, words = EXPECTED[fixture]
    result = graded["results"][fixture]
    assert result.error is None, result.error
    got = {p.name: p.score for p in result.parts}
    assert got == expected, {p.name: p.feedback for p in result.parts}
    for p in result.parts:
        if p.score < p.max_score:
            assert words in p.feedback, p.feedback


def test_do_the_recorded_totals_match_in_every_output(graded):
    """results.json, grades.csv and the gradebook agree on every student's total."""
    from nbgrader.api import Gradebook

    rows = {line.split(",")[0]: line.split(",") for line in
            graded["texts"]["grades.csv"].splitlines()[1:]}
    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}", "cnn-course") as gb:
        for student, (expected, _) in EXPECTED.items():
            total = sum(expected.values())
            assert graded["by_id"][student]["total"] == total
            assert float(rows[student][-2]) == total
            assert gb.find_submission("assignment1", student).score == pytest.approx(total)


def test_do_planted_canaries_never_reach_any_output(graded):
    for where, canary in graded["canaries"].items():
        leaks = [name for name, text in graded["texts"].items() if canary in text]
        assert not leaks, f"the canary from {where} appears in {leaks}"
    hunt = part(graded, "corr2d__hunts_for_secrets_finds_none_scores_full", "corr2d").output
    assert "secrets found: []" in hunt, hunt


def test_did_the_network_attempts_fail_and_the_listeners_receive_nothing(graded):
    output = part(graded, "network__tcp_dns_and_unix_sockets_fail_scores_full",
                  "corr2d").output
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert set(lines) == {"tcp", "dns pypi.org", "dns example.com", "unix path",
                          "unix abstract"}, output
    assert not any(v in ("CONNECTED", "RESOLVED") for v in lines.values()), output
    assert graded["listener"].received == []
    assert graded["payload"] not in json.dumps(graded["texts"]["results.json"])


def test_did_nothing_unpickle_run_a_shell_escape_or_import_shipped_files(graded):
    for marker in inputs.SHIPPED_MARKERS:
        assert not os.path.exists(marker), f"{marker}: something ran student code outside"
    notes = part(graded, "tampered__shell_escapes_not_run_pool2d_scores_zero", "corr2d").notes
    assert any("were not run" in n for n in notes), notes


def test_did_writes_outside_the_sandbox_fail_and_change_nothing(graded):
    output = part(graded, "corr2d__writes_where_it_must_not_changes_nothing_scores_full",
                  "corr2d").output
    written = [line for line in output.splitlines() if line.endswith("WRITTEN") or
               "THROUGH LINK" in line]
    # only the job's own private /tmp (a tmpfs that dies with the job) took a write
    assert all(line.startswith("/tmp/") for line in written), written
    if graded["data"]["isolation"]["method"] != "rlimits":  # rlimits shares the host's /tmp
        assert not Path("/tmp/redteam-was-here.txt").exists()
    assert support.git_status(graded["course"]) == "", "the course copy changed"
    owned = support.files_owned_by([REPO, graded["course"], graded["out"], graded["subs"],
                                    Path(sys.prefix)], graded["uids"])
    assert owned == [], f"files written by sandboxed code: {owned[:5]}"
    out_files = sorted(p.name for p in graded["out"].iterdir())
    assert out_files == ["answers.json", "feedback", "gradebook.db", "grades.csv",
                         "results.json"], out_files
    fake = graded["by_id"]["corr2d__writes_fake_results_files_scores_zero"]
    assert fake["total"] == 7.0


def test_is_no_process_file_or_folder_of_the_run_left(graded):
    assert support.processes_of(graded["uids"]) == []
    assert support.our_temp_leftovers(graded["tmp_before"], os.getpid(), graded["uids"]) == []


def test_could_it_not_signal_limit_slow_or_trace_the_grader(graded):
    output = part(graded, "corr2d__signals_and_limits_the_grader_scores_full", "corr2d").output
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert len(lines) == 9 and not {"SENT", "DONE"} & set(lines.values()), output


def test_were_fork_bombs_daemons_and_threads_stopped(graded):
    bomb = part(graded, "corr2d__fork_bomb_scores_zero", "corr2d").output
    assert "processes started: 0" in bomb, bomb
    daemon = part(graded, "corr2d__leaves_a_daemon_and_a_thread_scores_full", "corr2d").output
    assert "DAEMON STARTED" not in daemon and "no daemon" in daemon, daemon


def test_could_memory_not_be_hoarded_outside_the_address_space_limit(graded):
    output = part(graded, "corr2d__memory_bomb_scores_zero", "corr2d").output
    assert "memfd MiB hoarded: 0" in output and "memfd refused" in output, output


def test_was_the_endless_loop_stopped_at_its_limit_from_outside(graded):
    p = part(graded, "corr2d__endless_loop_that_disarms_alarm_scores_zero", "corr2d")
    assert PART_TIMEOUT_S <= p.seconds < PART_TIMEOUT_S + 5


def test_was_a_flood_of_output_capped_and_every_string_escaped(graded):
    flood = part(graded, "corr2d__prints_300_mb_scores_full", "corr2d")
    assert 0 < len(flood.output) <= 64 << 10
    page = graded["texts"]["feedback/corr2d__prints_300_mb_scores_full.html"]
    assert len(page) < 100_000
    forged = graded["texts"][
        "feedback/corr2d__prints_passed_and_forges_report_frames_scores_zero.html"]
    assert "<script>alert" not in forged and "&lt;script&gt;alert" in forged


def test_did_a_full_disk_in_the_sandbox_stay_in_the_sandbox(graded):
    output = part(graded, "corr2d__fills_the_disk_scores_full", "corr2d").output
    written = int(output.split("MiB written:")[1].split()[0])
    assert written <= 3 * 64, output  # each folder a job can write to is a 64 MiB tmpfs
    assert "OSError" in output


def test_was_the_student_after_the_attacks_graded_as_if_alone(graded):
    for student in ("a_victim__other_student_with_a_secret_scores_full",
                    "z_after__a_correct_student_after_the_attacks_scores_full"):
        r = graded["results"][student]
        assert r.total == 10.0 and all(p.feedback.startswith("All ") for p in r.parts)


def test_did_the_whole_catalog_grade_in_ci_time(graded):
    assert graded["seconds"] < 240, graded["seconds"]


@pytest.mark.gpu
def test_does_a_gpu_memory_bomb_leave_the_gpu_to_the_next_job(tmp_path):
    """Grab all GPU memory, undo the per-process cap, then check the next job finds the
    device whole: GPU memory is freed with the process, whatever the student did."""
    from autograder.sandbox import launch as sandbox
    from autograder.sandbox.pool import WorkerPool, default_private_dirs

    bomb = """
import torch
torch.cuda.set_per_process_memory_fraction(1.0)
hoard = []
try:
    while True:
        hoard.append(torch.empty(1 << 30, dtype=torch.uint8, device="cuda"))
except RuntimeError as e:
    print("grabbed GiB:", len(hoard), type(e).__name__)
"""
    check = """
import torch
free, total = torch.cuda.mem_get_info()
print("free fraction:", round(free / total, 3))
"""
    from autograder.jobs import Cell, Job, Limits

    limits = Limits(timeout_s=60, file_bytes=1 << 24, memory_bytes=0, output_bytes=1 << 16,
                    result_bytes=1 << 20)

    def job(source: str) -> Job:  # the seccomp profile of a part that trains on the GPU
        return Job("gpu", "plain_data", "not_defined", (Cell("gpu", source),), limits)

    with WorkerPool(1, sandbox.available_methods()[0], default_private_dirs(tmp_path),
                    gpu=True) as pool:
        grabbed = pool.run(job(bomb)).output
        after = pool.run(job(check)).output
    assert "grabbed GiB:" in grabbed and int(grabbed.split("GiB:")[1].split()[0]) > 0, grabbed
    assert float(after.split("free fraction:")[1].split()[0]) > 0.9, after
