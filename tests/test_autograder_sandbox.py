"""Is student code really confined? Each question runs a small job in a sandboxed worker.

The jobs print what they could see or do; what a job's cells print comes back capped, so
the answers are read from that output. One worker pool (the strongest method available
here) is shared; the root-only fallback method gets its own.
"""
from __future__ import annotations

import io
import os
import socket
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.checking.compare import close
from autograder.checking.report import Report, error_info, parse_report
from autograder.jobs import Cell, Job, Limits, RunSettings
from autograder.output.results import CheckResult, Figure, PartResult
from autograder.parts.base import Part, Prepared
from autograder.sandbox import launch as sandbox
from autograder.sandbox.pool import WorkerPool, default_private_dirs

from helpers import REPO

CANARY = "AUTOGRADER_TEST_CANARY"

TOY_TRAINING = '''
"""A stand-in for autograder/training.py: 'trains' by building the block once."""
import torch


def train_resnet(residual_cls, profile):
    block = residual_cls(4, use_1x1conv=True, strides=2)
    out = block(torch.zeros(2, 3, 8, 8))
    return {"profile": profile, "shape": list(out.shape),
            "train_loss": [2.3, 1.1, 0.7], "val_acc": [0.41, 0.66, 0.78]}
'''


class ToyTraining(Part):
    """How a part that trains plugs in: plain_data driver, reference numbers, a figure."""

    name = grade_id = "toy_training"
    object_name = "Residual"
    driver = "plain_data"
    limits = Limits(timeout_s=60.0)
    reference = {"val_acc": 0.78}  # a cached reference run's final accuracy

    def prepare(self, points: float, settings: RunSettings) -> Prepared:
        fields = {"module": "toy_training", "function": "train_resnet", "kwargs": {}}
        return Prepared(self, points, self.run_limits(settings), fields,
                        profile=settings.profile)

    def score(self, report: Report, prepared: Prepared) -> PartResult:
        points = prepared.points
        frames = report.frames.get("data") or []
        header = frames[0][0] if frames else {}
        if header.get("ok") is not True:
            err = error_info(header.get("error"))
            return PartResult.zero(self.name, points, f"training {err.describe()}")
        data = header["data"]
        acc = data.get("val_acc") if isinstance(data, dict) else None
        ok = isinstance(acc, list) and acc and all(isinstance(a, float) for a in acc) and \
            close(np.array(acc[-1:]), np.array([self.reference["val_acc"]]), "float32")[0]
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure as MplFigure

        fig = MplFigure(figsize=(4, 3))
        fig.add_subplot().plot(data.get("train_loss", []))
        png = io.BytesIO()
        fig.savefig(png, format="png")
        check = CheckResult("final validation accuracy", bool(ok), 1.0,
                            "passed" if ok else f"got {acc}")
        result = PartResult.from_checks(self.name, points, [check])
        return PartResult(result.name, result.score, result.max_score, result.feedback,
                          result.checks, figures=(Figure(png.getvalue(),
                                                         "training loss for each epoch"),))


LIMITS = Limits(timeout_s=20.0, file_bytes=1 << 24, result_bytes=1 << 24)


def job(source: str, timeout_s: float = 20.0, driver: str = "call",
        object_name: str = "not_defined", **fields) -> Job:
    return Job("test", driver, object_name, (Cell("test", textwrap.dedent(source)),),
               LIMITS.with_timeout(timeout_s), fields or {"probes": []})


