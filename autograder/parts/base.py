"""What every graded part provides, and the shared logic of parts that call a function.

A ``Part`` names the source notebook's cells it grades (its test cell's grade_id, which
carries the points, and its answer cells), the worker driver that exercises the student's
object, its limits, and ``score``: turning a validated ``Report`` into a ``PartResult``.
Adding a part means writing one such class and listing it in ``assignments.py``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .. import wire
from ..compare import Verdict, fmt_array, judge
from ..report import Report, Value, error_info, value_info
from ..results import CheckResult, PartResult

__all__ = ["Part", "FunctionPart", "Probe", "CheckSpec", "static_library_uses", "shape_label"]


def static_library_uses(source: str, names: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, name) for every reference to a forbidden name: attributes, names, strings."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    hits = []
    for node in ast.walk(tree):
        found = (node.attr if isinstance(node, ast.Attribute) else
                 node.id if isinstance(node, ast.Name) else
                 node.value if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 else None)
        if found in names:
            hits.append((node.lineno, found))
    return sorted(set(hits))


class Part:
    """Base class: subclasses set the attributes and implement ``job_fields`` and ``score``."""

    name: str = ""
    grade_id: str = ""                  # the source's test cell: its points are the part's
    answer_ids: tuple[str, ...] = ()    # the source's solution cells this part runs
    object_name: str = ""
    driver: str = "call"
    timeout_s: float = 20.0
    memory_bytes: int = 2 << 30
    file_bytes: int = 16 << 20              # largest file the child may write (its report too)
    threads: int = 1
    forbidden_names: tuple[str, ...] = ()   # library calls that cost the part its points
    forbidden_ops: tuple[str, ...] = ()     # the same, as aten operator name fragments
    worker_files: tuple[Path, ...] = ()     # extra worker-side modules (e.g. training.py)
    library_advice: str = ""

    def job_fields(self) -> tuple[dict[str, Any], list[bytes]]:
        raise NotImplementedError

    uses_gpu: bool = False                  # bind the GPU devices into the sandbox
    memoize: bool = False                   # same answer code, same result: grade it once
    own_timeout: bool = False               # ignore --timeout (parts that train)

    def worker_env(self, profile: str) -> dict[str, str]:
        """Environment variables for the worker's child (it starts with almost none);
        a part that trains would pass ``CNN_DATA`` and ``CNN_QUICK`` here."""
        return {}

    # Checks of other parts this part's points rest on: ((part name, (check names...)), ...).
    # When one of them fails, ``gate`` sets this part's score to zero, with the reason.
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    requires_why: str = ""

    def gate(self, result: PartResult, others: dict[str, PartResult]) -> PartResult:
        """This part's result once every part of the submission is graded: zero when a check
        named in ``requires`` failed (or its part could not run), else unchanged."""
        if not self.requires or result.score == 0:
            return result
        failed = []
        for part, names in self.requires:
            passed = {c.name for c in others[part].checks if c.passed}
            failed += [f"{part}: {n}" for n in names if n not in passed]
        if not failed:
            return result
        why = (f"Not counted, because a check this part rests on failed ({'; '.join(failed)}). "
               f"{self.requires_why} Fix those checks first; without them this part would "
               f"have scored {result.score:g} of {result.max_score:g}.")
        # The gate carries all the weight, so score = max x passed weight / all weight holds;
        # the part's own checks stay on the page for what they say.
        weight = sum(c.weight for c in result.checks) or 1.0
        checks = (CheckResult("the checks this part rests on pass", False, weight, why),
                  *(replace(c, weight=0.0) for c in result.checks))
        return PartResult(result.name, 0.0, result.max_score,
                          f"{why} What this part found on its own: {result.feedback}", checks,
                          result.output, result.seconds, result.figures, result.notes)

    def fetch(self) -> None:
        """Put on disk what the workers must read (e.g. the training data). Runs in the
        grader before the workers start, because the sandbox binds only folders that exist
        by then; raise ``training.SetupError`` when that is impossible."""

    def prepare(self, out_dir: Path, profile: str) -> None:
        """Work done once per run in the grader before any job (e.g. a reference run)."""

    def run_facts(self) -> dict[str, Any]:
        """What this part adds to results.json's ``profile`` (e.g. how it trained)."""
        return {}

    def worker_profile(self, profile: str) -> Any:
        """What the ``plain_data`` driver passes as ``profile`` (JSON); the run's by default."""
        return profile

    def probe_ids(self) -> set[int]:
        return set()

    def score(self, report: Report, points: float) -> PartResult:
        raise NotImplementedError

    # Shared wording -------------------------------------------------------------------
    library_words: str = ""               # e.g. "PyTorch's convolution"

    def library_message(self, uses: list[str]) -> str:
        """Why calling the library op costs the part: ``uses`` says where it was seen."""
        return (f"{self.object_name} calls {self.library_words} ({', '.join(uses)}), which "
                f"this exercise asks you to write yourself, so this part earns no points. "
                f"{self.library_advice}")

    def preamble(self, report: Report) -> str | None:
        """A reason that overrides every check (object missing), or None."""
        if report.missing:
            errors = report.cell_errors()
            why = (f" Your answer cell {errors[0][1].describe()}." if errors else
                   " Only the code inside the answer cells is graded: is it defined there, "
                   "with exactly this name?")
            return f"{self.object_name} is not defined after running your answer cell.{why}"
        return None


