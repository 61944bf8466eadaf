"""What every graded part declares, what it becomes for one run, and the logic shared by
parts that call a function.

A ``Part`` is a declaration: class attributes that say which cells of the source notebook
it grades, how the worker exercises the student's object (``driver``), under which
``Limits``, and which library calls it forbids. It holds no state. For a run,
``prepare()`` returns a frozen ``Prepared``: the limits in force, the driver's inputs as
plain data, and what scoring needs (probes, a reference run). ``score()`` turns a validated
``Report`` into a ``PartResult`` from the report and the ``Prepared`` alone.
Adding a part means writing one such class and listing it in ``assignments.py``.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from ..checking.compare import Verdict, fmt_difference, judge
from ..checking.report import Report, Value, error_info, value_info
from ..i18n import _, translate
from ..jobs import DEFAULT_LIMITS, Cell, Job, Limits, RunSettings
from ..output.results import CheckResult, PartResult
from ..sandbox.inside import wire
from ..sandbox.inside.provenance import REFUSED

__all__ = ["Part", "Prepared", "FunctionPart", "Probe", "CheckSpec", "shape_label",
           "passed_message", "not_implemented_message"]


@dataclass(frozen=True)
class Prepared:
    """A part ready for one run: everything its jobs and its scoring need, as data."""

    part: "Part"
    points: float
    limits: Limits
    fields: Mapping[str, Any] = field(default_factory=dict)   # the driver's inputs
    blobs: tuple[bytes, ...] = field(default=(), repr=False)
    profile: Any = "quick"          # what the plain_data driver hands its function
    env: Mapping[str, str] = field(default_factory=dict)
    uses_gpu: bool = False          # hold the run's GPU while a job of this part runs
    facts: Mapping[str, Any] = field(default_factory=dict)    # for results.json's profile
    state: Any = field(default=None, repr=False)   # the part's own: probes, a reference run
    probe_ids: frozenset[int] = frozenset()        # the probe frames the report may hold

    @property
    def name(self) -> str:
        return self.part.name

    def job(self, cells: tuple[Cell, ...], answer_from: int = 0) -> Job:
        """The job for these cells; the cells from ``answer_from`` on are the answer's."""
        guard = {"answer_from": answer_from, "refused": list(self.part.refused_imports),
                 "paths": package_folders(self.part.refused_imports),
                 "strict": self.part.strict_imports}
        return Job(self.part.name, self.part.driver, self.part.object_name, cells,
                   self.limits, self.fields, self.blobs, self.profile, self.env, guard,
                   self.uses_gpu)

    def score(self, report: Report) -> PartResult:
        return self.part.score(report, self)


