"""Build the course website in both languages from the same notebooks (``make book``).

    python scripts/build_book.py            # _build/html (English) and _build/html/ko
    python scripts/build_book.py catalogs   # refresh locale/ko/LC_MESSAGES/*.po from the text
    python scripts/build_book.py catalogs book/06_lenet   # only the catalogs of these pages

The Korean site is the same Jupyter Book built with ``language: ko``: Sphinx replaces every
paragraph, heading, list item and figure's alt text with its translation from the gettext
catalogs under ``locale/ko/LC_MESSAGES/`` and leaves code and stored outputs as they are,
so no code is ever written twice. ``catalogs`` extracts the English text (``.pot``) and
merges it into the catalogs with ``sphinx-intl``: new or changed paragraphs appear as
untranslated (or fuzzy) entries for a translator to fill in; ``tests/test_i18n.py`` fails
until they are.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
BIN = Path(sys.executable).parent
KO_LOCALE = ROOT / "locale" / "ko" / "LC_MESSAGES"
# the footer is configuration (_config.yml: html.extra_footer), not page text
KO_FOOTER = ("<p>이 강의의 코드와 글은 직접 쓴 것입니다. "
             '<a href="https://d2l.ai">Dive into Deep Learning</a>(Zhang 외)과 인용한 논문에서 '
             "가져온 사실과 수치는 쓰인 곳에 출처를 밝혔습니다.</p>")
# settings whose paths are relative to the configuration file's folder
_PATH_KEYS = ("html_extra_path", "html_static_path", "templates_path", "locale_dirs")


def _jupyter_book(*args: str) -> None:
    cmd = [str(BIN / "jupyter-book"), "build", str(ROOT), "--all", "--warningiserror",
           "--keep-going", "--quiet", *args]
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"jupyter-book failed ({result.returncode}): {' '.join(args)}")


def korean_config() -> Path:
    """_config.yml with ``language: ko``, written to _build/ with its paths made absolute
    (Jupyter Book reads paths relative to the configuration file)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = _translated("book/intro", config["title"])  # the landing page's h1
    config["html"]["extra_footer"] = KO_FOOTER
    config["sphinx"]["config"].setdefault("html_theme_options", {})["search_bar_text"] = \
        "이 책에서 검색..."
    for key in ("logo",):
        config[key] = str(ROOT / config[key])
    config["html"]["favicon"] = str(ROOT / config["html"]["favicon"])
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {k: str(ROOT / v)
                                  for k, v in sphinx["local_extensions"].items()}
    for key in _PATH_KEYS:
        sphinx["config"][key] = [str(ROOT / p) for p in sphinx["config"].get(key, [])]
    sphinx["config"]["language"] = "ko"
    path = BUILD / "ko-config" / "_config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


def compile_catalogs() -> None:
    """The book's catalogs and the theme's strings (sphinx.po), .po to .mo, for the Korean
    build. Sphinx's own compiling is off
    (``gettext_auto_build: false``): it would compile every catalog under locale/, the
    grader's too, whose headers are not Sphinx's business."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in [KO_LOCALE / "sphinx.po", *sorted((KO_LOCALE / "book").glob("*.po"))]:
        with po.open("rb") as f:
            catalog = read_po(f)
        for message in catalog:
            if message.id and isinstance(message.string, str):
                message.string = _numbered_title(message.id, message.string)
        with po.with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog)  # fuzzy entries are left out, as Sphinx would


def _numbered_title(msgid: str, msgstr: str) -> str:
    """Sphinx parses a translated title as Markdown, where "2. 교차상관" starts a numbered
    list and the title is lost; a title that the English numbers keeps its number as text."""
    number = re.match(r"(\d+)\. ", msgid)
    if number and msgstr.startswith(number.group(0)):
        return f"{number.group(1)}\\. {msgstr[len(number.group(0)):]}"
    return msgstr


def _translated(page: str, text: str) -> str:
    """``text``'s translation in ``page``'s catalog (the English if it has none)."""
    from babel.messages.pofile import read_po

    with (KO_LOCALE / f"{page}.po").open("rb") as f:
        message = read_po(f).get(text)
    return message.string if message and message.string and not message.fuzzy else text


def korean_toc() -> Path:
    """_toc.yml with its part captions in Korean (they come from the toc, not a page; the
    root page's catalog holds them)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        part["caption"] = _translated("book/intro", part["caption"])
    path = BUILD / "ko-config" / "_toc.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False))
    return path


def build() -> None:
    _jupyter_book()
    compile_catalogs()
    _jupyter_book("--config", str(korean_config()), "--toc", str(korean_toc()),
                  "--path-output", str(BUILD / "ko"))
    target = BUILD / "html" / "ko"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(BUILD / "ko" / "_build" / "html", target)
    print(f"Sites: {BUILD / 'html' / 'index.html'} and {target / 'index.html'}")


def catalogs(pages: list[str]) -> None:
    """Extract the English text and merge it into the Korean catalogs: every page's, or only
    those of ``pages`` (``book/06_lenet``), so translators working on other pages are left
    alone."""
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="i18n-", dir=BUILD) as tmp:
        _jupyter_book("--builder", "custom", "--custom-builder", "gettext", "--path-output",
                      tmp)
        pot = Path(tmp) / "_build" / "gettext"
        if pages:
            chosen = Path(tmp) / "chosen"
            for page in pages:
                source = pot / f"{page.removesuffix('.ipynb').removesuffix('.md')}.pot"
                if not source.exists():
                    raise SystemExit(f"no text extracted for {page} (looked for {source})")
                target = chosen / source.relative_to(pot)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
            pot = chosen
        subprocess.run([str(BIN / "sphinx-intl"), "update", "-p", str(pot), "-l", "ko",
                        "-d", str(ROOT / "locale")], cwd=ROOT, check=True)
        for page in pot.rglob("*.pot"):
            _drop_format_flags(ROOT / "locale" / "ko" / "LC_MESSAGES" /
                               page.relative_to(pot).with_suffix(".po"))


# Babel takes "2% of" or "{x}" in prose for format strings and flags the entry, after which
# msgfmt --check rejects a translation that words it differently; the book has no format
# strings, so the flags are dropped.
_FORMAT_FLAGS = {"python-format", "python-brace-format", "no-python-format",
                 "no-python-brace-format"}


def _drop_format_flags(path: Path) -> None:
    from babel.messages.pofile import read_po, write_po

    with path.open("rb") as f:
        catalog = read_po(f)
    for message in catalog:
        message.flags -= _FORMAT_FLAGS
    with path.open("wb") as f:
        write_po(f, catalog, width=76)


if __name__ == "__main__":
    if sys.argv[1:2] == ["catalogs"]:
        catalogs(sys.argv[2:])
    else:
        build()
