"""Compare a returned value with the expected array, in the grader's process, with numpy.

Only plain numpy arrays built from raw bytes reach these functions, so no ``__eq__`` or
``allclose`` that a submission could have replaced is ever called.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..i18n import _
from .report import Value

__all__ = ["Verdict", "judge", "close", "fmt_shape", "fmt_array", "fmt_difference"]

FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Verdict:
    """``problem`` is "" when the value matches; else type, dtype, shape, values or unreadable."""

    problem: str
    detail: str = ""
    max_error: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problem


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_array(a: np.ndarray, limit: int = 36) -> str:
    """A small array as nested lists with short numbers; larger ones summarised."""
    if a.size > limit:
        return _("an array of shape {shape}").format(shape=fmt_shape(a.shape))
    return np.array2string(np.asarray(a, dtype=np.float64), precision=4, suppress_small=True,
                           separator=", ", max_line_width=1000).replace("\n", "")


def fmt_difference(expected: np.ndarray, got: np.ndarray, limit: int = 36) -> str:
    """What differs between two arrays of the same shape: both in full when small, else
    how many entries differ and the first of them."""
    if expected.size <= limit:
        return _("expected {expected}, got {got}").format(expected=fmt_array(expected),
                                                          got=fmt_array(got))
    e, g = expected.astype(np.float64), got.astype(np.float64)
    wrong = ~(np.isfinite(g) & (np.abs(g - e) <= _tolerance(str(got.dtype)) * (1 + np.abs(e))))
    where = tuple(int(i) for i in np.argwhere(wrong)[0]) if wrong.any() else ()
    if not where:
        return _("{wrong} of {size} entries differ").format(wrong=int(wrong.sum()),
                                                            size=expected.size)
    return _("{wrong} of {size} entries differ; the first is at {index}: expected "
             "{expected}, got {got}").format(wrong=int(wrong.sum()), size=expected.size,
                                             index=list(where), expected=f"{e[where]:.4g}",
                                             got=f"{g[where]:.4g}")


def _tolerance(*dtypes: str) -> float:
    return 1e-4 if any(d in ("float32", "<f4", "float16") for d in dtypes) else 1e-8


def close(got: np.ndarray, expected: np.ndarray, *dtypes: str) -> tuple[bool, float]:
    """Elementwise |got - expected| <= tol * (1 + |expected|), NaN never matching."""
    if got.shape != expected.shape:
        return False, float("inf")
    g, e = got.astype(np.float64), expected.astype(np.float64)
    err = np.abs(g - e)
    tol = _tolerance(*dtypes) * (1.0 + np.abs(e))
    finite = np.isfinite(g)
    ok = bool(np.all(finite & (err <= tol)))
    max_error = float(np.max(np.where(finite, err, np.inf))) if err.size else 0.0
    return ok, max_error


def judge(value: Value, expected: np.ndarray, input_dtype: str) -> Verdict:
    """Exact type, then a floating dtype, then shape, then values."""
    if value.problem:
        return Verdict("unreadable", value.problem)
    if value.kind != "tensor":
        text = (_("returned a subclass of torch.Tensor; expected a plain torch.Tensor")
                if value.tensor_subclass else
                _("returned {type}; expected a plain torch.Tensor").format(type=value.type_name))
        return Verdict("type", text)
    if value.dtype not in FLOAT_DTYPES:
        text = (_("returned an {dtype} tensor; expected floating point (float32 or float64, "
                  "like the input)") if value.dtype[:1] in "aeiou" else
                _("returned a {dtype} tensor; expected floating point (float32 or float64, "
                  "like the input)"))
        return Verdict("dtype", text.format(dtype=value.dtype))
    if tuple(value.shape) != tuple(expected.shape):
        return Verdict("shape", _("returned shape {got}; expected {expected}").format(
            got=fmt_shape(value.shape), expected=fmt_shape(expected.shape)))
    if value.array is None:
        return Verdict("unreadable", _("the result's numbers did not come back"))
    ok, err = close(value.array, expected, value.dtype, input_dtype)
    if ok:
        return Verdict("")
    return Verdict("values", _("values differ from the expected ones by up to {error}").format(
        error=f"{err:.3g}"), err)
