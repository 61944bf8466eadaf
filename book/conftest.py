"""nbval on the chapters: without the Fashion-MNIST files, skip the cells that need them.

The tests never reach the internet, so where the four .gz files are absent (a fresh clone
without ``../shared``), the cell that loads the data set, and every later cell that uses a
name such a cell defines, are skipped with the reason; every other cell still runs and is
compared with its stored output.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import real_fashion_mnist  # noqa: E402

REASON = ("needs the Fashion-MNIST files, which are not here: put the four .gz files in "
          "$CNN_DATA/FashionMNIST/raw or ../shared/data/FashionMNIST/raw")


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names a cell binds at its top level, names it reads anywhere)."""
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return bound, read


def _loads_data(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "FashionMNIST"
               for n in ast.walk(tree))


def cells_needing_data(sources: list[str]) -> set[int]:
    """Indices of the code cells that load the data or use what such a cell defined."""
    tainted: set[str] = set()
    skip = set()
    for i, source in enumerate(sources):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        bound, read = _names(tree)
        if _loads_data(tree) or read & tainted:
            skip.add(i)
            tainted |= bound
    return skip


def pytest_collection_modifyitems(config, items) -> None:
    if real_fashion_mnist() is not None:
        return
    by_notebook: dict[Path, list] = {}
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and cell.get("cell_type") == "code":
            by_notebook.setdefault(Path(str(item.fspath)), []).append(item)
    for cells in by_notebook.values():
        for i in cells_needing_data([c.cell.source for c in cells]):
            cells[i].add_marker(pytest.mark.skip(reason=REASON))
