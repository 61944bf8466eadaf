"""What the test modules share: the repository's place, and what this machine has.

Test modules import these from here (``from helpers import REPO``), never from
``conftest``, which pytest loads by itself and which only wires markers and fixtures.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["REPO", "CHAPTERS", "chapter_notebooks", "toc_files", "cuda_available",
           "real_fashion_mnist"]

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = ("01_why_convolutions", "02_cross_correlation", "03_padding_and_stride",
            "04_channels", "05_pooling", "06_lenet", "07_vgg", "08_resnet")


def chapter_notebooks() -> list[Path]:
    return [REPO / "book" / f"{name}.ipynb" for name in CHAPTERS
            if (REPO / "book" / f"{name}.ipynb").exists()]


def toc_files() -> list[str]:
    """Every file named in _toc.yml, in reading order, as written there (no suffix)."""
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return files


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