class Part:
    """Base class: subclasses set the attributes and implement ``prepare`` and ``score``."""

    name: str = ""
    grade_id: str = ""                      # the source's test cell: its points are the part's
    answer_ids: tuple[str, ...] = ()        # the source's solution cells this part runs
    object_name: str = ""                   # what the answer cells must define
    driver: str = "call"                    # the worker's driver (sandbox/inside/drivers.py)
    limits: Limits = DEFAULT_LIMITS
    forbidden_names: tuple[str, ...] = ()   # library calls that cost the part its points
    forbidden_ops: tuple[str, ...] = ()     # the same, as torch function name fragments
    library_words: str = ""                 # e.g. N_("PyTorch's convolution")
    library_advice: str = ""                # marked with N_(), translated when used
    # Modules holding reference answers: an answer that imports one earns nothing. With
    # ``strict_imports`` every import of them in the job fails; a part whose own worker code
    # imports them (training) refuses only the imports student code asks for.
    refused_imports: tuple[str, ...] = REFUSED
    strict_imports: bool = True
    memoize: bool = False                   # same answer code, same result: grade it once
    own_timeout: bool = False               # --timeout does not apply (parts that train)
    # Checks of other parts this part's points rest on: ((part name, (check names...)), ...).
    # When one of them fails, ``gate`` sets this part's score to zero, with the reason.
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    requires_why: str = ""                  # marked with N_(), translated when used

    # --- one run ----------------------------------------------------------------------
    def fetch(self) -> None:
        """Put on disk what the workers must read (e.g. the training data). Runs in the
        grader before the workers start, because the sandbox binds only folders that exist
        by then; raises ``SetupError`` when that is impossible."""

    def uses_gpu(self, settings: RunSettings) -> bool:
        """Whether this part's jobs run on the GPU in this run (the sandbox then binds it)."""
        return False

    def gpu_memory_bytes(self, settings: RunSettings) -> int:
        """GPU memory one job of this part needs (packing several on a GPU); 0: unknown."""
        return 0

    def run_limits(self, settings: RunSettings) -> Limits:
        """The declared limits, with --timeout in force unless the part keeps its own."""
        if settings.timeout_s and not self.own_timeout:
            return self.limits.with_timeout(settings.timeout_s)
        return self.limits

    def prepare(self, points: float, settings: RunSettings) -> Prepared:
        """Everything this part's jobs and scoring need for one run, computed once."""
        return Prepared(self, points, self.run_limits(settings), profile=settings.profile)

    def score(self, report: Report, prepared: Prepared) -> PartResult:
        raise NotImplementedError

    def gate(self, result: PartResult, others: dict[str, PartResult]) -> PartResult:
        """This part's result once every part of the submission is graded: zero when a check
        named in ``requires`` failed (or its part could not run), else unchanged."""
        if not self.requires or result.score == 0:
            return result
        failed = []
        for part, names in self.requires:  # check names are shown (and kept) translated
            passed = {c.name for c in others[part].checks if c.passed}
            failed += [f"{part}: {translate(n)}" for n in names if translate(n) not in passed]
        if not failed:
            return result
        why = _("Not counted, because a check this part rests on failed ({failed}). {why} "
                "Fix those checks first; without them this part would have scored {score} "
                "of {max}.").format(failed="; ".join(failed), why=translate(self.requires_why),
                                    score=f"{result.score:g}", max=f"{result.max_score:g}")
        # The gate carries all the weight, so score = max x passed weight / all weight holds;
        # the part's own checks stay on the page for what they say.
        weight = sum(c.weight for c in result.checks) or 1.0
        checks = (CheckResult(_("the checks this part rests on pass"), False, weight, why),
                  *(replace(c, weight=0.0) for c in result.checks))
        return PartResult(result.name, 0.0, result.max_score,
                          _("{why} What this part found on its own: {feedback}").format(
                              why=why, feedback=result.feedback), checks,
                          result.output, result.seconds, result.figures, result.notes)

    # --- shared wording ---------------------------------------------------------------
    def library_message(self, uses: list[str]) -> str:
        """Why calling the library op costs the part: ``uses`` says where it was seen."""
        return _("{name} calls {library} ({uses}), which this exercise asks you to write "
                 "yourself, so this part earns no points. {advice}").format(
            name=self.object_name, library=translate(self.library_words), uses=", ".join(uses),
            advice=translate(self.library_advice))

    def preamble(self, report: Report) -> str | None:
        """A reason that overrides every check (an import of a reference, an object not
        written in the answer cell, an object missing), or None."""
        imported = _first_text(report, "refused_import", "module")
        if imported:
            return _("Your answer imports {module}, which holds the course's reference "
                     "answers, so this part earns no points. Write {name} yourself in its "
                     "answer cell, as in the chapter: it needs only torch.").format(
                module=imported, name=self.object_name)
        origin = _first_text(report, "origin", "from")
        if origin:
            return _("{name} is not written in your answer cell: it comes from {origin}, so "
                     "this part earns no points. Define it there yourself with `def` or "
                     "`class`, as in the chapter; a copy, alias or subclass of another "
                     "implementation does not count.").format(name=self.object_name,
                                                              origin=origin)
        if report.missing:
            errors = report.cell_errors()
            if errors:
                return _("{name} is not defined after running your answer cell. Your answer "
                         "cell {error}.").format(name=self.object_name,
                                                 error=errors[0][1].describe())
            return _("{name} is not defined after running your answer cell. Only the code "
                     "inside the answer cells is graded: is it defined there, with exactly "
                     "this name?").format(name=self.object_name)
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
    check: str                                   # the CheckSpec's name it counts towards
    args: tuple
    kwargs: dict
    expected: np.ndarray = field(repr=False)
    input_dtype: str
    visible: bool
    label: str                  # marked with N_(): e.g. "a {x} input with a {k} kernel"
    mutants: dict = field(default_factory=dict, repr=False)   # mistake -> array
    label_fields: dict = field(default_factory=dict)          # the label's {fields}

    def case(self) -> str:
        """The case in words, in the current language."""
        return translate(self.label).format(**self.label_fields)


