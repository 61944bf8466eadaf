"""Does grading on a Dask cluster give the same grades as grading here, lose nothing when a
worker dies, and let no one in?

Every cluster here is real: a ``LocalCluster`` of worker processes (started by the grader
or by the test), or ``dask worker`` processes started by the test, on loopback. The class
is graded without the training part (no data set needed), except in the test of a worker
that has no data set, which trains on the real Fashion-MNIST files.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import REPO, real_fashion_mnist

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")

from autograder import cli  # noqa: E402
from autograder.assignments import get_assignment  # noqa: E402
from autograder.pipeline import Options, grade  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "assignment1"
SOLUTION = REPO / "solutions" / "assignment1" / "assignment1.ipynb"
RELEASE = REPO / "exercises" / "assignment1" / "assignment1.ipynb"
NO_TRAINING = ("corr2d", "pool2d", "residual")
# `dask scheduler` and `dask worker` serve HTTP (dashboard, /health) on every interface, at
# 8787 for the scheduler, even with --no-dashboard; the tests keep it on loopback
LOOPBACK_HTTP = "127.0.0.1:0"
# typical mistakes, a hostile one (it kills its own process) and a slow one (an endless
# loop, stopped at the part's time limit), so that work is in flight when a worker dies
MISTAKES = ["corr2d__off_by_one", "corr2d__flipped_kernel", "corr2d__calls_f_conv2d",
            "corr2d__crashes_its_process", "corr2d__endless_loop", "pool2d__one_too_large",
            "pool2d__avg_computes_max", "residual__relu_before_add",
            "residual__no_1x1_when_shape_changes"]


def _class(folder: Path) -> Path:
    """Twelve students: the solution, the untouched release, nine mistakes, and one
    duplicate (a copy of the solution handed in by another student)."""
    folder.mkdir(parents=True)
    shutil.copy(SOLUTION, folder / "sol.ipynb")
    shutil.copy(SOLUTION, folder / "sol_copy.ipynb")
    shutil.copy(RELEASE, folder / "release.ipynb")
    for name in MISTAKES:
        shutil.copy(FIXTURES / f"{name}.ipynb", folder / f"{name}.ipynb")
    return folder


def _summary(out: Path) -> dict:
    """Per student: the total and every check's verdict."""
    data = json.loads((out / "results.json").read_text())
    return {s["student_id"]: (s["total"], s["error"],
                              [(p["name"], p["score"], [(c["name"], c["passed"])
                                                        for c in p["checks"]])
                               for p in s["parts"]])
            for s in data["submissions"]}


def _descendants(pids: set[int]) -> dict[int, float]:
    """Every process under ``pids``, with its start time (pids are reused)."""
    import psutil

    found = {}
    for pid in pids:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                found[child.pid] = child.create_time()
            except psutil.Error:
                pass
    return found


def _alive(procs: dict[int, float]) -> list[int]:
    import psutil

    alive = []
    for pid, started in procs.items():
        try:
            if psutil.Process(pid).create_time() == started:
                alive.append(pid)
        except psutil.Error:
            pass
    return alive


def _sandboxes(client) -> list[str]:
    """Sandboxed workers (bwrap, or the worker script itself) under the cluster's workers."""
    import psutil

    found = []
    for pid in _descendants(set(client.run(os.getpid).values())):
        try:
            cmd = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            continue
        if "worker.py" in cmd or cmd.startswith("bwrap"):
            found.append(f"{pid}: {cmd[:80]}")
    return found


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("dask")
    subs = _class(tmp / "subs")
    local = tmp / "local"
    grade(get_assignment("assignment1"), [subs], local,
          Options(jobs=2, profile="quick", parts=NO_TRAINING))
    return {"subs": subs, "local": _summary(local), "tmp": tmp}


