"""Shared test set-up: where the repository is, and the skips behind the gpu and data markers."""
from __future__ import annotations

import sys

import pytest

from helpers import REPO, Build, cuda_available, jupyter_book, real_fashion_mnist, timed_build


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


@pytest.fixture(scope="session")
def site_build() -> Build:
    """``make book`` once per session: both languages into _build/html (and html/ko), from
    the stored outputs, re-reading every page. The browser test and the notebooks' link
    test share it."""
    jupyter_book()  # skips without one
    return timed_build([sys.executable, str(REPO / "scripts" / "build_book.py")], REPO)
