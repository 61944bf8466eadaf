"""The student notebook in another language, from the same source and a gettext catalog.

The source notebook stays English. Its text cells and the values of its message table (the
locked ``self_check_messages`` cell, which every self-check takes its messages from) are
the catalog's msgids: ``locale/<lang>/LC_MESSAGES/<assignment>.po``, each entry with the
cell's grade_id (text) or the message's key (table) as msgctxt. ``translate_notebook``
replaces exactly those strings, points the links to the site at its ``<lang>/`` edition
and records the language in the notebook's metadata; every other cell, id and nbgrader
field is left as it is, so nbgrader generates the same release from it apart from the text.

    python -m autograder.translate ko    # merge the English strings into the catalog

adds new English strings as untranslated entries and marks changed ones fuzzy;
``tests/test_assignment1_i18n.py`` fails until a translator has filled them in.
"""
from __future__ import annotations

import ast
import copy
import logging
import string
import sys
import unicodedata
from pathlib import Path

from .assignments import COURSE_ROOT, Assignment

__all__ = ["MESSAGE_CELL", "SITE_BOOK", "catalog_path", "english_strings", "load_catalog",
           "translate_notebook", "translated_course", "update_catalog"]

log = logging.getLogger(__name__)

MESSAGE_CELL = "self_check_messages"    # grade_id of the locked cell with the table
TABLES = ("MESSAGES",)                  # its dicts whose values are translated
SITE_BOOK = "https://cnn-course.github.io/cnn-course/book/"
WIDTH = 88                              # display columns of the table's lines
Strings = list[tuple[str, str]]         # (msgctxt, English msgid), in notebook order


def catalog_path(assignment: Assignment, language: str, course_root: Path = COURSE_ROOT) -> Path:
    return course_root / "locale" / language / "LC_MESSAGES" / f"{assignment.id}.po"


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _table_values(code: str) -> list[tuple[str, ast.Constant]]:
    """(key, value node) of every entry of the table dicts, in order."""
    found = []
    for node in ast.parse(code).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in TABLES):
            if not isinstance(node.value, ast.Dict):
                raise ValueError(f"{node.targets[0].id} must be a dict display")
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if not (isinstance(key, ast.Constant) and isinstance(value, ast.Constant)
                        and isinstance(key.value, str) and isinstance(value.value, str)):
                    raise ValueError(f"{MESSAGE_CELL}: every entry must be 'key': 'text'")
                found.append((key.value, value))
    return found


def english_strings(nb: dict) -> Strings:
    """What a translator translates: each text cell, then each message of the table."""
    out: Strings = []
    for cell in nb["cells"]:
        gid = _grade_id(cell)
        if cell["cell_type"] == "markdown" and _source(cell).strip():
            out.append((gid or cell["id"], _source(cell)))
        elif gid == MESSAGE_CELL:
            out += [(key, node.value) for key, node in _table_values(_source(cell))]
    return out


def load_catalog(path: Path):
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        return read_po(f)


def _fields(text: str) -> list[str]:
    return sorted(f"{name}:{spec}" for _, name, spec, _ in string.Formatter().parse(text)
                  if name is not None)


def _translation(catalog, context: str, english: str, fields: bool) -> str:
    """The catalog's translation, or the English with a warning when there is none (or,
    with ``fields``, when its {fields} are not the English ones)."""
    message = catalog.get(english, context=context)
    if message is None or not message.string or message.fuzzy:
        log.warning("%s: no translation of %r (%s); the English text stays", catalog.locale,
                    english[:60], context)
        return english
    if fields and _fields(message.string) != _fields(english):
        log.warning("%s: the translation of %r has other {fields}; the English text stays",
                    catalog.locale, english[:60])
        return english
    return message.string


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _chunks(text: str, room: int) -> list[str]:
    """``text`` cut after spaces and newlines into pieces whose literals fit in ``room``."""
    words, pieces, line, depth = [], [], "", 0
    for part in text.replace("\n", "\n\0").split("\0"):
        for word in (w for w in part.replace(" ", " \0").split("\0") if w):
            if depth > 0:  # not inside brackets: X[i:i + kh] stays on one line
                words[-1] += word
            else:
                words.append(word)
            depth += sum(word.count(c) for c in "([{") - sum(word.count(c) for c in ")]}")
    for word in words:
        if line and _width(_literal(line + word)) > room:
            pieces.append(line)
            line = ""
        line += word
    return [*pieces, line] if line or not pieces else pieces


