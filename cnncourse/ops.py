"""From-scratch convolution and pooling, as the chapters build them up.

These are written for reading, not speed: each loops over the kernel (or window) offsets
and adds up shifted slices of the input, so a 3x3 kernel costs nine tensor operations
whatever the image size. ``torch.nn.functional`` is the fast, batched version.
"""
from __future__ import annotations

import torch

__all__ = ["corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
           "pool2d", "output_size"]


def _float_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Valid cross-correlation: (h, w) input, (kh, kw) kernel -> (h-kh+1, w-kw+1)."""
    kh, kw = K.shape
    oh, ow = X.shape[0] - kh + 1, X.shape[1] - kw + 1
    Y = torch.zeros((oh, ow), dtype=_float_dtype(X, K), device=X.device)
    for a in range(kh):
        for b in range(kw):
            # weight K[a, b] meets the input window shifted by (a, b)
            Y = Y + K[a, b] * X[a:a + oh, b:b + ow]
    return Y


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(c_i, h, w) input, (c_i, kh, kw) kernel -> one (oh, ow) map: a channel sum."""
    # no strict=: chapter 4 shows this definition as d2l writes it, and tests/test_book_code.py
    # holds the two equal; matching the channel counts is the caller's part
    return sum(corr2d(x, k) for x, k in zip(X, K))  # noqa: B905


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(c_i, h, w) input, (c_o, c_i, kh, kw) kernel -> (c_o, oh, ow).

    One map per output channel.
    """
    return torch.stack([corr2d_multi_in(X, k) for k in K])


def corr2d_multi_in_out_1x1(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as a matrix product: (c_o, c_i) @ (c_i, h*w) -> (c_o, h, w)."""
    c_i, h, w = X.shape
    c_o = K.shape[0]
    Y = K.reshape(c_o, c_i) @ X.reshape(c_i, h * w)
    return Y.reshape(c_o, h, w)


def pool2d(X: torch.Tensor, pool_size: tuple[int, int], mode: str = "max") -> torch.Tensor:
    """Max or average pooling of a (h, w) input, stride 1, no padding.

    Returns an (h-ph+1, w-pw+1) map.
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', not {mode!r}")
    ph, pw = pool_size
    oh, ow = X.shape[0] - ph + 1, X.shape[1] - pw + 1
    # one shifted view per window position: (ph * pw, oh, ow)
    windows = torch.stack([X[a:a + oh, b:b + ow] for a in range(ph) for b in range(pw)])
    windows = windows.to(_float_dtype(X))
    return windows.amax(dim=0) if mode == "max" else windows.mean(dim=0)


def output_size(n: int, k: int, padding: int = 0, stride: int = 1) -> int:
    """Output length along one axis: floor((n - k + 2 * padding) / stride) + 1."""
    return (n - k + 2 * padding) // stride + 1
