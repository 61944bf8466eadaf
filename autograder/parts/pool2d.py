"""Part ``pool2d``: max and average pooling (stride 1), checked against torch's pooling."""
from __future__ import annotations

import numpy as np

from ..checking.compare import Verdict, close
from ..checking.report import Value
from ..i18n import N_, _
from .base import CheckSpec, FunctionPart, Probe, shape_label
from .corr2d import off_by_one_advice

__all__ = ["Pool2d", "oracle"]

# (h, w, ph, pw, dtype) per hidden case: non-square inputs and windows.
_RANDOM_CASES = ((5, 7, 2, 3, np.float32), (6, 4, 3, 1, np.float32), (4, 4, 2, 2, np.float64),
                 (7, 3, 1, 2, np.float64))
_EDGE_CASES = ((3, 5, 3, 5), (4, 4, 1, 1), (1, 6, 1, 3))


def oracle(X: np.ndarray, pool_size: tuple[int, int], mode: str) -> np.ndarray:
    """``F.max_pool2d`` or ``F.avg_pool2d`` with stride 1 and no padding."""
    import torch
    from torch.nn import functional as F

    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return pool(torch.from_numpy(X)[None, None], pool_size, stride=1)[0, 0].numpy()


WORKED_MAX = CheckSpec(N_("the chapter's worked example, max"), 1.0)
WORKED_AVG = CheckSpec(N_("the chapter's worked example, avg"), 1.0)
DEFAULT_MODE = CheckSpec(N_("mode defaults to 'max'"), 1.0)
RANDOM_MAX = CheckSpec(N_("random cases, max"), 1.0, hidden=True)
RANDOM_AVG = CheckSpec(N_("random cases, avg"), 1.0, hidden=True)
SIZES = CheckSpec(N_("edge sizes (1x1 windows, window as large as the input)"), 1.0,
                  hidden=True)


class Pool2d(FunctionPart):
    name = "pool2d"
    grade_id = "pool2d"
    answer_ids = ("pool2d_answer",)
    object_name = "pool2d"
    forbidden_names = ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
                       "avg_pool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d",
                       "AvgPool2d", "AvgPool3d", "adaptive_max_pool2d", "adaptive_avg_pool2d",
                       "AdaptiveMaxPool2d", "AdaptiveAvgPool2d", "lp_pool2d", "LPPool2d",
                       "max_pool2d_with_indices")
    forbidden_ops = ("max_pool", "avg_pool", "adaptive_")
    library_words = N_("PyTorch's pooling")
    library_advice = N_("Compute each window's maximum or mean yourself, as in the chapter: "
                        "Y[i, j] comes from X[i:i + ph, j:j + pw].")
    checks = (WORKED_MAX, WORKED_AVG, DEFAULT_MODE, RANDOM_MAX, RANDOM_AVG, SIZES)

    def make_probes(self) -> list[Probe]:
        probes: list[Probe] = []

        def add(check: str, X: np.ndarray, size: tuple[int, int], mode: str | None,
                visible: bool, label: str = ""):
            label = label or N_("a {input} input with a {window} window, mode='{mode}'")
            real_mode = mode or "max"
            other = "avg" if real_mode == "max" else "max"
            kwargs = {} if mode is None else {"mode": mode}
            probes.append(Probe(len(probes), check, (X, size), kwargs,
                                oracle(X, size, real_mode), X.dtype.name, visible, label,
                                {other: oracle(X, size, other)},
                                {"input": shape_label(X.shape), "window": shape_label(size),
                                 "mode": real_mode}))

        X = np.arange(9, dtype=np.float32).reshape(3, 3)
        worked = N_("the 3x3 input 0..8 with a 2x2 window, mode='{mode}'")
        add(WORKED_MAX.name, X, (2, 2), "max", True, worked)
        add(WORKED_AVG.name, X, (2, 2), "avg", True, worked)
        rng = np.random.default_rng(20261127)
        add(DEFAULT_MODE.name, rng.standard_normal((4, 5)).astype(np.float32), (2, 2), None,
            False, N_("a 4x5 input with a 2x2 window and no mode argument, mode='{mode}'"))
        for h, w, ph, pw, dtype in _RANDOM_CASES:
            X = rng.standard_normal((h, w)).astype(dtype)
            add(RANDOM_MAX.name, X, (ph, pw), "max", False)
            add(RANDOM_AVG.name, X, (ph, pw), "avg", False)
        for h, w, ph, pw in _EDGE_CASES:
            X = rng.standard_normal((h, w)).astype(np.float32)
            for mode in ("max", "avg"):
                add(SIZES.name, X, (ph, pw), mode, False)
        return probes

    def diagnose(self, probe: Probe, verdict: Verdict, value: Value) -> str:
        if verdict.problem == "shape":
            return verdict.detail + "." + off_by_one_advice(
                probe.expected.shape, value.shape, "(h - ph + 1) x (w - pw + 1)")
        if verdict.problem == "values":
            (other, answer), = probe.mutants.items()
            mode = "avg" if other == "max" else "max"
            if close(value.array, answer, value.dtype, probe.input_dtype)[0]:
                text = (_("with mode='avg' your output is the maximum of each window, not "
                          "the mean: check how your code chooses between the two modes.")
                        if mode == "avg" else
                        _("with mode='max' your output is the mean of each window, not the "
                          "maximum: check how your code chooses between the two modes."))
                return text
            return _("{problem}: check the window each output element covers.").format(
                problem=verdict.detail)
        return verdict.detail