def _render(text: str, column: int, parenthesized: bool) -> str:
    """The literal for ``text`` starting at ``column``: one line if it fits, else pieces
    aligned under the first (inside new parentheses when the English had none)."""
    if _width(_literal(text)) <= WIDTH - column - 2:
        return _literal(text)
    if not parenthesized:
        column += 1
    pieces = [_literal(p) for p in _chunks(text, WIDTH - column - 2)]
    body = ("\n" + " " * column).join(pieces)
    return body if parenthesized else f"({body})"


def _translate_table(code: str, translate) -> str:
    """The message cell with each table value replaced by ``translate(key, value)``; every
    other character of the cell stays as it is."""
    lines = code.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode()))
    raw = code.encode()
    edits = []
    for key, node in _table_values(code):
        begin = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        column = _width(raw[starts[node.lineno - 1]:begin].decode())
        parenthesized = raw[:begin].rstrip().endswith(b"(")
        new = translate(key, node.value)
        if new != node.value:
            edits.append((begin, end, _render(new, column, parenthesized).encode()))
    for begin, end, new in reversed(edits):
        raw = raw[:begin] + new + raw[end:]
    return raw.decode()


def translate_notebook(nb: dict, catalog, language: str) -> dict:
    """A copy of ``nb`` with its text cells and messages in ``language``."""
    out = copy.deepcopy(nb)
    site = SITE_BOOK.replace("/book/", f"/{language}/book/")
    for cell in out["cells"]:
        gid = _grade_id(cell)
        if cell["cell_type"] == "markdown" and _source(cell).strip():
            text = _translation(catalog, gid or cell["id"], _source(cell), fields=False)
            cell["source"] = text.replace(SITE_BOOK, site)
        elif gid == MESSAGE_CELL:
            code = _translate_table(_source(cell), lambda key, english: _translation(
                catalog, key, english, fields=True))
            cell["source"] = code.replace(SITE_BOOK, site)
    out["metadata"]["cnn_course"] = {"language": language}
    return out


def translated_course(assignment: Assignment, language: str, folder: Path,
                      course_root: Path = COURSE_ROOT) -> Path:
    """A course folder for nbgrader whose source is the translation; returns the folder."""
    import json
    import shutil

    source = folder / "solutions" / assignment.id
    shutil.copytree(course_root / "solutions" / assignment.id, source)
    shutil.copy(course_root / "nbgrader_config.py", folder / "nbgrader_config.py")
    nb = json.loads(assignment.source_path(course_root).read_text())
    catalog = load_catalog(catalog_path(assignment, language, course_root))
    translated = translate_notebook(nb, catalog, language)
    (source / assignment.notebook).write_text(json.dumps(translated, indent=1,
                                                         ensure_ascii=False) + "\n")
    return folder


def update_catalog(assignment: Assignment, language: str,
                   course_root: Path = COURSE_ROOT) -> Path:
    """Merge the source's English strings into the catalog (new: untranslated; changed:
    fuzzy; gone: dropped), as ``make catalogs`` does for the book."""
    import json

    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    nb = json.loads(assignment.source_path(course_root).read_text())
    messages = {key for cell in nb["cells"] if _grade_id(cell) == MESSAGE_CELL
                for key, _ in _table_values(_source(cell))}
    template = Catalog(project=f"cnn-course {assignment.id}", fuzzy=False)
    for context, english in english_strings(nb):
        flags = ["python-brace-format"] if context in messages else []
        template.add(english, context=context, flags=flags)
    path = catalog_path(assignment, language, course_root)
    if path.exists():
        catalog = load_catalog(path)
        catalog.update(template, no_fuzzy_matching=False)
        catalog.obsolete.clear()
    else:
        catalog = Catalog(locale=language, project=template.project, fuzzy=False)
        catalog.update(template)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=88, omit_header=False, sort_output=False)
    return path


if __name__ == "__main__":
    from .assignments import ASSIGNMENTS

    for lang in sys.argv[1:] or ["ko"]:
        for item in ASSIGNMENTS.values():
            print(f"updated {update_catalog(item, lang)}")