@pytest.fixture(scope="module")
def on_dask(klass) -> dict:
    out = klass["tmp"] / "dask"
    grade(get_assignment("assignment1"), [klass["subs"]], out,
          Options(jobs=2, profile="quick", parts=NO_TRAINING, executor="dask"))
    return {"out": out, "results": json.loads((out / "results.json").read_text())}


def test_does_a_local_cluster_grade_the_class_as_this_machine_does(klass, on_dask):
    assert len(klass["local"]) == 12
    assert _summary(on_dask["out"]) == klass["local"]


def test_does_results_json_say_which_worker_graded_each_submission(on_dask):
    data = on_dask["results"]
    executor = data["profile"]["executor"]
    assert executor["name"] == "dask" and executor["scheduler"].startswith("tcp://127.0.0.1:")
    workers = executor["workers"]
    assert len(workers) == 2 and all(w["fit"] for w in workers.values())
    assert {s["graded_by"] for s in data["submissions"]} <= set(workers)
    assert all(s["graded_by"] for s in data["submissions"])
    assert data["isolation"]["method"] == next(iter(workers.values()))["isolation"]["method"]


def test_does_the_gradebook_hold_each_student_once(on_dask):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{on_dask['out'] / 'gradebook.db'}", "cnn-course") as gb:
        assert len(gb.assignment_submissions("assignment1")) == 12


@pytest.fixture
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c, Client(c) as client:
        yield c, client


def test_does_killing_a_worker_mid_run_lose_nothing_and_count_nothing_twice(klass, cluster,
                                                                             tmp_path):
    c, client = cluster
    out, done = tmp_path / "out", {}

    def run() -> None:
        done["run"] = grade(get_assignment("assignment1"), [klass["subs"]], out, Options(
            jobs=2, profile="quick", parts=NO_TRAINING, executor="dask",
            scheduler=c.scheduler_address))
    thread = threading.Thread(target=run)
    thread.start()
    killed, deadline = None, time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        busy = [w for w, keys in client.processing().items()
                if any(str(k).startswith("grade-") for k in keys)]
        if busy:
            killed = next(iter(client.run(os.getpid, workers=busy[:1]).values()))
            orphans = _descendants({killed})  # its sandboxed workers, about to lose it
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(600)
    assert killed is not None, "no task was in flight to be killed"
    assert "run" in done, "the run did not finish"
    assert _summary(out) == klass["local"]  # every student once, none lost, same grades
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "cnn-course") as gb:
        assert len(gb.assignment_submissions("assignment1")) == 12
    assert orphans, "the killed worker had started no sandboxed worker"
    # the killed worker's sandboxes died with it; the run closed every other worker's pool
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_alive(orphans) or _sandboxes(client)):
        time.sleep(0.2)
    assert not _alive(orphans), f"the killed worker's sandboxes outlived it: {orphans}"
    assert not _sandboxes(client), "a worker still runs sandboxes after the run"


_PROBE = '''import socket

for host, port in {targets!r}:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(f"REACHED {{host}}:{{port}}")
    except OSError as exc:
        print(f"blocked {{host}}:{{port}} ({{type(exc).__name__}})")


def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
'''


def test_can_a_submission_reach_neither_the_scheduler_nor_the_workers(cluster, tmp_path):
    c, client = cluster
    info = client.scheduler_info()
    addresses = [c.scheduler_address, *info["workers"],
                 *(w["nanny"] for w in info["workers"].values() if w.get("nanny"))]
    targets = [(a.split("://")[1].rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))
               for a in addresses]
    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "redteam"))
    import redteam_support as support

    fx = support.load_fixtures()
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "prober.ipynb").write_bytes(fx.notebook_bytes(fx.build(
        {"corr2d_answer": _PROBE.format(targets=targets)})))
    out = tmp_path / "out"
    grade(get_assignment("assignment1"), [subs], out, Options(
        jobs=1, profile="quick", parts=("corr2d",), executor="dask",
        scheduler=c.scheduler_address))
    (student,) = json.loads((out / "results.json").read_text())["submissions"]
    (part,) = student["parts"]
    (page,) = (out / "feedback").rglob("*.html")  # the printed output is shown there
    output = page.read_text()
    assert "REACHED" not in output, output
    assert output.count("blocked") == len(targets), output
    assert part["score"] == 3.0, part["feedback"]  # the prober's corr2d itself is right


