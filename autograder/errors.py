"""The grader's errors: one base class, one subclass per kind of failure, one message style.

Every message names what failed, the file or limit involved and a next step, in one or two
sentences without a trailing traceback. ``exit_code`` is what the command line returns when
the error ends a command (0 graded, 1 some not graded, 2 a usage error).

Code inside the sandbox (``sandbox/inside/``) may not import this module; its one error,
``wire.WireError``, is turned into a worker failure or a student message where the grader
reads frames, and never escapes further.
"""
from __future__ import annotations

__all__ = ["GraderError", "UsageError", "SetupError", "WorkerStartError", "NotebookError",
           "OutputLockedError"]


class GraderError(Exception):
    """Base class of every error the grader raises on purpose."""

    exit_code = 1


class UsageError(GraderError):
    """The command itself is wrong (an unknown part, a missing file, a bad limit)."""

    exit_code = 2


class SetupError(GraderError):
    """A part cannot run on this machine (no training data, the reference run failed)."""


class WorkerStartError(GraderError):
    """A sandboxed worker could not be started or broke twice; names the method and why."""


class NotebookError(GraderError, ValueError):
    """A notebook that cannot be graded; the message says why and what to do."""


class OutputLockedError(GraderError):
    """The output folder is held by another grader, or holds another assignment's results."""

    exit_code = 2
