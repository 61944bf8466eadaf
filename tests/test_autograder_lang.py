"""Does the grader speak Korean when asked, and only then?

``python -m autograder grade --lang ko`` (or a notebook whose metadata carries
{"cnn_course": {"language": "ko"}}, as the Korean release writes it) must give every
student-facing message in Korean, from one gettext catalog, with the same scores as in
English; English stays the default. The catalog is checked against the messages marked in
the code, read from the syntax tree: a message added in English without its translation
fails here. The grading runs are real (sandboxed workers, the real Fashion-MNIST for the
training part).
"""
from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import catalog as tool
from autograder import i18n
from autograder.assignments import get_assignment
from autograder.pipeline import Options, grade

from helpers import REPO

FIXTURES = REPO / "tests" / "fixtures" / "assignment1"
SOLUTION = REPO / "solutions" / "assignment1" / "assignment1.ipynb"
RELEASE = REPO / "exercises" / "assignment1" / "assignment1.ipynb"
CHECK_PARTS = ("corr2d", "pool2d", "residual")     # everything but the training part
FAILING = ("corr2d__off_by_one", "corr2d__flipped_kernel", "corr2d__integer_output",
           "corr2d__calls_f_conv2d", "pool2d__avg_computes_max", "pool2d__one_too_large",
           "residual__relu_before_add", "residual__no_1x1_when_shape_changes",
           "residual__forward_indented_wrong")
PART_TIMEOUT_S = 15.0
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Words that stay English in Korean text: names of things in code, units, products.
NAMES = {"ReLU", "ResNet", "PyTorch", "Python", "Jupyter", "JSON", "NaN", "None", "True",
         "False", "GPU", "CPU", "GiB", "MiB", "KiB", "QUICK", "Residual", "max",
         "avg", "mode", "torch", "forward", "def", "class"}


# --- the catalog ----------------------------------------------------------------------

def _entries() -> dict:
    text = tool.po_path("ko").read_text(encoding="utf-8")
    return {e.msgid: e for e in i18n.read_po(text) if e.msgid}


def _has_words(text: str) -> bool:
    """Whether a message says something in words (not only placeholders and signs)."""
    return bool(re.search(r"[A-Za-z]{3,}", re.sub(r"\{[^{}]*\}", "", text)))


def test_does_every_marked_message_have_a_korean_translation_and_nothing_else():
    messages, problems = tool.extract()
    assert not problems, problems           # a marker with an f-string or a variable
    assert len(messages) > 150               # the parts, the checks, the page: all marked
    entries = _entries()
    missing = [m for m in messages if m not in entries or not entries[m].msgstr
               or not all(s.strip() for s in entries[m].msgstr)]
    fuzzy = [m for m in messages if m in entries and entries[m].fuzzy]
    fields = [m for m, msg in messages.items() if m in entries and any(  # each field, once
        set(tool.placeholders(s)) != set(tool.placeholders(m)) for s in entries[m].msgstr)
        or (msg.plural and set(tool.placeholders(msg.plural)) != set(tool.placeholders(m)))]
    english = [m for m in messages if m in entries and _has_words(m)
               and not any(HANGUL.search(s) for s in entries[m].msgstr)]
    stale = sorted(set(entries) - set(messages))
    assert not missing, f"untranslated (run python -m autograder.catalog): {missing}"
    assert not fuzzy, f"fuzzy, to review: {fuzzy}"
    assert not fields, f"placeholders differ from the English: {fields}"
    assert not english, f"left in English: {english}"
    assert not stale, f"in the catalog but no longer in the code: {stale}"


def test_does_the_catalog_see_a_new_message_and_refuse_one_it_cannot_read(tmp_path):
    package = tmp_path / "autograder"
    package.mkdir()
    (package / "new.py").write_text(
        "from .i18n import _, ngettext\n"
        "HINT = _('a brand-new hint for students, {name}')\n"
        "COUNT = ngettext('{n} case', '{n} cases', 2)\n"
        "BAD = _(f'built at run time {HINT}')\n")
    messages, problems = tool.extract(package)
    assert set(messages) == {"a brand-new hint for students, {name}", "{n} case"}
    assert messages["{n} case"].plural == "{n} cases"
    assert len(problems) == 1 and "new.py:4" in problems[0]
    assert "a brand-new hint for students, {name}" not in i18n.catalog("ko")  # so: a failure


