"""Read a worker's frames into a validated ``Report``: nothing in it is taken on trust.

The child's frames were written by code the student controls, so every field is checked
for its exact JSON type, strings are capped, probe ids must be known, the first frame for a
probe wins, and arrays are decoded only through ``wire.decode_array``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..i18n import N_, _, translate
from ..sandbox.inside import wire
from ..sandbox.pool import JobOutcome

__all__ = ["Report", "ErrorInfo", "Value", "parse_report", "error_info", "value_info"]

_MAX_OP = 40  # characters of a frame's op name

_SIGNALS = {6: N_("the process running your code aborted (signal 6)"),
            9: N_("the process running your code was killed (signal 9), usually for using "
                  "more memory than the limit allows"),
            11: N_("the process running your code crashed with a segmentation fault "
                   "(signal 11)"),
            24: N_("the process running your code used up its CPU-time limit (signal 24)"),
            25: N_("the process running your code wrote a file larger than the limit "
                   "(signal 25)")}


def _text(value: Any, limit: int = wire.MAX_TEXT) -> str:
    """A string field the child wrote, capped; anything that is not a string is empty."""
    return wire.cap_text(value if isinstance(value, str) else "", limit)


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised by student code: its type, message and where in their cell."""

    type: str
    message: str
    cell: str | None = None
    line: int | None = None
    function: str | None = None

    def describe(self, message_limit: int = wire.MAX_TEXT) -> str:
        """"raised T: message (line N in f)"; a hidden case passes a small ``message_limit``
        so that a message built from the inputs cannot carry them out."""
        where = ""
        if self.line is not None and self.function and self.function != "<module>":
            where = " " + _("(line {line} in {function})").format(line=self.line,
                                                                  function=self.function)
        elif self.line is not None:
            where = " " + _("(line {line})").format(line=self.line)
        text = wire.cap_text(self.message, message_limit)
        if text:
            return _("raised {type}: {message}{where}").format(type=self.type, message=text,
                                                               where=where)
        return _("raised {type}{where}").format(type=self.type, where=where)


def error_info(raw: Any) -> ErrorInfo:
    if not isinstance(raw, dict):
        return ErrorInfo(_("an unreadable error"), "")
    where = raw.get("where") if isinstance(raw.get("where"), dict) else {}
    line = where.get("line")
    return ErrorInfo(_text(raw.get("type"), 80) or _("an error"), _text(raw.get("message")),
                     _text(where.get("cell"), 80) or None,
                     line if type(line) is int else None,
                     _text(where.get("function"), 80) or None)


@dataclass(frozen=True)
class Value:
    """A returned value: an exact tensor carries ``array``; anything else only its type."""

    kind: str                  # "tensor" or "other"
    type_name: str = ""
    dtype: str = ""
    shape: tuple[int, ...] | None = None
    array: Any = field(default=None, repr=False)   # numpy array, read-only
    tensor_subclass: bool = False
    problem: str = ""          # why the value could not be read


def value_info(raw: Any, blobs: list[bytes]) -> Value:
    if not isinstance(raw, dict) or raw.get("kind") not in ("tensor", "other"):
        return Value("other",
                     problem=_("the worker's description of the result was unreadable"))
    if raw["kind"] == "other":
        return Value("other", type_name=_text(raw.get("type"), 120) or _("an unknown type"),
                     tensor_subclass=raw.get("tensor_subclass") is True)
    shape = raw.get("shape")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        return Value("other", problem=_("the result's shape was unreadable"))
    dtype = _text(raw.get("dtype"), 40)
    array, problem = None, ""
    if raw.get("array") is not None:
        try:
            array = wire.decode_array(raw["array"], blobs)
            if tuple(array.shape) != tuple(shape):
                array, problem = None, _("the result's data did not match its shape")
        except wire.WireError as exc:
            problem = _("the result's data was unreadable ({error})").format(error=exc)
    return Value("tensor", "torch.Tensor", dtype, tuple(shape), array, problem=problem)


@dataclass(frozen=True)
class Report:
    """What one job established about a submission's part."""

    cells: dict[str, tuple[bool, ErrorInfo | None]]
    probes: dict[int, tuple[dict, list[bytes]]]
    frames: dict[str, list[tuple[dict, list[bytes]]]]   # every other op: class, config, ...
    missing: str | None
    ended: bool
    outcome: JobOutcome
    limit_s: float = 0.0       # the wall-clock limit the job ran under

    def cell_errors(self) -> list[tuple[str, ErrorInfo]]:
        return [(label, err) for label, (ok, err) in self.cells.items() if not ok and err]

    def stop_reason(self) -> str | None:
        """Why the job stopped before reporting everything, in words, or None."""
        o = self.outcome
        if o.worker_failure:
            return _("the grading worker failed while running your code")
        if o.timed_out:
            return _("your code did not finish within the {limit} s limit for this part (an "
                     "endless loop, or a very slow one?)").format(limit=f"{self.limit_s:g}")
        if o.protocol_error:
            return _cut_short(o.protocol_error)
        if not self.ended:
            if o.exit_code is not None and o.exit_code < 0:
                if -o.exit_code in _SIGNALS:
                    return translate(_SIGNALS[-o.exit_code])
                return _("the process running your code was stopped by signal "
                         "{signal}").format(signal=-o.exit_code)
            return _("the process running your code stopped early (exit code {code}); does "
                     "it call exit() or os._exit()?").format(code=o.exit_code)
        return None


# What the pool and the frame parser say when a report is cut (in English, for the logs),
# and the same for the student, in the current language; any other problem is quoted.
_CUT = ((re.compile(r"the report exceeded (?P<limit>\d+) bytes and was cut off"),
         N_("your code's results were cut short: the report exceeded {limit} bytes and was "
            "cut off")),
        (re.compile(r"the worker's report ends in a partial frame"),
         N_("your code's results were cut short: the worker's report ends in a partial "
            "frame")))


def _cut_short(problem: str) -> str:
    for pattern, message in _CUT:
        match = pattern.fullmatch(problem)
        if match:
            return translate(message).format(**match.groupdict())
    return _("your code's results were cut short: {problem}").format(problem=problem)


def parse_report(outcome: JobOutcome, known_probes: set[int], limit_s: float) -> Report:
    cells: dict[str, tuple[bool, ErrorInfo | None]] = {}
    probes: dict[int, tuple[dict, list[bytes]]] = {}
    frames: dict[str, list[tuple[dict, list[bytes]]]] = {}
    missing, ended = None, False
    for header, blobs in outcome.frames:
        op = header.get("op")
        if op == "cell" and isinstance(header.get("label"), str):
            label = header["label"]
            if label not in cells:
                ok = header.get("ok") is True
                cells[label] = (ok, None if ok else error_info(header.get("error")))
        elif op == "probe":
            pid = header.get("id")
            if type(pid) is int and pid in known_probes and pid not in probes:
                probes[pid] = (header, blobs)
        elif op == "missing":
            missing = _text(header.get("name"), 80)
        elif op == "end":
            ended = True
        elif isinstance(op, str) and op and len(op) <= _MAX_OP:  # a driver's own frames
            frames.setdefault(op, []).append((header, blobs))
    return Report(cells, probes, frames, missing, ended, outcome, limit_s)
