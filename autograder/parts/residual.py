"""Part ``residual``: the ResNet block, checked against ``cnncourse.models.Residual``.

For each configuration the worker builds the student's block, runs it once (lazy layers),
loads the reference weights by attribute name and runs it in evaluation and training mode,
then back-propagates. The grader compares shapes, parameter counts, outputs and gradient
flow with the reference, and matches wrong outputs against typical mistakes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checking.compare import close, fmt_shape, judge
from ..checking.report import ErrorInfo, Report, error_info, value_info
from ..i18n import N_, _, translate
from ..jobs import Limits, RunSettings
from ..output.results import CheckResult, PartResult
from ..sandbox.inside import wire
from .base import CheckSpec, Part, Prepared, not_implemented_message, passed_message
from .residual_messages import (
    MISTAKES,
    at,
    attribute_message,
    construct_message,
    conv3_missing,
    params_message,
    shape_message,
)

__all__ = ["Residual", "Config"]



@dataclass(frozen=True)
class Config:
    """One block to build: constructor arguments, an input, the reference's answers."""

    id: int
    num_channels: int
    use_1x1conv: bool
    strides: int
    input_shape: tuple[int, ...]
    visible: bool
    weights: dict = field(repr=False)          # attribute path -> numpy array
    X: np.ndarray = field(repr=False)
    grad_weights: np.ndarray = field(repr=False)
    expected: dict = field(repr=False)         # "eval"/"train" -> array, "params" -> int
    mutants: dict = field(repr=False)          # (mode, mistake) -> array

    @property
    def label(self) -> str:
        """The configuration in words, in the current language."""
        args = f"{self.num_channels}"
        if self.use_1x1conv or self.strides != 1:
            args += f", use_1x1conv={self.use_1x1conv}, strides={self.strides}"
        return _("Residual({args}) on a {shape} input").format(
            args=args, shape=fmt_shape(self.input_shape))


def _functional(w: dict, X, training: bool, strides: int, mistake: str = ""):
    """The block written out with F ops, optionally with one typical mistake."""
    import torch
    from torch.nn import functional as F

    def conv(x, name, stride, padding):
        return F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], stride, padding)

    def bn(x, name):
        return F.batch_norm(x, w[f"{name}.running_mean"].clone(),
                            w[f"{name}.running_var"].clone(), w[f"{name}.weight"],
                            w[f"{name}.bias"], training, 0.1, 1e-5)

    Y = F.relu(bn(conv(X, "conv1", strides, 1), "bn1"))
    Y = bn(conv(Y, "conv2", 1, 1), "bn2")
    S = conv(X, "conv3", strides, 0) if "conv3.weight" in w else X
    if mistake == "relu_before_add":
        return F.relu(Y) + S
    if mistake == "relu_before_and_after":
        return F.relu(F.relu(Y) + S)
    if mistake == "no_final_relu":
        return Y + S
    if mistake == "no_shortcut":
        return F.relu(Y)
    return torch.relu(Y + S)


def _make_config(cid: int, channels: int, use_1x1: bool, strides: int, shape: tuple,
                 visible: bool, rng: np.random.Generator) -> Config:
    import torch

    from cnncourse.models import Residual as Reference

    X = rng.standard_normal(shape).astype(np.float32)
    ref = Reference(channels, use_1x1conv=use_1x1, strides=strides)
    ref(torch.from_numpy(X))  # materialise the lazy layers
    weights: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name, p in ref.named_parameters():
            base = 1.0 if name.endswith("bn1.weight") or name.endswith("bn2.weight") else 0.0
            p.copy_(torch.from_numpy(
                (base + 0.3 * rng.standard_normal(tuple(p.shape))).astype(np.float32)))
            weights[name] = p.detach().numpy().copy()
        for name, b in ref.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.from_numpy((0.1 * rng.standard_normal(b.shape)).astype(np.float32)))
            elif name.endswith("running_var"):
                b.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, b.shape).astype(np.float32)))
            else:
                continue
            weights[name] = b.detach().numpy().copy()
    tensors = {k: torch.from_numpy(v) for k, v in weights.items()}
    x = torch.from_numpy(X)
    expected: dict[str, Any] = {"params": sum(p.numel() for p in ref.parameters())}
    ref.eval()
    with torch.no_grad():
        expected["eval"] = ref(x).numpy().copy()
        ref.train()
        expected["train"] = ref(x).numpy().copy()
        mutants = {(mode, m): _functional(tensors, x, mode == "train", strides, m).numpy()
                   for mode in ("eval", "train") for m in MISTAKES}
    grad_weights = rng.standard_normal(expected["train"].shape).astype(np.float32)
    return Config(cid, channels, use_1x1, strides, shape, visible, weights, X, grad_weights,
                  expected, mutants)


