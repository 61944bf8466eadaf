"""Environment switches shared by the chapters, the autograder and the benchmarks.

Every switch is read when it is needed, never at import time, so a notebook can set
``os.environ`` in its first cell and a test can monkeypatch it.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "QUICK_ENV", "DEVICE_ENV", "COMPILE_ENV", "GRAPH_ENV", "data_root",
           "quick_mode", "default_device", "compile_requested", "cuda_graph_requested"]

DATA_ENV = "CNN_DATA"        # where Fashion-MNIST lives (a writable folder)
QUICK_ENV = "CNN_QUICK"      # "1": reduced runs (fewer examples and epochs) for CI on 2 cores
DEVICE_ENV = "CNN_DEVICE"    # "cpu" or "cuda"; default: cuda when available
COMPILE_ENV = "CNN_COMPILE"  # "1": wrap models in torch.compile inside the trainer
GRAPH_ENV = "CNN_CUDA_GRAPH"  # "0": train step by step on CUDA (default: capture the step)

_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _FALSE


def quick_mode() -> bool:
    """True when ``CNN_QUICK`` asks for reduced runs (CI, a laptop without a GPU)."""
    return _flag(QUICK_ENV)


def compile_requested() -> bool:
    return _flag(COMPILE_ENV)


def cuda_graph_requested() -> bool:
    """False only when ``CNN_CUDA_GRAPH`` says no ("0", "off", ...); unset means yes."""
    value = os.environ.get(GRAPH_ENV)
    return value is None or value.strip().lower() not in _FALSE


def data_root() -> Path:
    """The writable data folder: ``$CNN_DATA``, else ``~/.cache/cnncourse/data``."""
    value = os.environ.get(DATA_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "cnncourse" / "data"


def default_device() -> str:
    import torch

    value = os.environ.get(DEVICE_ENV, "").strip().lower()
    if value:
        return value
    return "cuda" if torch.cuda.is_available() else "cpu"
