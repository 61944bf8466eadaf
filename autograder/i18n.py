"""The language of the grader's student-facing text: one GNU gettext catalog per language.

Every message a student reads (check names, failure messages, hints, the feedback page,
results.json's ``feedback``) is written in English in the code and marked with ``_()``
(or ``ngettext()`` when it depends on a count, ``N_()`` where it is only named now and
translated later, such as a check's name). Placeholders are ``{name}`` fields, filled
with ``.format(...)`` AFTER translation, so a translator can move them::

    _("{name} returned shape {got}; expected {want}").format(name=..., got=..., want=...)

The translations live in ``locale/<lang>/LC_MESSAGES/autograder.po`` (domain
``autograder``); ``python -m autograder.catalog`` brings that file up to date with the
code, and ``tests/test_autograder_lang.py`` fails on a message without a translation.
English is the default and needs no catalog. Instructor-facing text (logs, errors of the
command, grades.csv) is not marked and stays English.

The language is per submission: ``with language("ko"):`` around its grading (a context
variable, so threads grading other submissions keep theirs). Code inside the sandbox never
imports this module: the grader translates what comes back from its structured data.
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

__all__ = ["LANGUAGES", "DEFAULT", "DOMAIN", "LOCALE_DIR", "METADATA_KEY", "_", "N_",
           "ngettext", "translate", "language", "current", "catalog", "notebook_language",
           "read_po"]

LANGUAGES = ("en", "ko")
DEFAULT = "en"
DOMAIN = "autograder"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
# The notebook metadata the Korean release writes: {"cnn_course": {"language": "ko"}}.
METADATA_KEY = ("cnn_course", "language")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("autograder_language",
                                                               default=DEFAULT)


def current() -> str:
    """The language of the messages being composed now."""
    return _current.get()


@contextlib.contextmanager
def language(lang: str | None) -> Iterator[str]:
    """Compose the messages inside in ``lang`` (None or an unknown code: English)."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` (a string literal) in the current language: itself when English or not
    translated."""
    return translate(message)


def translate(message: str) -> str:
    """The translation of a message marked elsewhere with ``N_()`` (a check's name, a
    part's advice); ``_()`` takes only string literals, so that the catalog sees them."""
    entry = catalog(current()).get(message)
    return entry[0] if entry and entry[0] else message


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (``_()`` does, later)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` in the current language (Korean has one form for every count)."""
    entry = catalog(current()).get(singular)
    if entry and entry[0]:
        return entry[0] if len(entry) == 1 else entry[min(_plural_index(current(), n),
                                                          len(entry) - 1)]
    return singular if n == 1 else plural


def _plural_index(lang: str, n: int) -> int:
    return 0 if lang == "ko" else int(n != 1)


def notebook_language(nb: object) -> str:
    """The language a notebook's metadata asks for (the Korean release writes "ko"), or
    English: anything missing, malformed or unknown counts as English."""
    value: object = nb
    for key in ("metadata", *METADATA_KEY):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, tuple[str, ...]]:
    """msgid -> translated forms, for ``lang``; fuzzy and untranslated entries left out."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang == DEFAULT or not path.is_file():
        return {}
    return {e.msgid: e.msgstr for e in read_po(path.read_text(encoding="utf-8"))
            if e.msgid and not e.fuzzy and all(e.msgstr)}


class PoEntry:
    """One entry of a .po file, as far as the grader needs it."""

    def __init__(self) -> None:
        self.msgid, self.msgid_plural = "", ""
        self.msgstr: tuple[str, ...] = ()
        self.fuzzy, self.obsolete = False, False
        self.comments: list[str] = []


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}


def _unquote(text: str) -> str:
    body = text.strip()[1:-1]
    return re.sub(r'\\(.)', lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def read_po(text: str) -> list[PoEntry]:
    """The entries of a .po file (GNU gettext's format: comments, msgid, msgid_plural,
    msgstr or msgstr[N], each string possibly continued on the next lines)."""
    entries, entry, field = [], PoEntry(), None
    values: dict[str, str] = {}

    def finish() -> None:
        nonlocal entry, values
        if values:
            entry.msgid, entry.msgid_plural = values.get("msgid", ""), values.get(
                "msgid_plural", "")
            forms = sorted(k for k in values if k.startswith("msgstr"))
            entry.msgstr = tuple(values[k] for k in forms)
            entries.append(entry)
        entry, values = PoEntry(), {}

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#~"):
            entry.obsolete = True
            continue
        if not stripped:
            finish()
            field = None
        elif stripped.startswith("#"):
            if field and field.startswith("msgstr"):
                finish()
            entry.fuzzy |= stripped.startswith("#,") and "fuzzy" in stripped
            entry.comments.append(line)
        elif stripped.startswith('"') and field:
            values[field] += _unquote(stripped)
        else:
            key, _sep, rest = stripped.partition(" ")
            if key == "msgid" and field and field.startswith("msgstr"):
                finish()
            field = key.replace("[", "_").replace("]", "") if key.startswith("msgstr[") \
                else key
            values[field] = _unquote(rest)
    finish()
    return [e for e in entries if not e.obsolete]