# The checks that make a block stand for the reference block in training (see
# ResidualTraining.requires): same forward pass in both modes, and every weight learns.
FORWARD_TRAIN = N_("forward pass in training mode")
FORWARD_EVAL = N_("forward pass in evaluation mode")
GRADIENTS = N_("gradients reach every parameter")
SHAPE_PLAIN = CheckSpec(N_("output shape without the 1x1 convolution"), 1.0)
SHAPE_1X1 = CheckSpec(N_("output shape with the 1x1 convolution"), 1.0)
ATTRIBUTES = CheckSpec(N_("attributes conv1, conv2, conv3, bn1, bn2"), 1.0, hidden=True)
PARAMS = CheckSpec(N_("parameter count"), 1.0, hidden=True)
TRAIN = CheckSpec(FORWARD_TRAIN, 1.5, hidden=True)
EVAL = CheckSpec(FORWARD_EVAL, 1.5, hidden=True)
GRADS = CheckSpec(GRADIENTS, 1.0, hidden=True)
_CHECKS = (SHAPE_PLAIN, SHAPE_1X1, ATTRIBUTES, PARAMS, TRAIN, EVAL, GRADS)
# (channels, use_1x1conv, strides, input shape, visible) per configuration
_CONFIGS = ((3, False, 1, (4, 3, 6, 6), True), (6, True, 2, (4, 3, 6, 6), True),
            (4, True, 1, (2, 2, 5, 7), False), (5, False, 1, (3, 5, 4, 3), False),
            (2, True, 2, (2, 3, 7, 5), False))

Messages = dict[str, "str | None"]   # check name -> None (passed) or what went wrong


