"""Reading notebooks: the trusted source (points, setup) and a submission's answer cells.

From a submission only the code of the answer cells is taken, matched by the grade_ids the
SOURCE notebook declares; its test cells, points and cell types are ignored, since tests
and points always come from the source.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotebookError
from ..i18n import DEFAULT, _, notebook_language
from .html_export import HTML_EXPORT, looks_like_html, notebook_from_html

__all__ = ["NotebookError", "SourceNotebook", "Answers", "load_source", "parse_notebook",
           "extract_answers", "MAX_NOTEBOOK_BYTES"]

MAX_NOTEBOOK_BYTES = 32 << 20  # a notebook with the three answers is a few hundred KB
# An answer (all cells carrying one answer id) as JSON text: real answers are a few KB, and
# a job must fit the worker's 1 MiB frame header with room to spare.
MAX_ANSWER_BYTES = 256 << 10


def parse_notebook(data: bytes) -> dict:
    """A submission's bytes as a notebook dict (nbformat 4), or a NotebookError."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(_("the file is {size} MiB, over the {limit} MiB limit for a "
                              "notebook; clear large outputs (Edit > Clear all outputs) and "
                              "submit again").format(size=f"{len(data) / 2**20:.0f}",
                                                     limit=MAX_NOTEBOOK_BYTES >> 20))
    if not data.strip():
        raise NotebookError(_("the file is empty"))
    if looks_like_html(data):  # the notebook exported with nbconvert --to html
        return notebook_from_html(data)
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise NotebookError(_("the file is not text (binary data named .ipynb?)")) from None
    except ValueError as exc:
        raise NotebookError(_("the file is not valid notebook JSON ({error})").format(
            error=exc)) from None
    except RecursionError:
        raise NotebookError(_("the file's JSON is nested too deeply to be a "
                              "notebook")) from None
    if not isinstance(nb, dict):
        raise NotebookError(_("the file is JSON but not a notebook (no top-level object)"))
    if nb.get("nbformat") != 4:
        if "worksheets" in nb or nb.get("nbformat") == 3:
            raise NotebookError(_("this is an nbformat 3 notebook; open it in Jupyter and "
                                  "save it again to convert it to nbformat 4"))
        raise NotebookError(_("unsupported nbformat {version}; expected 4").format(
            version=repr(nb.get("nbformat"))))
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(_("the notebook has no list of cells"))
    return nb


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    if isinstance(src, list) and all(isinstance(s, str) for s in src):
        return "".join(src)
    return src if isinstance(src, str) else ""


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    data = meta.get("nbgrader") if isinstance(meta, dict) else None
    return data if isinstance(data, dict) else {}


def _grade_id(cell: object) -> str | None:
    """A submitted cell's grade_id, or None when it is missing or not a string."""
    gid = _nbgrader(cell).get("grade_id") if isinstance(cell, dict) else None
    return gid if isinstance(gid, str) else None


@dataclass(frozen=True)
class SourceNotebook:
    """The instructor's notebook: the only place points, setup and answer ids come from."""

    path: Path
    fingerprint: str
    points: dict[str, float]             # test cell grade_id -> points
    setup: tuple[tuple[str, str], ...]   # (grade_id, source) of locked setup cells
    answer_ids: frozenset[str]


def load_source(path: Path, setup_ids: tuple[str, ...], parts) -> SourceNotebook:
    """Read and check the source notebook against the parts that will grade it."""
    data = path.read_bytes()
    nb = parse_notebook(data)
    cells = {}
    for cell in nb["cells"]:
        gid = _nbgrader(cell).get("grade_id")
        if gid:
            if gid in cells:
                raise NotebookError(f"{path}: grade_id {gid!r} appears twice")
            cells[gid] = cell
    points, problems = {}, []
    for part in parts:
        test = _nbgrader(cells.get(part.grade_id, {}))
        if not test.get("grade") or not isinstance(test.get("points"), (int, float)):
            problems.append(f"no graded test cell {part.grade_id!r} with points")
        else:
            points[part.grade_id] = float(test["points"])
        for aid in part.answer_ids:
            if not _nbgrader(cells.get(aid, {})).get("solution"):
                problems.append(f"no solution cell {aid!r}")
    setup = []
    for sid in setup_ids:
        if sid not in cells:
            problems.append(f"no setup cell {sid!r}")
        else:
            setup.append((sid, _source(cells[sid])))
    if problems:
        raise NotebookError(f"{path}: " + "; ".join(problems))
    answer_ids = frozenset(a for p in parts for a in p.answer_ids)
    return SourceNotebook(path, hashlib.sha256(data).hexdigest()[:16], points, tuple(setup),
                          answer_ids)


_ESCAPE = re.compile(r"^(\s*)([!%].*)$")
# Errors other than SyntaxError that compiling a hostile cell raises: null bytes (ValueError
# on some 3.11 releases), nesting deeper than the parser's stack (MemoryError, RecursionError).
_UNCOMPILABLE = (ValueError, RecursionError, MemoryError, OverflowError)


