"""Is the code a chapter defines for teaching the same code that cnncourse ships?

A chapter may define ``corr2d``, ``LeNet``, ``Residual``, ... in a cell so that readers see it
built up, but then the definition must equal the package's, docstring included: one copy of
the logic, shown twice. Definitions are compared as syntax trees, so only formatting and
comments may differ.
"""
from __future__ import annotations

import ast
import difflib
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from helpers import chapter_notebooks

PACKAGE_MODULES = ("cnncourse.ops", "cnncourse.models")


@dataclass(frozen=True)
class Mismatch:
    """A chapter definition that differs from the package's, with a readable diff."""

    name: str
    cell: int
    module: str
    diff: str

    def __str__(self) -> str:
        return (f"`{self.name}` in cell {self.cell} differs from {self.module}.{self.name} "
                f"(- package, + chapter); copy the package's definition or import it:\n"
                f"{self.diff}")


def package_definitions() -> dict[str, tuple[str, ast.AST]]:
    """name -> (module, syntax tree) for every function and class defined in the package modules."""
    import importlib

    found = {}
    for module_name in PACKAGE_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and \
                    getattr(obj, "__module__", None) == module_name:
                tree = ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0]
                found[name] = (module_name, tree)
    return found


def _parse_cell(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        # IPython syntax (%magics, !shell): let IPython translate it to plain Python first
        from IPython.core.inputtransformer2 import TransformerManager

        try:
            return ast.parse(TransformerManager().transform_cell(source))
        except SyntaxError:
            return None


def compare_cells(cells: list[str], known: dict[str, tuple[str, ast.AST]]) -> list[Mismatch]:
    """Every top-level def/class in ``cells`` whose name the package defines, if it differs."""
    mismatches = []
    for number, source in enumerate(cells, start=1):
        tree = _parse_cell(source)
        for node in tree.body if tree else []:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if node.name not in known:
                continue
            module, reference = known[node.name]
            if ast.dump(node) != ast.dump(reference):
                expected = ast.unparse(reference).splitlines()
                actual = ast.unparse(node).splitlines()
                diff = "\n".join(difflib.unified_diff(expected, actual, "package", "chapter",
                                                      lineterm=""))
                if not diff:  # same text, different tree: show the trees themselves
                    diff = "\n".join(difflib.unified_diff(
                        ast.dump(reference, indent=1).splitlines(),
                        ast.dump(node, indent=1).splitlines(), "package", "chapter",
                        lineterm=""))
                mismatches.append(Mismatch(node.name, number, module, diff))
    return mismatches


def code_cells(path: Path) -> list[str]:
    """Sources of all cells, code or not, so cell numbers match the notebook; markdown is blank."""
    nb = nbformat.read(path, as_version=4)
    return [c.source if c.cell_type == "code" else "" for c in nb.cells]


@pytest.fixture(scope="module")
def known() -> dict[str, tuple[str, ast.AST]]:
    return package_definitions()


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.stem)
def test_are_the_chapter_definitions_the_package_code(path: Path, known):
    mismatches = compare_cells(code_cells(path), known)
    assert not mismatches, f"{path.name}:\n" + "\n\n".join(map(str, mismatches))


def test_does_the_comparison_accept_the_package_source_itself(known):
    import cnncourse.models
    import cnncourse.ops

    cells = [inspect.getsource(cnncourse.ops.corr2d), inspect.getsource(cnncourse.models.Residual)]
    assert compare_cells(cells, known) == []


def test_does_the_comparison_report_a_changed_definition(known):
    import cnncourse.ops

    source = inspect.getsource(cnncourse.ops.corr2d)
    changed = source.replace("X.shape[0] - kh + 1", "X.shape[0] - kh")
    assert changed != source
    mismatches = compare_cells(["import torch", changed], known)
    assert [(m.name, m.cell, m.module) for m in mismatches] == [("corr2d", 2, "cnncourse.ops")]
    removed = [line for line in mismatches[0].diff.splitlines() if line.startswith("-    ")]
    assert len(removed) == 1 and "X.shape[0] - kh + 1" in removed[0]


def test_does_the_comparison_report_a_changed_docstring(known):
    import cnncourse.models

    source = inspect.getsource(cnncourse.models.vgg_block)
    changed = source.replace('"""', '"""Changed. ', 1)
    assert [m.name for m in compare_cells([changed], known)] == ["vgg_block"]


def test_does_the_comparison_ignore_comments_magics_and_other_names(known):
    import cnncourse.ops

    source = inspect.getsource(cnncourse.ops.pool2d)
    commented = source.replace("    ph, pw = pool_size", "    ph, pw = pool_size  # a comment")
    cells = ["%matplotlib inline\n" + commented, "def my_helper():\n    return 1"]
    assert compare_cells(cells, known) == []
