"""Is the Korean edition complete, current and faithful to the English page's markup?

The Korean site is built from the English notebooks and the gettext catalogs under
``locale/ko/LC_MESSAGES/`` (``scripts/build_book.py``). These tests fail when a catalog has
an untranslated or fuzzy entry, when a translation drops a piece of markup that the English
text carries (inline code, a formula, a link's target, a role), when a translation is the
English text copied, and when the English text has changed since the catalogs were last
merged (``python scripts/build_book.py catalogs``).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from helpers import REPO

LOCALE = REPO / "locale" / "ko" / "LC_MESSAGES"
CATALOGS = sorted((LOCALE / "book").glob("*.po"))  # the site's; the grader's have their own tests
IDS = [str(p.relative_to(LOCALE).with_suffix("")) for p in CATALOGS]
# a translator's comment that lets an entry stay as the English (a title, a name)
KEEP = "keep-english:"

_CODE = re.compile(r"`[^`]+`")
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_WORD = re.compile(r"[A-Za-z]{2,}")


def _messages(path: Path):
    with path.open("rb") as f:
        catalog = read_po(f)
    return [m for m in catalog if m.id]


_ROLE_SPAN = re.compile(r"(\{[a-z][a-z:-]*\})`([^`]*)`")


def _role_target(content: str) -> str:
    """A role's target: ``text <target>`` keeps only the target (the text is prose)."""
    explicit = re.search(r"<([^<>]+)>\s*$", content)
    return explicit.group(1) if explicit else content


def _markup(text: str) -> set[str]:
    roles = {f"{m.group(1)}{_role_target(m.group(2))}" for m in _ROLE_SPAN.finditer(text)}
    rest = _ROLE_SPAN.sub(" ", text)
    return ({m.group(0) for m in _CODE.finditer(rest)}
            | {m.group(0) for m in _MATH.finditer(rest)}
            | {m.group(1) for m in _LINK.finditer(rest)} | roles)


def _prose(text: str) -> list[str]:
    """The English words left once code, formulas and link targets are taken out."""
    for pattern in (_ROLE_SPAN, _CODE, _MATH, _LINK):
        text = pattern.sub(" ", text)
    return _WORD.findall(text)


def test_is_there_a_catalog_for_every_page():
    pages = {p.relative_to(REPO).with_suffix("").as_posix()
             for p in (REPO / "book").glob("*") if p.suffix in (".md", ".ipynb")}
    book = {i for i in IDS if i.startswith("book/")}  # beside them: assignment1.po, ...
    assert pages == book, "run `python scripts/build_book.py catalogs`"


@pytest.mark.parametrize("path", CATALOGS, ids=IDS)
def test_is_every_entry_translated_and_none_fuzzy(path):
    messages = _messages(path)
    missing = [m.id[:70] for m in messages if not m.string]
    fuzzy = [m.id[:70] for m in messages if m.fuzzy]
    assert not missing, f"{len(missing)} of {len(messages)} untranslated: {missing[:5]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy (the English changed; check them): {fuzzy[:5]}"


@pytest.mark.parametrize("path", CATALOGS, ids=IDS)
def test_does_every_translation_keep_the_markup_of_its_english(path):
    lost = []
    for m in _messages(path):
        if m.string:
            gone = sorted(_markup(m.id) - _markup(m.string))
            if gone:
                lost.append(f"{m.id[:50]!r}: {gone}")
    assert not lost, "\n".join(lost[:10])


@pytest.mark.parametrize("path", CATALOGS, ids=IDS)
def test_is_the_prose_written_in_korean(path):
    """A translation that is the English sentence copied fails, unless it is a few words
    (a name, a title) or a translator's comment says why it stays English."""
    copied = []
    for m in _messages(path):
        if not m.string or _HANGUL.search(m.string):
            continue
        kept = any(c.startswith(KEEP) for c in m.user_comments)
        if len(_prose(m.string)) > 3 and not kept:
            copied.append(m.id[:70])
    assert not copied, f"{len(copied)} entries are not Korean: {copied[:5]}"


@pytest.mark.slow
def test_do_the_catalogs_hold_every_sentence_of_the_current_english_text(tmp_path):
    """The English text as it is now, extracted by Sphinx's gettext builder, against the
    catalogs: a sentence added or changed in English without a catalog update fails."""
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "jupyter-book"), "build", str(REPO), "--all", "--quiet",
                    "--builder", "custom", "--custom-builder", "gettext",
                    "--path-output", str(tmp_path)], check=True, cwd=REPO,
                   capture_output=True)
    pot_root = tmp_path / "_build" / "gettext"
    stale = []
    for pot in sorted(pot_root.rglob("*.pot")):
        page = pot.relative_to(pot_root).with_suffix("")
        po = LOCALE / page.with_suffix(".po")
        assert po.exists(), f"no catalog for {page}: run `python scripts/build_book.py catalogs`"
        have = {m.id for m in _messages(po) if m.string and not m.fuzzy}
        new = [m.id[:60] for m in _messages(pot) if m.id not in have]
        if new:
            stale.append(f"{page}: {len(new)} sentences without a translation, e.g. {new[:2]}")
    assert not stale, ("\n".join(stale) + "\nrun `python scripts/build_book.py catalogs "
                       "<page>` and translate the new entries")