@dataclass(frozen=True)
class CheckSpec:
    name: str
    weight: float
    hidden: bool = False


@dataclass(frozen=True)
class Probe:
    """One call: arguments, the oracle's answer, and answers of known mistakes."""

    id: int
    check: str
    args: tuple
    kwargs: dict
    expected: np.ndarray = field(repr=False)
    input_dtype: str
    visible: bool
    label: str                                   # e.g. "a 5x7 input with a 2x3 kernel"
    mutants: dict = field(default_factory=dict, repr=False)   # mistake -> array


def _encode_arg(value: Any, blobs: list[bytes]) -> dict:
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        blobs.append(a.tobytes())
        return {"array": wire.describe_array(a.dtype.str, list(a.shape), len(blobs) - 1)}
    if isinstance(value, tuple):
        return {"tuple": list(value)}
    return {"value": value}


class FunctionPart(Part):
    """A part whose object is a function called on the grader's probe inputs."""

    checks: tuple[CheckSpec, ...] = ()

    def make_probes(self) -> list[Probe]:
        raise NotImplementedError

    def diagnose(self, probe: Probe, verdict: Verdict, value: Value) -> str:
        """Part-specific advice for a wrong answer; the default is the verdict itself."""
        return verdict.detail

    @cached_property
    def probes(self) -> list[Probe]:
        return self.make_probes()

    def probe_ids(self) -> set[int]:
        return {p.id for p in self.probes}

    def job_fields(self) -> tuple[dict[str, Any], list[bytes]]:
        blobs: list[bytes] = []
        probes = [{"id": p.id, "args": [_encode_arg(a, blobs) for a in p.args],
                   "kwargs": {k: _encode_arg(v, blobs) for k, v in p.kwargs.items()}}
                  for p in self.probes]
        return {"probes": probes, "forbidden_ops": list(self.forbidden_ops)}, blobs

    def _probe_message(self, probe: Probe, report: Report) -> str | None:
        """None when the probe passed, else what the student should read."""
        if probe.id not in report.probes:
            return report.stop_reason() or "no result came back for this case"
        header, blobs = report.probes[probe.id]
        if header.get("ok") is not True:
            err = error_info(header.get("error"))
            if err.type == "NotImplementedError":
                return "not implemented yet (it raises NotImplementedError)"
            limit = 600 if probe.visible else 80  # a hidden case's message stays short
            hint = (" Each part runs only its own answer cell (after the set-up imports): "
                    "define helpers inside that cell." if err.type == "NameError" else "")
            return f"{self.object_name} on {probe.label} {err.describe(limit)}.{hint}"
        value = value_info(header.get("value"), blobs)
        verdict = judge(value, probe.expected, probe.input_dtype)
        if verdict.ok:
            return None
        advice = self.diagnose(probe, verdict, value)
        if probe.visible and verdict.problem == "values":
            advice += (f" For {probe.label}: expected {fmt_array(probe.expected)}, got "
                       f"{fmt_array(value.array)}.")
        elif verdict.problem == "shape":
            advice = f"for {probe.label}, {advice}"
        return advice

    def score(self, report: Report, points: float) -> PartResult:
        stop = self.preamble(report)
        if stop:
            return PartResult.zero(self.name, points, stop)
        used = sorted({op for header, _ in report.probes.values()
                       for op in _list(header.get("ops")) if isinstance(op, str)})
        if used:
            seen = [f"{op} seen at run time" for op in used[:2]]
            return PartResult.zero(self.name, points, self.library_message(seen))
        results, not_implemented = [], 0
        for spec in self.checks:
            messages = [m for p in self.probes if p.check == spec.name
                        for m in [self._probe_message(p, report)] if m]
            not_implemented += sum("not implemented yet" in m for m in messages)
            results.append(CheckResult(spec.name, not messages, spec.weight,
                                       messages[0] if messages else "passed", spec.hidden))
        summary = ""
        if not_implemented and all(not c.passed for c in results):
            summary = (f"{self.object_name} is not implemented yet: replace the "
                       "`raise NotImplementedError()` line in its answer cell with your code.")
        return PartResult.from_checks(self.name, points, results, summary)


def _list(value: Any) -> list:
    """A field the child wrote that should be a list, or an empty one."""
    return value if isinstance(value, list) else []


def shape_label(*shapes: tuple[int, ...]) -> str:
    return " and ".join("x".join(map(str, s)) for s in shapes)

