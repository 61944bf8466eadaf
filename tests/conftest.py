"""Shared test set-up: where the repository is, and the skips behind the gpu and data markers."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import REPO, cuda_available, real_fashion_mnist


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") and not cuda_available():
        pytest.skip("needs a CUDA device (marker gpu); none is visible to torch here")
    if item.get_closest_marker("data") and real_fashion_mnist() is None:
        pytest.skip("needs the real Fashion-MNIST .gz files (marker data): put them in "
                    "$CNN_DATA/FashionMNIST/raw or ../shared/data/FashionMNIST/raw")


@pytest.fixture(scope="session", autouse=True)
def shared_reference_runs(tmp_path_factory) -> None:
    """One reference training run per profile for the whole session (grader subprocesses
    inherit the variable), instead of one per output folder."""
    import os

    os.environ.setdefault("CNN_AUTOGRADER_CACHE", str(tmp_path_factory.mktemp("reference")))


@pytest.fixture(scope="session")
def repo():
    """The repository root."""
    return REPO


@dataclass
class Build:
    returncode: int
    seconds: float
    output: str


@pytest.fixture(scope="session")
def site_build() -> Build:
    """``make book`` once per session: both languages into _build/html (and html/ko), from
    the stored outputs, re-reading every page. The browser test and the notebooks' link
    test share it."""
    if not Path(sys.executable).with_name("jupyter-book").exists() and \
            not shutil.which("jupyter-book"):
        pytest.skip("jupyter-book is not installed: pip install -r requirements.txt")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "build_book.py")],
                            capture_output=True, text=True, timeout=1800, cwd=REPO)
    return Build(result.returncode, time.perf_counter() - start, result.stdout + result.stderr)