def test_does_updating_the_catalog_keep_translations_and_flag_changed_messages(tmp_path,
                                                                               monkeypatch):
    po = tmp_path / "autograder.po"
    shutil.copy(tool.po_path("ko"), po)
    real = _entries()
    monkeypatch.setattr(tool, "po_path", lambda lang: po)
    package = tmp_path / "autograder"
    package.mkdir()
    (package / "m.py").write_text(
        "from .i18n import _\n"
        "A = _('the file is empty')\n"                                   # unchanged
        "B = _('the notebook has no list of cells at all')\n"            # edited
        "C = _('a message nobody has translated yet')\n")                # new
    todo = tool.update("ko", package)
    entries = {e.msgid: e for e in i18n.read_po(po.read_text(encoding="utf-8")) if e.msgid}
    assert set(entries) == {"the file is empty", "the notebook has no list of cells at all",
                            "a message nobody has translated yet"}
    assert entries["the file is empty"].msgstr == real["the file is empty"].msgstr
    assert not entries["the file is empty"].fuzzy
    edited = entries["the notebook has no list of cells at all"]
    assert edited.fuzzy and edited.msgstr == real["the notebook has no list of cells"].msgstr
    assert entries["a message nobody has translated yet"].msgstr == ("",)
    assert any(t.startswith("translate (new)") for t in todo)
    assert any(t.startswith("review (fuzzy") for t in todo)
    assert any(t.startswith("dropped") for t in todo)


def test_is_english_the_default_and_korean_only_inside_its_context():
    assert i18n.current() == "en" and i18n._("the file is empty") == "the file is empty"
    with i18n.language("ko"):
        assert i18n._("the file is empty") == "파일이 비어 있습니다"
        with i18n.language("fr"):  # an unknown language is English
            assert i18n._("the file is empty") == "the file is empty"
    assert i18n.current() == "en"


@pytest.mark.parametrize("metadata, expected", [
    ({"cnn_course": {"language": "ko"}}, "ko"), ({"cnn_course": {"language": "en"}}, "en"),
    ({"cnn_course": {"language": "fr"}}, "en"), ({"cnn_course": "ko"}, "en"),
    ({"language": "ko"}, "en"), ({}, "en")])
def test_does_the_notebook_metadata_choose_the_language(metadata, expected):
    assert i18n.notebook_language({"metadata": metadata, "cells": []}) == expected


# --- real grading runs ----------------------------------------------------------------

def korean_notebook(path: Path, dest: Path) -> Path:
    """A copy of the notebook as the Korean release marks it (metadata only)."""
    nb = json.loads(path.read_text())
    nb = copy.deepcopy(nb)
    nb.setdefault("metadata", {})["cnn_course"] = {"language": "ko"}
    dest.write_text(json.dumps(nb))
    return dest


def english_runs(text: str) -> list[str]:
    """Runs of three or more English words in a row, outside code, quotes and names: what
    an untranslated sentence leaves behind in a Korean text."""
    text = re.sub(r"`[^`]*`", " | ", text)          # code in backticks
    text = re.sub(r'"[^"]*"', " | ", text)          # quoted error messages of Python
    runs, run = [], []
    for token in text.split() + ["|"]:
        word = token.strip(".,;:!?()[]'")
        if re.fullmatch(r"[A-Za-z]+", word) and word not in NAMES:
            run.append(word)
            continue
        if len(run) >= 3:
            runs.append(" ".join(run))
        run = []
    return runs


def page_text(page: str) -> str:
    """The words of a feedback page: no markup, styles, pictures, code or printed output."""
    page = re.sub(r"<(style|pre|code)[^>]*>.*?</\1>", " | ", page, flags=re.S)
    page = re.sub(r'src="data:[^"]*"', "", page)
    alts = " | ".join(re.findall(r'alt="([^"]*)"', page))
    return html.unescape(re.sub(r"<[^>]+>", " | ", page) + " | " + alts)


