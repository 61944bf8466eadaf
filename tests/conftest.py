"""Shared test set-up: where the repository is, and the skips behind the gpu and data markers."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def real_fashion_mnist() -> Path | None:
    """The folder holding the four real Fashion-MNIST .gz files, without linking or downloading."""
    from cnncourse import data
    from cnncourse.config import data_root

    names = [name for pair in data.FILES.values() for name in pair]
    for folder in [data_root() / "FashionMNIST" / "raw", *data._shared_copies()]:
        if all((folder / name).is_file() for name in names):
            return folder
    return None


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
def repo() -> Path:
    """The repository root."""
    return REPO