def _encode_arg(value: Any, blobs: list[bytes]) -> dict:
    if isinstance(value, np.ndarray):
        return {"array": wire.pack_array(value, blobs)}
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

    def prepare(self, points: float, settings: RunSettings) -> Prepared:
        probes = tuple(self.make_probes())
        unknown = {p.check for p in probes} - {c.name for c in self.checks}
        if unknown:  # a probe counts towards a check by name: a typo must not drop it
            raise ValueError(f"{self.name}: probes name checks it does not have: {unknown}")
        blobs: list[bytes] = []
        wire_probes = [{"id": p.id, "args": [_encode_arg(a, blobs) for a in p.args],
                        "kwargs": {k: _encode_arg(v, blobs) for k, v in p.kwargs.items()}}
                       for p in probes]
        fields = {"probes": wire_probes, "forbidden_ops": list(self.forbidden_ops)}
        return Prepared(self, points, self.run_limits(settings), fields, tuple(blobs),
                        settings.profile, state=probes,
                        probe_ids=frozenset(p.id for p in probes))

    def _probe_message(self, probe: Probe, report: Report) -> str | None:
        """None when the probe passed, else what the student should read."""
        if probe.id not in report.probes:
            return report.stop_reason() or _("no result came back for this case")
        header, blobs = report.probes[probe.id]
        if header.get("ok") is not True:
            err = error_info(header.get("error"))
            if err.type == "NotImplementedError":
                return not_implemented_message()
            limit = 600 if probe.visible else 80  # a hidden case's message stays short
            text = _("{name} on {case} {error}.").format(
                name=self.object_name, case=probe.case(), error=err.describe(limit))
            if err.type == "NameError":
                text += " " + _("Each part runs only its own answer cell (after the set-up "
                                "imports): define helpers inside that cell.")
            return text
        value = value_info(header.get("value"), blobs)
        verdict = judge(value, probe.expected, probe.input_dtype)
        if verdict.ok:
            return None
        advice = self.diagnose(probe, verdict, value)
        if probe.visible and verdict.problem == "values":
            advice += " " + _("For {case}: {difference}.").format(
                case=probe.case(), difference=fmt_difference(probe.expected, value.array))
        elif verdict.problem == "shape":
            advice = _("for {case}, {advice}").format(case=probe.case(), advice=advice)
        return advice

    def score(self, report: Report, prepared: Prepared) -> PartResult:
        points, probes = prepared.points, prepared.state
        stop = self.preamble(report)
        if stop:
            return PartResult.zero(self.name, points, stop)
        used = sorted({op for header, _ in report.probes.values()
                       for op in _list(header.get("ops")) if isinstance(op, str)})
        if used:
            seen = [_("{op} seen at run time").format(op=op) for op in used[:2]]
            return PartResult.zero(self.name, points, self.library_message(seen))
        results, not_implemented = [], 0
        for spec in self.checks:
            messages = [m for p in probes if p.check == spec.name
                        for m in [self._probe_message(p, report)] if m]
            not_implemented += sum(m == not_implemented_message() for m in messages)
            results.append(CheckResult(translate(spec.name), not messages, spec.weight,
                                       messages[0] if messages else passed_message(), spec.hidden))
        summary = ""
        if not_implemented and all(not c.passed for c in results):
            summary = _("{name} is not implemented yet: replace the `raise "
                        "NotImplementedError()` line in its answer cell with your "
                        "code.").format(name=self.object_name)
        return PartResult.from_checks(self.name, points, results, summary)


def passed_message() -> str:
    """A passed check's message."""
    return _("passed")


def not_implemented_message() -> str:
    """What a case says when the answer still raises NotImplementedError."""
    return _("not implemented yet (it raises NotImplementedError)")


@lru_cache(maxsize=None)
def package_folders(names: tuple[str, ...]) -> list[str]:
    """The folders the packages ``names`` load from (as found and resolved), without
    importing them: the sandbox shows them at the same paths."""
    folders: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for folder in (spec.submodule_search_locations or []) if spec else []:
            folders += sorted({str(folder), os.path.realpath(folder)})
    return folders


def _first_text(report: Report, op: str, key: str) -> str:
    """A string field of the first frame of ``op`` (capped), or ""."""
    frames = report.frames.get(op) or []
    value = frames[0][0].get(key) if frames else None
    return wire.cap_text(value, 80) if isinstance(value, str) else ""


def _list(value: Any) -> list:
    """A field the child wrote that should be a list, or an empty one."""
    return value if isinstance(value, list) else []


def shape_label(*shapes: tuple[int, ...]) -> str:
    return " and ".join("x".join(map(str, s)) for s in shapes)