def _listening(pid: int) -> list[str]:
    import psutil

    found = []
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            found += [f"{proc.pid}: {c.laddr.ip}:{c.laddr.port}"
                      for c in proc.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            pass
    return found


def test_does_the_grader_s_own_cluster_listen_on_loopback_only():
    from autograder.executors.dask_executor import DaskExecutor

    executor = DaskExecutor(None, 2)
    try:
        info = executor.client.scheduler_info()
        assert executor.address.startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
        listening = _listening(os.getpid())
        assert listening, "found no listening socket at all"
        off_loopback = [s for s in listening if " 127." not in f" {s.split(': ')[1]}"]
        assert not off_loopback, off_loopback
    finally:
        executor.close()


@pytest.mark.parametrize("extra, words", [
    (["--scheduler", "tcp://grader.invalid:8786"], "refusing the plain tcp://"),
    (["--scheduler", "tls://grader.invalid:8786"], "needs --tls-ca-file"),
    (["--scheduler", "grader.invalid:8786"], "with its protocol"),
    (["--scheduler", "tcp://grader.invalid:8786", "--tls-ca-file", "ca.pem"],
     "all three of --tls-ca-file"),
])
def test_is_an_address_that_would_let_others_in_refused_before_connecting(
        extra, words, tmp_path, capsys):
    out = tmp_path / "out"
    start = time.monotonic()
    code = cli.main(["grade", "--assignment", "assignment1", "--out", str(out),
                     "--executor", "dask", *extra, str(SOLUTION)])
    assert code == 2 and words in capsys.readouterr().err
    assert time.monotonic() - start < 60 and not out.exists()


def test_do_cluster_options_need_the_dask_executor(tmp_path, capsys):
    code = cli.main(["grade", "--assignment", "assignment1", "--out", str(tmp_path / "o"),
                     "--scheduler", "tcp://127.0.0.1:1", str(SOLUTION)])
    assert code == 2 and "need(s) --executor dask" in capsys.readouterr().err


def test_is_an_unreachable_scheduler_a_usage_error_that_writes_nothing(tmp_path, capsys):
    with socket.socket() as s:  # a port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    code = cli.main(["grade", "--assignment", "assignment1", "--out", str(out),
                     "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}",
                     str(SOLUTION)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler" in err, err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.data
def test_does_a_worker_without_the_data_set_take_no_work(tmp_path):
    """One worker of the cluster runs from a copy of the course with no data set beside it
    and no internet; it says why it takes no work, and the other one grades everything,
    the training part included."""
    from distributed import Client, LocalCluster

    assert real_fashion_mnist() is not None
    course = tmp_path / "course"
    for name in ("autograder", "cnncourse", "solutions", "exercises"):
        shutil.copytree(REPO / name, course / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(SOLUTION, subs / "alice.ipynb")
    shutil.copy(RELEASE, subs / "bob.ipynb")  # fails fast: nothing to train
    refuse = "http://127.0.0.1:9"
    env = {**os.environ, "PYTHONPATH": str(course), "CNN_DATA": str(tmp_path / "empty"),
           "HOME": str(tmp_path / "home"), "CNN_AUTOGRADER_CACHE": str(tmp_path / "cache"),
           "HTTPS_PROXY": refuse, "HTTP_PROXY": refuse, "https_proxy": refuse,
           "http_proxy": refuse}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c, Client(c) as client:
        dask_worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", c.scheduler_address,
             "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
             "--dashboard-address", LOOPBACK_HTTP, "--name", "no-data"],
            cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(2, timeout=120)
            out = tmp_path / "out"
            run, results = grade(get_assignment("assignment1"), [subs], out, Options(
                jobs=1, profile="quick", executor="dask", scheduler=c.scheduler_address))
        finally:
            dask_worker.terminate()
            dask_worker.wait(30)
    workers = run.profile["executor"]["workers"]
    unfit = [w for w in workers.values() if not w["fit"]]
    assert len(unfit) == 1 and "Fashion-MNIST" in unfit[0]["reason"], workers
    fit = [a for a, w in workers.items() if w["fit"]]
    assert {r.graded_by for r in results} == set(fit)
    assert all(r.graded for r in results) and not run.profile["not_graded"]
    assert {r.student_id: r.total for r in results}["alice"] == 12.0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> Path:
    """A cluster's CA with a certificate for its nodes and one for the grader, as an
    instructor makes them (autograder/README.md), and an intruder's certificate from a CA of
    its own (the cluster's CA certificate is no secret: the intruder has it too)."""
    folder.mkdir()
    for ca in ("ca", "rogue"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}-key.pem",
                 "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}", cwd=folder)
    for leaf, ca in (("node", "ca"), ("grader", "ca"), ("intruder", "rogue")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{leaf}-key.pem",
                 "-out", f"{leaf}.csr", "-subj", f"/CN={leaf}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{leaf}.csr", "-CA", f"{ca}.pem", "-CAkey",
                 f"{ca}-key.pem", "-CAcreateserial", "-out", f"{leaf}.pem", "-days", "2",
                 cwd=folder)
    return folder


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to "
                    "make the test's certificates")
