"""The grader's message catalogs, kept in step with the code: ``python -m autograder.catalog``.

It reads every ``_("...")``, ``N_("...")`` and ``ngettext("...", "...", n)`` in
``autograder/`` from the syntax tree and rewrites ``locale/<lang>/LC_MESSAGES/autograder.po``
for each language: translations of messages still in the code are kept, a new message gets
an empty translation (or, when an old one is close to it, that translation marked
``fuzzy`` for review), and messages the code no longer uses are dropped. It prints what
needs a translator's attention; ``tests/test_autograder_lang.py`` fails until nothing does.
"""
from __future__ import annotations

import ast
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .i18n import DEFAULT, DOMAIN, LANGUAGES, LOCALE_DIR, PoEntry, read_po

__all__ = ["Message", "extract", "placeholders", "po_path", "update", "main"]

PACKAGE = Path(__file__).resolve().parent
MARKERS = {"_": 1, "N_": 1, "ngettext": 2}   # function name -> how many string arguments
_FIELD = re.compile(r"(?<!\{)\{([^{}]*)\}")


@dataclass
class Message:
    """A message marked in the code, with its plural form and where it is."""

    msgid: str
    plural: str = ""
    places: list[str] = field(default_factory=list)


def placeholders(text: str) -> list[str]:
    """The ``{field}`` placeholders of a message, sorted (``{{`` escapes excluded)."""
    return sorted(_FIELD.findall(text))


def _marker(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in MARKERS:
        return node.func.id
    return None


def extract(root: Path = PACKAGE) -> tuple[dict[str, Message], list[str]]:
    """Every marked message under ``root`` in order of appearance, and the problems: a
    marker called with anything but string literals (an f-string, a variable) cannot be
    translated, since the catalog never sees its text."""
    found: dict[str, Message] = {}
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = _marker(node)
            if name is None:
                continue
            args = node.args[:MARKERS[name]]
            if len(args) < MARKERS[name] or not all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
                problems.append(f"{rel}:{node.lineno}: {name}() needs string literals")
                continue
            msgid = args[0].value
            message = found.setdefault(msgid, Message(msgid))
            if name == "ngettext":
                message.plural = args[1].value
            message.places.append(f"{rel}:{node.lineno}")
    return found, problems


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_HEADER = ("Project-Id-Version: cnn-course autograder\\n",
           "PO-Revision-Date: 2026-12-02 00:00+0000\\n",
           "Last-Translator: the course team\\n", "Language-Team: the course team\\n",
           "Language: {lang}\\n",
           "MIME-Version: 1.0\\n", "Content-Type: text/plain; charset=UTF-8\\n",
           "Content-Transfer-Encoding: 8bit\\n", "Plural-Forms: nplurals=1; plural=0;\\n")


def _render(lang: str, messages: dict[str, Message], old: dict[str, PoEntry],
            fuzzy: dict[str, str]) -> str:
    lines = [f"# The course's autograder, its student-facing messages in {lang} (domain "
             f"{DOMAIN}).",
             "# Update with: python -m autograder.catalog (see autograder/README.md).",
             'msgid ""', 'msgstr ""'] + [f'"{h}"'.replace("{lang}", lang) for h in _HEADER]
    for m in messages.values():
        entry = old.get(m.msgid)
        forms = entry.msgstr if entry else ()
        lines.append("")
        lines += [f"#: {' '.join(m.places[:4])}"]
        if (entry and entry.fuzzy) or m.msgid in fuzzy:
            lines.append("#, fuzzy")
        if m.msgid in fuzzy:
            forms = old[fuzzy[m.msgid]].msgstr
            lines.append(f"#| msgid {_quote(fuzzy[m.msgid])}")
        lines.append(f"msgid {_quote(m.msgid)}")
        if m.plural:
            lines.append(f"msgid_plural {_quote(m.plural)}")
            lines.append(f"msgstr[0] {_quote(forms[0] if forms else '')}")
        else:
            lines.append(f"msgstr {_quote(forms[0] if forms else '')}")
    return "\n".join(lines) + "\n"


def update(lang: str, root: Path = PACKAGE) -> list[str]:
    """Rewrite ``lang``'s catalog from the code; returns what a translator must do."""
    messages, problems = extract(root)
    path = po_path(lang)
    old = {e.msgid: e for e in read_po(path.read_text(encoding="utf-8"))} \
        if path.exists() else {}
    old.pop("", None)
    gone = [k for k in old if k not in messages]
    fuzzy = {}
    for msgid in (k for k in messages if k not in old):
        close = difflib.get_close_matches(msgid, gone, n=1, cutoff=0.8)
        if close and all(old[close[0]].msgstr):
            fuzzy[msgid] = close[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_render(lang, messages, old, fuzzy), encoding="utf-8")
    todo = list(problems)
    todo += [f"translate (new): {k!r}" for k in messages if k not in old and k not in fuzzy]
    todo += [f"translate (empty): {k!r}" for k in messages
             if k in old and not all(old[k].msgstr)]
    todo += [f"review (fuzzy, from {fuzzy[k]!r}): {k!r}" for k in fuzzy]
    todo += [f"review (fuzzy): {k!r}" for k, e in old.items() if e.fuzzy and k in messages]
    todo += [f"dropped (no longer in the code): {k!r}" for k in gone]
    return todo


def main() -> int:
    status = 0
    for lang in (x for x in LANGUAGES if x != DEFAULT):
        todo = update(lang)
        print(f"{po_path(lang)}: {len(todo)} item(s) to look at")
        for item in todo:
            print(f"  {item}")
        status |= any(not t.startswith("dropped") for t in todo)
    return status


if __name__ == "__main__":
    sys.exit(main())