def student_strings(entry: dict) -> list[str]:
    """Every student-facing string of one results.json entry."""
    out = [entry["error"]] if entry["error"] else []
    for part in entry["parts"]:
        out += [part["feedback"], *part["notes"]]
        out += [s for c in part["checks"] for s in (c["name"], c["message"])]
    return out


def assert_korean(strings: list[str], where: str) -> None:
    for s in strings:
        assert HANGUL.search(s), f"{where}: no Korean in {s!r}"
        assert not english_runs(s), f"{where}: English left in {s!r}: {english_runs(s)}"


def cli_grade(subs: Path, out: Path, *flags: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--assignment",
                           "assignment1", "--profile", "quick", "--timeout",
                           f"{PART_TIMEOUT_S:g}", "--out", str(out),
                           *flags, str(subs)], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {s["student_id"]: s for s in json.loads((out / "results.json").read_text())
            ["submissions"]}


@pytest.fixture(scope="module")
def checks_graded(tmp_path_factory) -> dict:
    """The failing fixtures, the solution and the untouched release, graded on the checks
    (not the training) once in English by default and once with --lang ko."""
    subs = tmp_path_factory.mktemp("lang-subs")
    for name in FAILING:
        shutil.copy(FIXTURES / f"{name}.ipynb", subs)
    shutil.copy(SOLUTION, subs / "solution.ipynb")
    shutil.copy(RELEASE, subs / "release.ipynb")
    en_out, ko_out = tmp_path_factory.mktemp("lang-en"), tmp_path_factory.mktemp("lang-ko")
    grade(get_assignment("assignment1"), [subs], en_out,
          Options(timeout_s=PART_TIMEOUT_S, parts=CHECK_PARTS))
    en = {s["student_id"]: s for s in json.loads((en_out / "results.json").read_text())
          ["submissions"]}
    ko = cli_grade(subs, ko_out, "--lang", "ko", "--parts", ",".join(CHECK_PARTS))
    return {"en": en, "ko": ko, "en_out": en_out, "ko_out": ko_out}


def test_does_korean_grading_give_the_same_scores(checks_graded):
    en, ko = checks_graded["en"], checks_graded["ko"]
    assert set(en) == set(ko) and len(en) == len(FAILING) + 2
    for sid in en:
        assert ko[sid]["total"] == en[sid]["total"], sid
        assert [(p["name"], p["score"]) for p in ko[sid]["parts"]] == \
            [(p["name"], p["score"]) for p in en[sid]["parts"]], sid
        assert [[c["passed"] for c in p["checks"]] for p in ko[sid]["parts"]] == \
            [[c["passed"] for c in p["checks"]] for p in en[sid]["parts"]], sid
    assert ko["solution"]["total"] == 10.0 and ko["release"]["total"] == 0.0


def test_is_every_message_in_results_json_korean_with_lang_ko(checks_graded):
    for sid, entry in checks_graded["ko"].items():
        assert entry["language"] == "ko"
        assert_korean(student_strings(entry), sid)


def test_is_every_feedback_page_korean_with_lang_ko(checks_graded):
    for sid in checks_graded["ko"]:
        page = (checks_graded["ko_out"] / "feedback" / f"{sid}.html").read_text()
        assert '<html lang="ko">' in page
        text = page_text(page)
        assert "총점" in text and "부분별 점수" in text, sid
        assert not english_runs(text), (sid, english_runs(text))
        assert "--parts" in text  # the training part, left out: said in Korean around it


def test_does_english_stay_the_default_and_unchanged(checks_graded):
    en = checks_graded["en"]
    for sid, entry in en.items():
        assert entry["language"] == "en"
        assert not any(HANGUL.search(s) for s in student_strings(entry)), sid
        page = (checks_graded["en_out"] / "feedback" / f"{sid}.html").read_text()
        assert '<html lang="en">' in page and not HANGUL.search(page), sid
    assert en["solution"]["parts"][0]["feedback"] == "All 5 checks passed."
    off = en["corr2d__off_by_one"]["parts"][0]["feedback"]
    assert off.startswith("0 of 5 checks passed. First problem (the chapter's worked "
                          "example): for the 3x3 input 0..8 with the kernel [[0, 1], "
                          "[2, 3]], returned shape (1, 1); expected (2, 2). It is one too "
                          "small"), off