def test_does_a_tls_cluster_grade_for_the_grader_and_turn_an_intruder_away(tmp_path, capsys):
    """The remote set-up of the README, for real: a `dask scheduler` and a `dask worker`
    speaking TLS with certificates from the cluster's CA, and the grade command with its
    --tls-* options. A client whose certificate the CA did not sign is turned away (exit 2,
    nothing written), although it trusts the cluster's CA."""
    certs = _certificates(tmp_path / "certs")
    tls = ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / "node.pem"),
           "--tls-key", str(certs / "node-key.pem")]
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--protocol", "tls",
         "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--dashboard-address",
         LOOPBACK_HTTP, "--scheduler-file", str(scheduler_file), *tls],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tls://127.0.0.1:")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", LOOPBACK_HTTP,
             "--name", "tls-worker", *tls],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        subs = tmp_path / "subs"
        subs.mkdir()
        shutil.copy(SOLUTION, subs / "alice.ipynb")
        shutil.copy(FIXTURES / "corr2d__off_by_one.ipynb", subs / "bob.ipynb")

        def run(cert: str, out: Path) -> tuple[int, str]:
            code = cli.main(["grade", "--assignment", "assignment1", "--out", str(out),
                             "--executor", "dask", "--scheduler", address,
                             "--tls-ca-file", str(certs / "ca.pem"),
                             "--tls-cert", str(certs / f"{cert}.pem"),
                             "--tls-key", str(certs / f"{cert}-key.pem"),
                             "--parts", ",".join(NO_TRAINING), str(subs)])
            return code, capsys.readouterr().err

        code, err = run("intruder", tmp_path / "intruder-out")
        assert code == 2 and "cannot reach the Dask scheduler" in err, err
        assert not (tmp_path / "intruder-out").exists()

        code, err = run("grader", tmp_path / "out")
        assert code == 0, err
        import psutil

        listening = [c.laddr.ip for p in procs for c in psutil.Process(p.pid).net_connections()
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(ip == "127.0.0.1" for ip in listening), listening
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    executor = results["profile"]["executor"]
    assert executor["scheduler"] == address
    (worker,) = executor["workers"]
    assert worker.startswith("tls://127.0.0.1:") and executor["workers"][worker]["fit"]
    assert {s["student_id"]: (s["total"], s["graded_by"]) for s in results["submissions"]} == {
        "alice": (10.0, worker), "bob": (7.0, worker)}