@pytest.fixture(scope="module")
def private(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("out")
    (out / "gradebook.db").write_text("secret grades")
    module = tmp_path_factory.mktemp("toy") / "toy_training.py"
    module.write_text(TOY_TRAINING)
    return {"out": out, "module": module}


@pytest.fixture(scope="module")
def pool(private):
    os.environ[CANARY] = "canary-5b1f"
    method = sandbox.available_methods()[0]
    with WorkerPool(1, method, default_private_dirs(private["out"]),
                    (private["module"],)) as p:
        yield p
    os.environ.pop(CANARY, None)


def run(pool, source: str, **kw) -> str:
    outcome = pool.run(job(source, **kw))
    assert outcome.worker_failure is None, outcome.worker_failure
    return outcome.output


def test_is_the_isolation_what_this_machine_offers(pool):
    iso = pool.isolation()
    assert iso.method == sandbox.available_methods()[0]
    if os.geteuid() == 0:
        assert iso.unprivileged_uid and iso.uid != 0
    assert iso.seccomp


def test_can_student_code_see_solutions_the_grader_or_the_output(pool, private, tmp_path):
    in_home = Path.home() / f".autograder-test-{os.getpid()}"
    in_home.write_text("the grader's own file")
    paths = [REPO / "solutions", REPO / "autograder" / "parts", REPO / "tests",
             private["out"] / "gradebook.db", in_home, tmp_path]
    code = "import os\n" + "".join(f"print({str(p)!r}, os.path.exists({str(p)!r}))\n"
                                    for p in paths)
    try:
        out = run(pool, code + "import torch, cnncourse\nprint('imports work')\n")
    finally:
        in_home.unlink()
    for p in paths:
        assert f"{p} False" in out, out
    assert "imports work" in out


def test_is_the_environment_scrubbed(pool):
    out = run(pool, f"""
        import os
        print("env", {CANARY!r} in os.environ)
        for pid in ("1", str(os.getppid())):
            try:
                print(pid, "canary-5b1f" in open(f"/proc/{{pid}}/environ").read())
            except OSError as e:
                print(pid, "unreadable")
    """)
    assert "env False" in out and "True" not in out, out


def test_is_there_no_network(pool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        out = run(pool, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                print("CONNECTED")
            except OSError as e:
                print("refused", type(e).__name__)
            try:
                socket.getaddrinfo("pypi.org", 443)
                print("RESOLVED")
            except OSError as e:
                print("no dns", type(e).__name__)
        """)
    finally:
        listener.close()
    assert "CONNECTED" not in out and "RESOLVED" not in out and "refused" in out, out


def test_can_it_signal_or_trace_the_grader(pool):
    out = run(pool, f"""
        import os, signal
        for pid in ({os.getpid()}, os.getppid(), -1):
            try:
                os.kill(pid, signal.SIGTERM)
                print("SIGNALLED", pid)
            except OSError as e:
                print("denied", type(e).__name__)
    """)
    assert "SIGNALLED" not in out and out.count("denied") == 3, out


def test_are_leftover_processes_and_files_gone_before_the_next_job(pool):
    run(pool, """
        import os, time
        open("/tmp/leftover", "w").write("x")
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(30)
            os._exit(0)
        print("planted")
    """)
    out = run(pool, """
        import os
        mine = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                status = open(f"/proc/{pid}/status").read()
            except OSError:
                continue
            if f"Uid:\\t{os.getuid()}" in status:
                mine.append(pid)
        print("processes", len(mine), "tmp", sorted(os.listdir("/tmp")))
    """)
    assert "processes 2 " in out, out  # the server and this job, nothing left behind
    assert "leftover" not in out


def test_are_memory_and_processes_limited(pool):
    out = run(pool, """
        try:
            block = bytearray(8 << 30)
            print("ALLOCATED")
        except MemoryError:
            print("memory refused")
        import subprocess
        children = []
        try:
            for _ in range(2000):  # a fork bomb, made of cheap processes
                children.append(subprocess.Popen(["sleep", "20"]))
        except OSError:
            pass
        print("forks", len(children))
    """)
    assert "memory refused" in out, out
    assert int(out.split("forks")[1].split()[0]) < 2000
    assert "tmp" in run(pool, "print('tmp works')")


def test_is_printed_output_capped(pool):
    outcome = pool.run(job("print('x' * (8 << 20))"))
    assert outcome.output_bytes > 8 << 20
    assert len(outcome.output) <= LIMITS.output_bytes


def test_is_a_hang_stopped_at_its_wall_clock_limit(pool):
    start = time.monotonic()
    outcome = pool.run(job("import time\nwhile True:\n    time.sleep(0.1)\n", timeout_s=2))
    assert outcome.timed_out and time.monotonic() - start < 10
    assert "after" in run(pool, "print('after')")


def test_does_a_part_that_trains_plug_in_with_plain_data_and_a_figure(pool, private):
    """The extension point for residual_training: a plain_data driver and a PNG figure."""
    from autograder.output import feedback
    from autograder.output.results import SubmissionResult

    solution = (REPO / "solutions/assignment1/assignment1.ipynb").read_text()
    import json

    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in json.loads(solution)["cells"]}
    prepared = ToyTraining().prepare(2.0, RunSettings())
    outcome = pool.run(prepared.job((Cell("setup", cells["setup"]),
                                     Cell("residual_answer", cells["residual_answer"]))))
    result = prepared.score(parse_report(outcome, set(), prepared.limits.timeout_s))
    assert result.score == 2.0, result.feedback
    page = feedback.render(SubmissionResult("alice", (result,), 2.0), "assignment1")
    assert 'alt="training loss for each epoch"' in page


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces method needs root")
def test_does_the_fallback_without_bwrap_hide_the_same_folders(private):
    with WorkerPool(1, "namespaces", default_private_dirs(private["out"]),
                    (private["module"],)) as p:
        iso = p.isolation()
        assert iso.method == "namespaces" and iso.unprivileged_uid
        assert iso.network.startswith("none")
        out = run(p, f"""
            import os, socket
            print("solutions", os.path.exists({str(REPO / 'solutions')!r}))
            print("out", os.path.exists({str(private['out'] / 'gradebook.db')!r}))
            print("uid", os.getuid())
            import toy_training
            print("extra module importable")
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=1)
            except OSError as e:
                print("net", type(e).__name__)
        """)
    assert "solutions False" in out and "out False" in out and "uid 0" not in out, out
    assert "extra module importable" in out


def test_do_data_files_linked_from_elsewhere_stay_readable(private, tmp_path, monkeypatch):
    """cnncourse links the read-only shared copy into the data root; the worker must see
    the links' targets, or a training part finds dangling links (and tries to download)."""
    shared = tmp_path / "shared" / "FashionMNIST" / "raw"
    shared.mkdir(parents=True)
    (shared / "train-labels-idx1-ubyte.gz").write_bytes(b"the real bytes")
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-labels-idx1-ubyte.gz").symlink_to(shared / "train-labels-idx1-ubyte.gz")
    monkeypatch.setenv("CNN_DATA", str(tmp_path / "data"))
    assert str(shared) in sandbox._data_paths()
    target = str(raw / "train-labels-idx1-ubyte.gz")
    with WorkerPool(1, sandbox.available_methods()[0], default_private_dirs(private["out"]),
                    (private["module"],)) as p:
        out = run(p, f"print(open({target!r}, 'rb').read())\n")
    assert "the real bytes" in out, out
