"""Grading on a Dask cluster (``--executor dask``): one task per submission.

The client (the machine that started the run) sends each task the submission's bytes and
nothing else, and gets back the plain ``SubmissionResult``; it records each one as it
arrives, so a killed run or a lost worker loses nothing that was done. Each worker
prepares the assignment itself (a ``GraderPlugin``: the source notebook, its probes, the
reference training run, once per machine through the on-disk cache) and grades in its own
sandboxed ``WorkerPool``, so student code runs only inside the sandbox of a worker machine,
with no network. A worker that cannot grade every part asked for (no data set, no GPU, not
the isolation asked for) says why and advertises no grading resource, so it takes no work.

Who may reach the scheduler may run code as the grader (Dask runs the pickled tasks it is
sent), so: a ``LocalCluster`` listens on loopback only; a remote scheduler is reached over
TLS (``tls://`` with ``--tls-ca-file``, ``--tls-cert``, ``--tls-key``); a plain ``tcp://``
address that is not on loopback is refused unless ``--insecure`` says the network is
trusted. ``check_address`` decides that before any connection is tried.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..errors import SetupError, UsageError
from ..intake.submissions import Submission
from ..output.results import SubmissionResult
from .dask_worker import GraderPlugin, RunRequest, grade_remote, worker_facts
from .local import RunContext, Started

__all__ = ["TLSFiles", "check_address", "DaskExecutor"]

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0      # an unreachable scheduler is an error after this long
WORKERS_TIMEOUT_S = 120.0     # a remote cluster must offer a worker within this long
_PREPARE_POLL_S = 0.5


@dataclass(frozen=True)
class TLSFiles:
    """The client's side of Dask's TLS: the CA that signed the cluster, our certificate."""

    ca_file: str
    cert: str
    key: str

    def security(self):
        from distributed.security import Security

        return Security(tls_ca_file=self.ca_file, tls_client_cert=self.cert,
                        tls_client_key=self.key, require_encryption=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: never resolved here, so never taken for loopback


def check_address(address: str, insecure: bool, tls: TLSFiles | None) -> None:
    """Refuse, before connecting, an address that would let others in or that TLS cannot
    reach."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        raise UsageError(f"--scheduler {address!r}: give the scheduler's address with its "
                         "protocol, e.g. tls://grader.example.edu:8786")
    host = rest.rsplit(":", 1)[0].strip("[]") if ":" in rest else rest
    if scheme == "tls":
        if tls is None:
            raise UsageError("a tls:// scheduler needs --tls-ca-file, --tls-cert and "
                             "--tls-key")
        missing = [p for p in (tls.ca_file, tls.cert, tls.key) if not Path(p).is_file()]
        if missing:
            raise UsageError(f"TLS file(s) not found: {', '.join(missing)}")
    elif scheme == "tcp":
        if tls is not None:
            raise UsageError("--tls-* options need a tls:// scheduler address")
        if not _is_loopback(host) and not insecure:
            raise UsageError(
                f"refusing the plain tcp:// scheduler {address}: whoever can reach its port "
                "can run code as the grader. Use tls:// with --tls-ca-file, --tls-cert and "
                "--tls-key, or pass --insecure if only trusted machines can reach it")
    else:
        raise UsageError(f"--scheduler {address!r}: the grader speaks tcp:// (loopback, or "
                         "with --insecure) and tls://")


class DaskExecutor:
    """A connection to a Dask scheduler (or a ``LocalCluster`` started here) for one run."""

    name = "dask"

    def __init__(self, scheduler: str | None, workers: int, tls: TLSFiles | None = None,
                 insecure: bool = False, gpus: int = 0):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is None:
            self.cluster = LocalCluster(
                n_workers=max(1, workers), threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None, protocol="tcp",
                resources={"GPU": 1} if gpus else None)
            scheduler = self.cluster.scheduler_address
        else:
            check_address(scheduler, insecure, tls)
        self.address = scheduler
        try:
            self.client = Client(scheduler, timeout=CONNECT_TIMEOUT_S,
                                 security=tls.security() if tls else None)
        except (OSError, TimeoutError) as exc:
            self._close_cluster()
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} within "
                             f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__}: {exc})") from None
        self.request: RunRequest | None = None
        self.workers: dict[str, dict] = {}

    def start(self, ctx: RunContext) -> Started:
        """Install the grader on every worker and wait until each has prepared the run;
        results.json records what each worker found (fit or not, and why)."""
        request = RunRequest(ctx.assignment.id, ctx.settings.profile, ctx.device_asked,
                             ctx.settings.timeout_s, ctx.parts, ctx.isolation,
                             ctx.settings.language, gpu_jobs=ctx.gpu_jobs,
                             cuda_graph=ctx.settings.cuda_graph)
        graded = [p for p in ctx.assignment.parts
                  if all(p.name != q.name for q in ctx.left_out)]
        self.gpu = ctx.device_asked == "cuda" and any(p.uses_gpu(ctx.settings)
                                                      for p in graded)
        self.max_total = sum(ctx.source.points[p.grade_id] for p in graded)
        self.left_out = ctx.left_out
        facts = self._prepare(request)
        fit = {a: f for a, f in facts.items() if f["fit"]}
        methods = sorted({f["isolation"]["method"] for f in fit.values()})
        isolation = {"method": methods[0] if len(methods) == 1 else "mixed",
                     "workers": {a: f["isolation"] for a, f in fit.items()}}
        first = next(iter(fit.values()))
        return Started(isolation, {**first["facts"], "executor": {
            "name": self.name, "scheduler": self.address, "workers": facts}}, ctx.left_out)

    def _prepare(self, request: RunRequest) -> dict[str, dict]:
        self.request = request
        self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        self.client.register_plugin(GraderPlugin(request), name=request.plugin_name)
        while True:
            facts = self.client.run(worker_facts, request.plugin_name)
            if not any(f.get("preparing") for f in facts.values()):
                break
            threading.Event().wait(_PREPARE_POLL_S)
        for address, f in facts.items():
            if not f["fit"]:
                log.warning("Dask worker %s takes no work: %s", address, f["reason"])
        if not any(f["fit"] for f in facts.values()):
            reasons = "; ".join(f"{a}: {f['reason']}" for a, f in facts.items())
            raise SetupError(f"no Dask worker can grade this run ({reasons})")
        return facts

    def grade(self, items: list[tuple[int, Submission]],
              on_result: Callable[[int, SubmissionResult], None], jobs: int = 1) -> None:
        """One task per submission; each result is handed over as it arrives. A task whose
        workers kept dying is recorded as not graded, with the reason (a rerun grades it)."""
        from distributed import as_completed

        request = self.request
        resources = {request.resource: 1, **({"GPU": 1} if self.gpu else {})}
        futures = {self.client.submit(grade_remote, request.plugin_name, sub,
                                      key=f"grade-{request.run_id}-{i}", pure=False,
                                      resources=resources): (i, sub)
                   for i, sub in items}
        for future in as_completed(futures):
            i, sub = futures[future]
            try:
                result, worker = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and the like: this one
                log.warning("the task for %s failed on the cluster: %s", sub.origin, exc)
                result = SubmissionResult(
                    sub.student_id, (), self.max_total, f"grading stopped on the cluster "
                    f"({type(exc).__name__}: {exc})", sub.origin, key=sub.key,
                    left_out=self.left_out)
                worker = None
            on_result(i, replace(result, graded_by=worker))

    def close(self) -> None:
        if self.request is not None:
            try:
                self.client.unregister_worker_plugin(self.request.plugin_name)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                pass
        self.client.close()
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

