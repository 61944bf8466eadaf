"""Part ``corr2d``: valid 2-D cross-correlation, checked against ``F.conv2d`` as the oracle."""
from __future__ import annotations

import numpy as np

from ..checking.compare import Verdict, close
from ..checking.report import Value
from ..i18n import N_, _
from .base import CheckSpec, FunctionPart, Probe, shape_label

__all__ = ["Corr2d", "oracle", "off_by_one_advice"]

# (h, w, kh, kw) per hidden case: non-square inputs and kernels, sizes from 1 upward.
_FLOAT32_CASES = ((5, 7, 2, 3), (7, 5, 3, 2), (6, 6, 3, 3), (4, 9, 2, 5), (8, 3, 1, 2))
_FLOAT64_CASES = ((6, 4, 3, 2), (3, 8, 2, 2), (9, 9, 4, 3))
_EDGE_CASES = ((1, 1, 1, 1), (4, 6, 1, 1), (5, 3, 5, 3), (1, 7, 1, 3), (6, 1, 2, 1))


def oracle(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """PyTorch's cross-correlation (``F.conv2d`` does not flip the kernel)."""
    import torch
    from torch.nn import functional as F

    x, k = torch.from_numpy(X), torch.from_numpy(K)
    return F.conv2d(x[None, None], k[None, None])[0, 0].numpy()


def off_by_one_advice(expected: tuple[int, ...], got: tuple[int, ...], rule: str) -> str:
    """A sentence about an output of the wrong size (one too small, too large, swapped)."""
    if len(got) != len(expected):
        return ""
    diffs = {g - e for g, e in zip(got, expected, strict=True)}
    if diffs <= {-1, 0} and -1 in diffs:
        text = _("It is one too small: the output is {rule}; check the ranges of your loops.")
    elif diffs <= {0, 1} and 1 in diffs:
        text = _("It is one too large: the output is {rule}; a window must fit entirely "
                 "inside the input.")
    elif tuple(got) == tuple(reversed(expected)):
        text = _("Rows and columns are swapped.")
    else:
        text = _("The output is {rule}.")
    return " " + text.format(rule=rule)


WORKED = CheckSpec(N_("the chapter's worked example"), 1.0)
EDGES = CheckSpec(N_("the edge-detection example"), 1.0)
FLOAT32 = CheckSpec(N_("random float32 cases"), 2.0, hidden=True)
FLOAT64 = CheckSpec(N_("random float64 cases"), 1.0, hidden=True)
SIZES = CheckSpec(N_("edge sizes (1x1 kernels, kernel as large as the input)"), 1.0,
                  hidden=True)


class Corr2d(FunctionPart):
    name = "corr2d"
    grade_id = "corr2d"
    answer_ids = ("corr2d_answer",)
    object_name = "corr2d"
    forbidden_names = ("conv1d", "conv2d", "conv3d", "Conv1d", "Conv2d", "Conv3d", "LazyConv2d",
                       "convolution", "_convolution", "_conv_forward", "conv_transpose2d")
    forbidden_ops = ("conv",)
    library_words = N_("PyTorch's convolution")
    library_advice = N_("Compute it yourself from slices and sums, as in the chapter: "
                        "Y[i, j] is the sum of X[i:i + kh, j:j + kw] * K.")
    checks = (WORKED, EDGES, FLOAT32, FLOAT64, SIZES)

    def make_probes(self) -> list[Probe]:
        probes: list[Probe] = []

        def add(check: str, X: np.ndarray, K: np.ndarray, visible: bool, label: str = ""):
            fields = {"input": shape_label(X.shape), "kernel": shape_label(K.shape)}
            label = label or N_("a {input} input with a {kernel} kernel")
            flipped = oracle(X, K[::-1, ::-1].copy())
            probes.append(Probe(len(probes), check, (X, K), {}, oracle(X, K), X.dtype.name,
                                visible, label, {"flipped": flipped}, fields))

        X = np.arange(9, dtype=np.float32).reshape(3, 3)
        add(WORKED.name, X, np.array([[0, 1], [2, 3]], np.float32), True,
            N_("the 3x3 input 0..8 with the kernel [[0, 1], [2, 3]]"))
        X = np.ones((6, 8), np.float32)
        X[:, 2:6] = 0
        add(EDGES.name, X, np.array([[1, -1]], np.float32), True,
            N_("the 6x8 black-and-white image with the kernel [[1, -1]]"))
        rng = np.random.default_rng(20261126)
        for check, cases, dtype in ((FLOAT32.name, _FLOAT32_CASES, np.float32),
                                    (FLOAT64.name, _FLOAT64_CASES, np.float64),
                                    (SIZES.name, _EDGE_CASES, np.float32)):
            for h, w, kh, kw in cases:
                add(check, rng.standard_normal((h, w)).astype(dtype),
                    rng.standard_normal((kh, kw)).astype(dtype), False)
        return probes

    def diagnose(self, probe: Probe, verdict: Verdict, value: Value) -> str:
        if verdict.problem == "shape":
            return verdict.detail + "." + off_by_one_advice(
                probe.expected.shape, value.shape, "(h - kh + 1) x (w - kw + 1)")
        if verdict.problem == "dtype":
            return _("{problem}: create the output with torch.zeros(..., dtype=X.dtype) or "
                     "keep float arithmetic.").format(problem=verdict.detail)
        if verdict.problem == "values":
            if close(value.array, probe.mutants["flipped"], value.dtype, probe.input_dtype)[0]:
                return _("your output matches a true convolution (the kernel flipped in both "
                         "directions), not cross-correlation: multiply X[i + a, j + b] by "
                         "K[a, b] without flipping K.")
            return _("{problem}: check which input element each kernel weight multiplies, "
                     "and that every window is summed.").format(problem=verdict.detail)
        return verdict.detail

