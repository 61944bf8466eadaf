"""What a job is: the limits one part of one submission runs under, and the plain data
that carries it to a worker. One home for every number a job obeys, each with its reason.

A part declares its ``Limits`` (``Part.limits``); the run may change only the wall-clock
limit (``--timeout`` for the checks, the reference run for the training part). The same
object goes from the declaration through the pipeline to the worker (as ``to_wire()``) and
to the tests. ``Job`` never holds a student's objects, only their source code as text.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Limits", "Cell", "Job", "RunSettings", "DEFAULT_LIMITS", "MAX_TIMEOUT_S"]

MAX_TIMEOUT_S = 3600.0  # the most --timeout accepts: one part of one submission, an hour


@dataclass(frozen=True)
class Limits:
    """The limits of one job's child process (the worker enforces them)."""

    timeout_s: float = 20.0          # wall clock for the whole job; the worker kills at it
    memory_bytes: int = 2 << 30      # RLIMIT_AS above what torch maps already (0: none, CUDA)
    file_bytes: int = 16 << 20       # largest file the child may write
    result_bytes: int = 32 << 20     # the child's report (its frames); longer ones are cut
    output_bytes: int = 64 << 10     # what it prints, kept for the feedback page
    open_files: int = 256
    processes: int | None = 256      # RLIMIT_NPROC; counts only under a dedicated uid
    threads: int = 1                 # torch threads, and the cores the job holds meanwhile
    subprocesses: bool = False       # seccomp refuses new processes unless this is set

    @property
    def cpu_s(self) -> int:
        """RLIMIT_CPU: every thread burns CPU time, so it scales with the threads."""
        return int(self.timeout_s) * max(1, self.threads) + 1

    def with_timeout(self, seconds: float) -> "Limits":
        return replace(self, timeout_s=float(seconds))

    def to_wire(self, dedicated_uid: bool = True) -> dict[str, Any]:
        """The JSON the worker reads. Without a dedicated uid RLIMIT_NPROC would count
        every process of the grader's own user, so it is left unset."""
        wire = asdict(self)
        wire["cpu_s"] = self.cpu_s
        if not dedicated_uid:
            wire["processes"] = None
        return wire


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Cell:
    """One cell the child runs: the source's set-up cells first, then the answer cells."""

    label: str
    source: str


@dataclass(frozen=True)
class Job:
    """One part of one submission, as plain data a worker can run."""

    part: str
    driver: str                      # a name in the worker's DRIVERS
    object_name: str                 # what the answer cells must define
    cells: tuple[Cell, ...]
    limits: Limits = DEFAULT_LIMITS
    fields: Mapping[str, Any] = field(default_factory=dict)   # the driver's inputs
    blobs: tuple[bytes, ...] = field(default=(), repr=False)  # arrays the fields point at
    profile: Any = "quick"           # what the plain_data driver hands its function
    env: Mapping[str, str] = field(default_factory=dict)       # for the child's environment
    # sandbox/inside/provenance.py: from cell number ``answer_from`` on, imports of ``refused``
    # modules fail (all of them when ``strict``, else those student code asks for)
    guard: Mapping[str, Any] = field(default_factory=dict)
    uses_gpu: bool = False           # a worker with a GPU slot gives it its device and share

    def to_wire(self, seccomp: bool, dedicated_uid: bool) -> dict[str, Any]:
        """The ``job`` frame's JSON; the worker's facts decide seccomp and RLIMIT_NPROC."""
        return {"timeout_s": self.limits.timeout_s, "seccomp": seccomp,
                "limits": self.limits.to_wire(dedicated_uid),
                "cells": [{"label": c.label, "source": c.source} for c in self.cells],
                "driver": self.driver, "object": self.object_name, "profile": self.profile,
                "env": dict(self.env), "guard": dict(self.guard), **self.fields}


@dataclass(frozen=True)
class RunSettings:
    """What one run decides for every part: its size, its device, its limits, its cache."""

    profile: str = "quick"           # "quick" (CI) or "full"
    device: str = "cpu"              # where parts that train run: "cuda" or "cpu"
    timeout_s: float | None = None   # --timeout: replaces the checks' own wall-clock limits
    cache_dir: Path | None = None    # reference runs; None: a temporary folder
    language: str | None = None      # --lang: every submission's; None: its notebook's own
    gpu_sharing: int = 1             # training jobs packed on one GPU at once (time limits)
    cuda_graph: bool = True          # on CUDA, capture the training step (CNN_CUDA_GRAPH of
                                     # the machine that starts the run, also for Dask workers)