def _refusal(why: str) -> str:
    """Code that stands in for an answer the grader will not hand to Python as it is."""
    return f"raise RuntimeError({why!r})\n"


def _compiles(source: str) -> bool | None:
    """True: valid Python; False: a syntax error; None: Python cannot even try (too deep)."""
    try:
        compile(source, "<answer>", "exec", dont_inherit=True)
        return True
    except SyntaxError:
        return False
    except _UNCOMPILABLE:
        return None


def clean_source(source: str) -> tuple[str, list[str]]:
    """Code with IPython escapes (``!cmd``, ``%magic``) removed, and notes saying so."""
    verdict = _compiles(source)
    if verdict is None:
        return _refusal(_("this answer cell cannot be compiled: it is nested too deeply or "
                          "holds a null byte; rewrite it as ordinary Python")), \
            [_("the answer cell could not be compiled, so it was not run")]
    if verdict:
        return source, []
    if source.lstrip().startswith("%%"):
        return "", [_("a cell magic (%%) was not run: the grader runs plain Python only")]
    lines, removed = [], 0
    for line in source.splitlines():
        m = _ESCAPE.match(line)
        if m:
            lines.append(f"{m.group(1)}pass  # removed by the grader: {m.group(2)[:40]}")
            removed += 1
        else:
            lines.append(line)
    notes = [_("{count} shell command or magic line(s) (starting with ! or %) were not "
               "run: the grader runs plain Python only").format(count=removed)] \
        if removed else []
    cleaned = "\n".join(lines) + "\n"
    if _compiles(cleaned) is None:
        return clean_source(cleaned)
    return cleaned, notes


@dataclass(frozen=True)
class Answers:
    """The submission's answer code per answer id, notes about how it was found, and the
    language its metadata asks for (``i18n.notebook_language``)."""

    sources: dict[str, tuple[str, ...]]
    notes: dict[str, tuple[str, ...]]
    language: str = DEFAULT


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, *_UNCOMPILABLE):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name
               for n in tree.body)


def _from_html(nb: dict) -> bool:
    metadata = nb.get("metadata")
    return isinstance(metadata, dict) and metadata.get(HTML_EXPORT) is True


def _html_note(name: str) -> str:
    return _("graded from an HTML export of your notebook (nbconvert): its code cells were "
             "read back from the page, and the last cell defining {name} was graded").format(
        name=name)


def extract_answers(nb: dict, answer_ids: dict[str, str]) -> Answers:
    """``answer_ids`` maps each answer cell's grade_id to the name it must define.

    A NotebookError when none of the answers is there, neither by id nor by definition
    (another notebook handed in by mistake, or one without cells).
    """
    found: dict[str, list[str]] = {aid: [] for aid in answer_ids}
    notes: dict[str, list[str]] = {aid: [] for aid in answer_ids}
    for cell in nb["cells"]:
        gid = _grade_id(cell)
        if gid in found:
            if cell.get("cell_type") != "code":
                notes[gid].append(_("the answer cell was a {kind} cell; it was run as "
                                    "code").format(kind=repr(cell.get("cell_type"))))
            found[gid].append(_source(cell))
    for aid, name in answer_ids.items():
        if len(found[aid]) > 1:
            notes[aid].append(_("{count} cells carry the answer id {id} (a copied cell?); "
                                "they were run in order, so the last definition "
                                "counts").format(count=len(found[aid]), id=repr(aid)))
        if not found[aid]:
            # Some editors drop cell metadata: fall back to the last cell defining the name.
            defining = [_source(c) for c in nb["cells"] if isinstance(c, dict)
                        and c.get("cell_type") == "code" and _defines(_source(c), name)]
            if defining:
                found[aid] = defining[-1:]
                notes[aid].append(_html_note(name) if _from_html(nb) else _(
                    "the answer cell {id} was not found by its id; the last cell defining "
                    "{name} was graded instead").format(id=repr(aid), name=name))
    if answer_ids and not any(found.values()):
        raise NotebookError(_(
            "none of the answer cells ({cells}) is in this notebook, and no cell defines "
            "{names}: was the wrong notebook handed in?").format(
                cells=", ".join(answer_ids), names=", ".join(sorted(set(answer_ids.values())))))
    sources = {}
    for aid, srcs in found.items():
        size = len(json.dumps(srcs))
        if size > MAX_ANSWER_BYTES:
            srcs = [_refusal(_("the answer cell {id} holds {size} KiB of code, over the "
                               "grader's {limit} KiB limit: keep only your solution in "
                               "it").format(id=aid, size=size >> 10,
                                            limit=MAX_ANSWER_BYTES >> 10))]
            notes[aid].append(_("the answer was over {limit} KiB and was not run").format(
                limit=MAX_ANSWER_BYTES >> 10))
        cleaned = []
        for src in srcs:
            code, extra = clean_source(src)
            cleaned.append(code)
            notes[aid].extend(extra)
        sources[aid] = tuple(cleaned)
    return Answers(sources, {k: tuple(v) for k, v in notes.items()}, notebook_language(nb))
