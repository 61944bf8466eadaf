"""What the test modules share: the repository's place, and what this machine has.

Test modules import these from here (``from helpers import REPO``), never from
``conftest``, which pytest loads by itself and which only wires markers and fixtures.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["REPO", "cuda_available", "real_fashion_mnist"]

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
