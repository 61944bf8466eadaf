"""Grading on this machine (the default): sandboxed workers in a ``WorkerPool``, ``--jobs``
submissions at a time in threads, each one ``grading.grade_submission`` call."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..assignments import Assignment
from ..grading import PreparedAssignment, grade_submission, prepare_assignment
from ..intake.notebook import SourceNotebook
from ..intake.submissions import Submission
from ..jobs import RunSettings
from ..output.results import LeftOut, SubmissionResult
from ..sandbox.launch import choose_method
from ..sandbox.pool import WorkerPool
from ..scheduling import Memo, Slots

__all__ = ["RunContext", "Started", "LocalExecutor", "in_background"]

log = logging.getLogger(__name__)
OnResult = Callable[[int, SubmissionResult], None]


@dataclass(frozen=True)
class RunContext:
    """What an executor needs to start a run."""

    assignment: Assignment
    source: SourceNotebook
    settings: RunSettings
    course_root: Path
    jobs: int
    isolation: str
    private: list                      # folders the sandbox must hide
    left_out: tuple[LeftOut, ...]      # parts this run leaves out (with --parts)
    parts: tuple[str, ...] | None = None
    device_asked: str | None = None    # --device / Options.device: None lets each machine pick
    gpu_jobs: int | None = None        # --gpu-jobs: training jobs per GPU; None: from memory


@dataclass(frozen=True)
class Started:
    """What the run records once the executor is ready: results.json's ``isolation`` and
    the additions to its ``profile``; ``left_out``: parts that cannot run (with reasons)."""

    isolation: dict
    profile: dict
    left_out: tuple[LeftOut, ...]


_DEFAULT_GPU_JOB_BYTES = 8 << 30  # a part that does not say what one job needs


def plan_gpus(graded: list, settings: RunSettings, gpu_jobs: int | None,
              devices: list | None = None, max_jobs: int | None = None) -> tuple:
    """One slot per sandboxed worker that trains on a GPU (``gpus.plan_gpu_slots``), or
    none when no graded part uses the GPU or there is none. ``max_jobs``: the most jobs
    that can run at once here (a Dask worker's threads); a plan with more slots is made
    again with as many per GPU as that allows (at least one), so that no slot's memory
    share or time allowance counts jobs that never run."""
    from ..gpus import detect_gpus, plan_gpu_slots
    from ..scheduling import usable_cores

    on_gpu = [p for p in graded if p.uses_gpu(settings)]
    if not on_gpu:
        return ()
    threads = max(p.limits.threads for p in on_gpu)
    memory = max(p.gpu_memory_bytes(settings) for p in on_gpu) or _DEFAULT_GPU_JOB_BYTES
    devices = detect_gpus() if devices is None else devices
    slots = plan_gpu_slots(devices, usable_cores(), threads, memory, gpu_jobs)
    if max_jobs is not None and devices and len(slots) > max(max_jobs, len(devices)):
        slots = plan_gpu_slots(devices, usable_cores(), threads, memory,
                               max(1, max_jobs // len(devices)))
    return tuple(slots)


def in_background(fn: Callable[[], object]) -> Callable[[], object]:
    """Start ``fn`` in a thread now; the returned callable waits and returns (or raises)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def wait() -> object:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]
    return wait


class LocalExecutor:
    """Workers on this machine; the assignment is prepared here while they start."""

    name = "local"

    def __init__(self) -> None:
        self.pool: WorkerPool | None = None
        self.prepared: PreparedAssignment | None = None
        self.gpu_slots: tuple = ()

    def start(self, ctx: RunContext) -> Started:
        """Start the workers while the assignment is prepared (torch imports in both at
        once); no workers when no part is left to grade."""
        t0 = time.monotonic()
        graded = [p for p in ctx.assignment.parts
                  if all(p.name != q.name for q in ctx.left_out)]
        self.gpu_slots = plan_gpus(graded, ctx.settings, ctx.gpu_jobs)
        settings = ctx.settings
        if self.gpu_slots:
            settings = replace(settings, gpu_sharing=self.gpu_slots[0].sharing)
        wait_prepared = in_background(lambda: prepare_assignment(
            ctx.assignment, settings, ctx.course_root, ctx.source, ctx.left_out))
        try:
            if graded:
                self.pool = WorkerPool(max(1, ctx.jobs), choose_method(ctx.isolation),
                                       ctx.private,
                                       gpu=any(p.uses_gpu(settings) for p in graded),
                                       gpu_slots=self.gpu_slots)
            self.prepared = wait_prepared()
        except BaseException:
            self.close()
            raise
        log.info("workers started and assignment prepared in %.1f s", time.monotonic() - t0)
        isolation = (self.pool.isolation().to_dict() if self.pool else
                     {"method": None, "notes": ["no part left to grade"]})
        facts = {k: v for p in self.prepared.parts for k, v in p.facts.items()}
        if self.gpu_slots:
            facts["gpu_slots"] = [s.to_dict() for s in self.gpu_slots]
        return Started(isolation, {**facts, "executor": {"name": self.name}},
                       self.prepared.left_out)

    def grade(self, items: list[tuple[int, Submission]], on_result: OnResult,
              jobs: int) -> None:
        memo, slots = Memo(), Slots(gpus=max(1, len(self.gpu_slots)))
        workers = len(self.pool.workers) if self.pool else 1
        with ThreadPoolExecutor(max_workers=max(1, jobs, workers)) as executor:
            futures = {executor.submit(grade_submission, sub, self.prepared, self.pool, memo,
                                       slots): i for i, sub in items}
            for future in as_completed(futures):
                on_result(futures[future], future.result())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