class Residual(Part):
    name = "residual"
    grade_id = "residual"
    answer_ids = ("residual_answer",)
    object_name = "Residual"
    driver = "residual"
    limits = Limits(timeout_s=30.0)
    checks = _CHECKS

    def prepare(self, points: float, settings: RunSettings) -> Prepared:
        rng = np.random.default_rng(20261128)
        configs = tuple(_make_config(i, *spec, rng) for i, spec in enumerate(_CONFIGS))
        blobs: list[bytes] = []
        wire_configs = [{"id": c.id, "args": [c.num_channels],
                         "kwargs": {"use_1x1conv": c.use_1x1conv, "strides": c.strides},
                         "input": wire.pack_array(c.X, blobs),
                         "grad_weights": wire.pack_array(c.grad_weights, blobs),
                         "weights": {k: wire.pack_array(v, blobs)
                                     for k, v in c.weights.items()}}
                        for c in configs]
        return Prepared(self, points, self.run_limits(settings), {"configs": wire_configs},
                        tuple(blobs), settings.profile, state=configs)

    # Scoring --------------------------------------------------------------------------
    def _class_problem(self, report: Report) -> str | None:
        facts = (report.frames.get("class") or [({}, [])])[0][0]
        if facts.get("is_module_class") is not True:
            return _("Residual must be a class derived from nn.Module.")
        if facts.get("forward_nested_in_init") is True:
            return _("Residual has no forward method: `def forward` is indented inside "
                     "`__init__`, so it is only a local function there. Move it one level "
                     "to the left so that it belongs to the class.")
        if facts.get("forward_defined") is not True:
            return _("Residual defines no forward method.")
        return None

    def _config_messages(self, c: Config, raw: dict | None, blobs: list[bytes],
                         report: Report) -> Messages:
        """Per check name: None when this configuration passes it, else a message."""
        shape_check = (SHAPE_1X1 if c.use_1x1conv else SHAPE_PLAIN).name
        # the checks this configuration exercises: one of the two shape checks, and the rest
        names = [s.name for s in self.checks if s not in (SHAPE_PLAIN, SHAPE_1X1)]
        names.append(shape_check)
        if raw is None:
            why = report.stop_reason() or _("no result came back")
            return {n: at(c, why) for n in names}
        raw_errors = raw.get("errors")  # the child wrote this frame: check every type
        errors = {k: error_info(v) for k, v in raw_errors.items()
                  if isinstance(k, str)} if isinstance(raw_errors, dict) else {}
        if "construct" in errors:
            text = construct_message(errors["construct"])
            return {n: at(c, text) for n in names}
        out: Messages = dict.fromkeys(names)
        out[ATTRIBUTES.name] = attribute_message(c, raw)
        if "first_forward" in errors:
            text = _("{config}: calling the block {error}").format(
                config=c.label, error=errors["first_forward"].describe())
            if c.use_1x1conv and conv3_missing(raw):
                text += ". " + _("The shape changes here, so the shortcut must go through a "
                                 "1x1 convolution (conv3) with the same stride before the "
                                 "addition.")
            return {**out, **dict.fromkeys([PARAMS.name, TRAIN.name, EVAL.name, GRADS.name,
                                            shape_check], text)}
        out[shape_check] = shape_message(c, raw)
        out[PARAMS.name] = params_message(c, raw)
        problems = raw.get("load_problems")
        if isinstance(problems, list) and problems:
            text = _("{config}: the reference weights do not fit: {problems}.").format(
                config=c.label, problems="; ".join(str(p)[:120] for p in problems[:3]))
            return {**out, TRAIN.name: text, EVAL.name: text, GRADS.name: text}
        out[EVAL.name] = self._output_message(c, raw, blobs, errors, "eval")
        out[TRAIN.name] = self._output_message(c, raw, blobs, errors, "train")
        out[GRADS.name] = self._grad_message(c, raw, errors)
        return out

    def _output_message(self, c: Config, raw: dict, blobs: list[bytes],
                        errors: dict[str, ErrorInfo], mode: str) -> str | None:
        step = f"{mode}_forward"
        where = (_("{config}, train mode") if mode == "train" else
                 _("{config}, eval mode")).format(config=c.label)
        if step in errors:
            return f"{where}: {errors[step].describe()}"
        value = value_info(raw.get(mode), blobs)
        verdict = judge(value, c.expected[mode], "float32")
        if verdict.ok:
            return None
        return f"{where}: {self._mistake(c, mode, value, verdict)}"

    def _mistake(self, c: Config, mode: str, value, verdict) -> str:
        if verdict.problem == "values":
            for mistake, text in MISTAKES.items():
                if close(value.array, c.mutants[(mode, mistake)], "float32")[0]:
                    return translate(text)
            return _("{problem} from the reference block with the same weights: check the "
                     "order conv -> batch norm -> ReLU, and the shortcut.").format(
                problem=verdict.detail)
        return verdict.detail

    def _grad_message(self, c: Config, raw: dict, errors: dict) -> str | None:
        if "backward" in errors:
            return _("{config}: back-propagation {error}").format(
                config=c.label, error=errors["backward"].describe())
        if "train_forward" in errors:
            return at(c, _("no gradients, the training-mode forward pass failed"))
        grads = raw.get("grads")
        if not isinstance(grads, list):
            return at(c, _("no gradient information came back"))
        seen = {g["name"]: g for g in grads if isinstance(g, dict)
                and isinstance(g.get("name"), str)}
        bad = [n for n, g in seen.items() if not (g.get("has_grad") is True and
               g.get("finite") is True and g.get("nonzero") is True)]
        bad += [n for n in c.weights if "running" not in n and n not in seen]
        if bad:
            return _("{config}: {names} got no gradient: is every layer used in forward, "
                     "without torch.no_grad() or .detach()?").format(
                config=c.label, names=", ".join(map(str, sorted(set(bad))[:4])))
        return None

    def score(self, report: Report, prepared: Prepared) -> PartResult:
        points, configs = prepared.points, prepared.state
        stop = self.preamble(report) or (self._class_problem(report) if report.frames.get(
            "class") else report.stop_reason())
        if stop:
            return PartResult.zero(self.name, points, stop)
        raw_by_id: dict[int, tuple[dict, list[bytes]]] = {}
        for header, blobs in report.frames.get("config", []):
            if type(header.get("id")) is int and header["id"] not in raw_by_id:
                raw_by_id[header["id"]] = (header, blobs)
        per_check: dict[str, list[str]] = {s.name: [] for s in self.checks}
        for c in configs:
            raw, blobs = raw_by_id.get(c.id, (None, []))
            for check, message in self._config_messages(c, raw, blobs, report).items():
                if message:
                    per_check[check].append(message)  # a KeyError here: a check misnamed
        results = [CheckResult(translate(s.name), not per_check[s.name], s.weight,
                               per_check[s.name][0] if per_check[s.name] else passed_message(),
                               s.hidden)
                   for s in self.checks]
        summary = ""
        if all(m.endswith(not_implemented_message()) for ms in per_check.values()
               for m in ms) and not any(r.passed for r in results):
            summary = _("Residual is not implemented yet: replace the `raise "
                        "NotImplementedError()` lines in its answer cell with your code.")
        return PartResult.from_checks(self.name, points, results, summary)