def test_do_the_checks_keep_their_meaning_in_korean(checks_graded):
    """Messages that the Korean text must still carry: the numbers, shapes, code and the
    mistake it names."""
    ko = checks_graded["ko"]
    off = ko["corr2d__off_by_one"]["parts"][0]["feedback"]
    assert "(1, 1)" in off and "(2, 2)" in off and "하나 작습니다" in off
    flipped = ko["corr2d__flipped_kernel"]["parts"][0]["feedback"]
    assert "교차상관" in flipped and "합성곱" in flipped
    relu = next(p for p in ko["residual__relu_before_add"]["parts"] if p["name"] == "residual")
    assert "F.relu(Y + X)" in relu["feedback"] and "지름길 연결" in relu["feedback"]
    library = ko["corr2d__calls_f_conv2d"]["parts"][0]["feedback"]
    assert "conv2d(2번째 줄)" in library


@pytest.mark.data
def test_does_the_metadata_choose_korean_and_the_flag_override_it(tmp_path):
    """Without --lang a notebook of the Korean release is graded in Korean (the training
    part too, and the gate that zeroes it), the same code without the key in English, with
    equal scores;
    --lang en then overrides the metadata."""
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(SOLUTION, subs / "solution.ipynb")
    korean_notebook(SOLUTION, subs / "solution_ko.ipynb")
    detached = FIXTURES / "residual_training__main_path_detached.ipynb"  # gated to zero
    shutil.copy(detached, subs / "detached.ipynb")
    korean_notebook(detached, subs / "detached_ko.ipynb")
    out = tmp_path / "out"
    grade(get_assignment("assignment1"), [subs], out, Options(timeout_s=PART_TIMEOUT_S))
    got = {s["student_id"]: s for s in json.loads((out / "results.json").read_text())
           ["submissions"]}
    for sid in ("solution", "detached"):
        en, ko = got[sid], got[f"{sid}_ko"]
        assert (en["language"], ko["language"]) == ("en", "ko")
        assert [p["score"] for p in en["parts"]] == [p["score"] for p in ko["parts"]], sid
        assert_korean(student_strings(ko), f"{sid}_ko")
        assert not any(HANGUL.search(s) for s in student_strings(en)), sid
        page = (out / "feedback" / f"{sid}_ko.html").read_text()
        assert '<html lang="ko">' in page and not english_runs(page_text(page)), sid
    training = next(p for p in got["detached_ko"]["parts"] if p["name"] == "residual_training")
    assert training["score"] == 0.0 and training["feedback"].startswith("점수에 반영하지")
    trained = next(p for p in got["solution_ko"]["parts"] if p["name"] == "residual_training")
    # passed, or (on a machine too busy for the time budget) the Korean reason it did not
    assert trained["feedback"].startswith(("통과: 검증 정확도", "검증 정확도는")), trained

    flag_out = tmp_path / "flag"
    forced = cli_grade(subs, flag_out, "--lang", "en", "--parts", "corr2d")
    assert forced["solution_ko"]["language"] == "en"
    assert forced["solution_ko"]["parts"][0]["feedback"] == "All 5 checks passed."


def test_do_standard_gettext_tools_read_the_grader_s_catalogs():
    """Translators use PO editors: Babel (and msgfmt, where installed) must read every
    catalog, its header included."""
    import shutil
    import subprocess

    from babel.messages.pofile import read_po

    for po in sorted((REPO / "locale").glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as f:
            assert any(m.id for m in read_po(f)), po
        if shutil.which("msgfmt"):
            subprocess.run(["msgfmt", "--check-format", "-o", "/dev/null", str(po)],
                           check=True, capture_output=True)
