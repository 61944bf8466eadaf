"""The worker's side of ``--executor dask``: what runs in each Dask worker process.

``GraderPlugin`` is registered on every worker of the cluster (and on those that join
later). It prepares the run there, by itself, from plain data (``RunRequest``): the source
notebook, the probes, the reference training run (once per machine, through the on-disk
cache that the machine's worker processes share), and a sandboxed ``WorkerPool``. Then
each task (``grade_remote``) is one ``grading.grade_submission`` call on one submission's
bytes, and only the plain ``SubmissionResult`` goes back. A worker that cannot grade every
part asked for says why and advertises no grading resource, so the scheduler sends it no
work.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from distributed import WorkerPlugin

from ..errors import SetupError
from ..intake.submissions import Submission
from ..output.results import SubmissionResult

__all__ = ["RunRequest", "GraderPlugin", "grade_remote", "worker_facts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What a worker needs to prepare this run by itself: plain data."""

    assignment_id: str
    profile: str
    device: str | None = None         # None: each worker's own default (CNN_DEVICE, CUDA)
    timeout_s: float | None = None
    parts: tuple[str, ...] | None = None
    isolation: str = "auto"
    language: str | None = None       # --lang; None: each notebook's own
    gpu_jobs: int | None = None       # --gpu-jobs; None: from each GPU's memory and cores
    cuda_graph: bool = True           # CNN_CUDA_GRAPH where the run was started, not here
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def plugin_name(self) -> str:
        return f"cnn-course-grader-{self.run_id}"

    @property
    def resource(self) -> str:
        """The resource a worker fit for this run advertises; every task asks for it."""
        return f"grader-{self.run_id}"


def _cache_dir() -> Path:
    """The reference runs' cache on a worker machine, shared by its worker processes."""
    root = os.environ.get("CNN_AUTOGRADER_CACHE") or Path.home() / ".cache" / "cnncourse"
    return Path(root) / "autograder-reference"


class _Prepared:
    """One worker's prepared run: its sandbox pool and the assignment, or why it is unfit."""

    def __init__(self, request: RunRequest, jobs: int, scratch: Path, hidden: list[str]):
        from cnncourse.config import default_device

        from .. import pipeline
        from ..assignments import get_assignment
        from ..grading import load_assignment_source, prepare_assignment
        from ..jobs import RunSettings
        from ..sandbox.launch import choose_method
        from ..sandbox.pool import WorkerPool, default_private_dirs
        from ..scheduling import HostCores, Memo, Slots, machine_cores_folder
        from .local import plan_gpus

        self.pool, self.prepared, self.reason, self.gpu_slots = None, None, None, ()
        self.memo, self.slots = Memo(), Slots()
        assignment = get_assignment(request.assignment_id)
        source = load_assignment_source(assignment)
        settings = RunSettings(request.profile, request.device or default_device(),
                               request.timeout_s, _cache_dir(), request.language,
                               cuda_graph=request.cuda_graph)
        self.device = settings.device
        chosen_out = pipeline.parts_left_out(assignment, source, request.parts)
        left = pipeline.fetch_parts(assignment, source, chosen_out)
        cannot = [p for p in left if p.reason != pipeline.CHOSEN_OUT]
        if cannot:
            self.reason = "; ".join(f"{p.name}: {p.reason}" for p in cannot)
            return
        try:
            method = choose_method(request.isolation)
        except ValueError as exc:
            self.reason = str(exc)
            return
        graded = [p for p in assignment.parts if all(p.name != q.name for q in chosen_out)]
        # the GPUs this worker process sees (CUDA_VISIBLE_DEVICES when it was started for
        # one), one slot per sandbox: each binds its own device only, as on one machine
        self.gpu_slots = plan_gpus(graded, settings, request.gpu_jobs, max_jobs=jobs)
        if self.gpu_slots:
            settings = replace(settings, gpu_sharing=self.gpu_slots[0].sharing)
        # the machine's cores are shared with the other worker processes on it: a
        # training job holds its cores machine-wide, as it does in one grading process
        # (the locks live on this machine, not in the cache that machines may share)
        self.slots = Slots(gpus=max(1, len(self.gpu_slots)),
                           host=HostCores(machine_cores_folder()))
        self.pool = WorkerPool(jobs, method, default_private_dirs(scratch, *hidden),
                               gpu=any(p.uses_gpu(settings) for p in graded),
                               gpu_slots=self.gpu_slots)
        self.prepared = prepare_assignment(assignment, settings, source=source,
                                           left_out=chosen_out)
        late = [p for p in self.prepared.left_out if p.reason != pipeline.CHOSEN_OUT]
        if late:
            self.reason = "; ".join(f"{p.name}: {p.reason}" for p in late)
            self.close()

    def facts(self) -> dict:
        if self.reason:
            return {"fit": False, "reason": self.reason, "host": socket.gethostname()}
        facts = {k: v for p in self.prepared.parts for k, v in p.facts.items()}
        if self.gpu_slots:
            facts["gpu_slots"] = [s.to_dict() for s in self.gpu_slots]
        return {"fit": True, "host": socket.gethostname(), "device": self.device,
                "isolation": self.pool.isolation().to_dict(), "facts": facts}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


class GraderPlugin(WorkerPlugin):
    """Registered on every worker of the cluster (and on those that join later): prepares
    the run there, then grades the submissions the scheduler sends it."""

    idempotent = False

    def __init__(self, request: RunRequest):
        self.request = request
        self.name = request.plugin_name
        self.state: _Prepared | None = None
        self.error: str | None = None
        self.ready = threading.Event()
        self.scratch: Path | None = None

    def __getstate__(self) -> dict:
        return {"request": self.request}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["request"])

    async def setup(self, worker) -> None:
        """Prepare in a thread (the reference run may take minutes; the worker's event loop
        keeps answering the scheduler), then advertise the run's resource if fit."""
        self.scratch = Path(tempfile.mkdtemp(prefix=f"autograder-{os.getpid()}-dask-"))
        jobs = max(1, worker.state.nthreads)
        try:
            self.state = await asyncio.to_thread(_Prepared, self.request, jobs, self.scratch,
                                                 [worker.local_directory])
        except (SetupError, OSError, RuntimeError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
        if self.state is not None and not self.state.reason:
            await worker.set_resources(**{self.request.resource: jobs})
        else:
            log.warning("this worker takes no work for run %s: %s", self.request.run_id,
                        self.error or self.state.reason)

    def teardown(self, worker) -> None:
        if self.state is not None:
            self.state.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def facts(self) -> dict:
        if not self.ready.is_set():
            return {"fit": False, "reason": "still preparing", "preparing": True}
        if self.error:
            return {"fit": False, "reason": self.error, "host": socket.gethostname()}
        return self.state.facts()

    def grade(self, sub: Submission) -> SubmissionResult:
        from ..grading import grade_submission

        state = self.state
        return grade_submission(sub, state.prepared, state.pool, state.memo, state.slots)


def _plugin(name: str) -> GraderPlugin:
    from distributed import get_worker

    return get_worker().plugins[name]


def worker_facts(name: str, dask_worker=None) -> dict:
    """Run on every worker by ``Client.run`` (which passes ``dask_worker``): what the
    plugin found there."""
    try:
        return dask_worker.plugins[name].facts()
    except KeyError:
        return {"fit": False, "reason": "the grader's plugin is not installed yet",
                "preparing": True}


def grade_remote(name: str, sub: Submission) -> tuple[SubmissionResult, str]:
    """The task: one submission graded by the worker that runs it; plain data back."""
    from distributed import get_worker

    return _plugin(name).grade(sub), get_worker().address
