"""Compare a returned value with the expected array, in the grader's process, with numpy.

Only plain numpy arrays built from raw bytes reach these functions, so no ``__eq__`` or
``allclose`` that a submission could have replaced is ever called.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        return f"an array of shape {fmt_shape(a.shape)}"
    return np.array2string(np.asarray(a, dtype=np.float64), precision=4, suppress_small=True,
                           separator=", ", max_line_width=1000).replace("\n", "")


def fmt_difference(expected: np.ndarray, got: np.ndarray, limit: int = 36) -> str:
    """What differs between two arrays of the same shape: both in full when small, else
    how many entries differ and the first of them."""
    if expected.size <= limit:
        return f"expected {fmt_array(expected)}, got {fmt_array(got)}"
    e, g = expected.astype(np.float64), got.astype(np.float64)
    wrong = ~(np.isfinite(g) & (np.abs(g - e) <= _tolerance(str(got.dtype)) * (1 + np.abs(e))))
    where = tuple(int(i) for i in np.argwhere(wrong)[0]) if wrong.any() else ()
    first = (f"; the first is at {list(where)}: expected {e[where]:.4g}, got {g[where]:.4g}"
             if where else "")
    return f"{int(wrong.sum())} of {expected.size} entries differ{first}"


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
        what = "a subclass of torch.Tensor" if value.tensor_subclass else value.type_name
        return Verdict("type", f"returned {what}; expected a plain torch.Tensor")
    if value.dtype not in FLOAT_DTYPES:
        article = "an" if value.dtype[:1] in "aeiou" else "a"
        return Verdict("dtype", f"returned {article} {value.dtype} tensor; expected floating "
                                "point (float32 or float64, like the input)")
    if tuple(value.shape) != tuple(expected.shape):
        return Verdict("shape", f"returned shape {fmt_shape(value.shape)}; expected "
                                f"{fmt_shape(expected.shape)}")
    if value.array is None:
        return Verdict("unreadable", "the result's numbers did not come back")
    ok, err = close(value.array, expected, value.dtype, input_dtype)
    if ok:
        return Verdict("")
    return Verdict("values", f"values differ from the expected ones by up to {err:.3g}", err)
