"""What the test modules share: the repository's place, and what this machine has.

Test modules import these from here (``from helpers import REPO``), never from
``conftest``, which pytest loads by itself and which only wires markers and fixtures.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPO", "CHAPTERS", "chapter_notebooks", "toc_files", "cuda_available",
           "real_fashion_mnist", "make_fixtures", "Build", "jupyter_book", "timed_build"]

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


def make_fixtures():
    """tests/fixtures/make_fixtures.py as a module (it builds and writes the fixtures)."""
    folder = str(REPO / "tests" / "fixtures")
    sys.path.insert(0, folder)
    try:
        import make_fixtures
    finally:
        sys.path.remove(folder)
    return make_fixtures


@dataclass
class Build:
    """A site build: its exit status, how long it took, what it printed."""

    returncode: int
    seconds: float
    output: str


def jupyter_book() -> Path:
    """The jupyter-book command of this interpreter's environment (the test is skipped
    without one)."""
    import shutil

    import pytest

    found = Path(sys.executable).with_name("jupyter-book")
    if found.exists():
        return found
    if not shutil.which("jupyter-book"):
        pytest.skip("jupyter-book is not installed: pip install -r requirements.txt")
    return Path(shutil.which("jupyter-book"))


def timed_build(cmd: list[str], cwd: Path, timeout: int = 1800) -> Build:
    import subprocess
    import time

    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return Build(result.returncode, time.perf_counter() - start, result.stdout + result.stderr)
