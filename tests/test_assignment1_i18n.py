"""Is the Korean Assignment 1 the English one with only its text translated, and is it graded
exactly as the English one?

One source (solutions/, English) and one catalog (locale/ko/LC_MESSAGES/assignment1.po):
the release translates the text cells and the self-checks' message table
(``autograder/translate.py``) and runs nbgrader on that copy, so everything else (cell ids,
grade ids, points, code, checks) must come out identical to the English release.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import string

import pytest

from autograder import translate
from autograder.assignments import get_assignment

from helpers import REPO, make_fixtures

ASSIGNMENT = get_assignment("assignment1")
SOURCE = ASSIGNMENT.source_path()
ENGLISH = ASSIGNMENT.release_path()
KOREAN = ASSIGNMENT.release_path("ko")
CATALOG = translate.catalog_path(ASSIGNMENT, "ko")
FIXTURES = REPO / "tests" / "fixtures"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
KO_BOOK = "https://cnn-course.github.io/cnn-course/ko/book/"
MESSAGE_CELL = translate.MESSAGE_CELL


def load(path) -> dict:
    return json.loads(path.read_text())


def source_of(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def by_gid(nb: dict) -> dict[str, dict]:
    return {grade_id(c) or c["id"]: c for c in nb["cells"]}


def _entries(catalog) -> dict[tuple[str, str], object]:
    return {(m.context, m.id): m for m in catalog if m.id}


def stale_entries(catalog, nb: dict) -> tuple[list, list]:
    """(English strings of ``nb`` the catalog lacks, catalog entries ``nb`` no longer has)."""
    have = _entries(catalog)
    strings = set(translate.english_strings(nb))
    return sorted(s for s in strings if s not in have), sorted(k for k in have
                                                               if k not in strings)


# --- the catalog --------------------------------------------------------------------------
def test_is_every_catalog_entry_translated_and_none_fuzzy():
    messages = list(_entries(translate.load_catalog(CATALOG)).values())
    assert len(messages) > 50
    missing = [m.context for m in messages if not m.string]
    fuzzy = [m.context for m in messages if m.fuzzy]
    assert not missing and not fuzzy, (
        f"untranslated: {missing}; fuzzy: {fuzzy}: translate them in {CATALOG.name}")


def test_does_every_english_msgid_still_occur_in_the_source_and_no_string_lack_one():
    """A change in the English notebook fails here until `python -m autograder.translate ko`
    has merged it into the catalog and a translator has translated it."""
    lacking, gone = stale_entries(translate.load_catalog(CATALOG), load(SOURCE))
    assert not lacking, f"English text without a catalog entry: {[c for c, _ in lacking]}"
    assert not gone, f"catalog entries whose English is no longer in the source: {gone}"


def test_does_a_changed_english_message_become_fuzzy_and_fail(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions", course / "solutions")
    shutil.copytree(REPO / "locale", course / "locale")
    nb = load(SOURCE)
    cell = by_gid(nb)[MESSAGE_CELL]
    cell["source"] = source_of(cell).replace('"corr2d.swapped": "k_h and k_w are swapped"',
                                             '"corr2d.swapped": "k_h and k_w were swapped"')
    (course / "solutions/assignment1/assignment1.ipynb").write_text(json.dumps(nb))
    catalog = translate.load_catalog(translate.catalog_path(ASSIGNMENT, "ko", course))
    assert stale_entries(catalog, nb) == ([("corr2d.swapped", "k_h and k_w were swapped")],
                                          [("corr2d.swapped", "k_h and k_w are swapped")])
    merged = translate.load_catalog(translate.update_catalog(ASSIGNMENT, "ko", course))
    entry = _entries(merged)[("corr2d.swapped", "k_h and k_w were swapped")]
    assert entry.fuzzy, "a changed message must wait for a translator"
    assert stale_entries(merged, nb) == ([], [])
    released = translate.translate_notebook(nb, merged, "ko")
    assert '"k_h and k_w were swapped"' in source_of(by_gid(released)[MESSAGE_CELL])


def _fields(text: str) -> list[tuple[str, str]]:
    return sorted((name, spec) for _, name, spec, _ in string.Formatter().parse(text)
                  if name is not None)


def test_does_every_translated_message_keep_the_fields_of_its_english():
    source = {key for key, _ in translate.english_strings(load(SOURCE))
              if not key.endswith("_text") and key != "intro"}
    for m in _entries(translate.load_catalog(CATALOG)).values():
        if m.context in source:
            assert _fields(m.string) == _fields(m.id), m.context


def test_does_every_text_cell_keep_its_markup_and_read_as_korean():
    """The book's catalog checks, applied to the notebook's text cells: inline code,
    formulas and link targets survive, and the prose is Korean, not copied English."""
    from test_i18n import _HANGUL, _markup

    for m in _entries(translate.load_catalog(CATALOG)).values():
        assert not sorted(_markup(m.id) - _markup(m.string)), m.context
        if len(m.id.split()) > 3:
            assert _HANGUL.search(m.string), f"{m.context} is not in Korean"


# --- the release --------------------------------------------------------------------------
def test_does_the_korean_release_match_the_english_one_cell_for_cell():
    english, korean = load(ENGLISH), load(KOREAN)
    assert korean["metadata"] == {**english["metadata"], "cnn_course": {"language": "ko"}}
    assert [c["id"] for c in korean["cells"]] == [c["id"] for c in english["cells"]]
    for en, ko in zip(english["cells"], korean["cells"], strict=True):
        assert ko["cell_type"] == en["cell_type"], en["id"]
        en_meta, ko_meta = dict(en["metadata"]), dict(ko["metadata"])
        en_grader, ko_grader = en_meta.pop("nbgrader", {}), ko_meta.pop("nbgrader", {})
        assert ko_meta == en_meta, en["id"]
        translated = en["cell_type"] == "markdown" or grade_id(en) == MESSAGE_CELL
        if translated:
            assert HANGUL.search(source_of(ko)), f"{en['id']} is not in Korean"
            en_grader.pop("checksum", None), ko_grader.pop("checksum", None)
        else:
            assert source_of(ko) == source_of(en), f"{en['id']}: the code differs"
        assert ko_grader == en_grader, f"{en['id']}: nbgrader metadata differs"
    graded = [grade_id(c) for c in korean["cells"] if c["metadata"].get("nbgrader", {})
              .get("grade")]
    assert graded == ["corr2d", "pool2d", "residual", "residual_training"]


class _Blank(ast.NodeTransformer):
    def visit_Constant(self, node):  # noqa: N802 - ast's naming
        return ast.Constant("...") if isinstance(node.value, str) else node


def _table(code: str) -> dict[str, dict[str, str]]:
    ns: dict = {}
    exec(compile(code, MESSAGE_CELL, "exec"), ns)  # noqa: S102 - the course's own table
    return {"SECTIONS": ns["SECTIONS"], "MESSAGES": ns["MESSAGES"]}


def test_is_the_message_table_the_english_code_with_only_its_values_translated():
    en = source_of(by_gid(load(ENGLISH))[MESSAGE_CELL])
    ko = source_of(by_gid(load(KOREAN))[MESSAGE_CELL])
    assert ast.dump(_Blank().visit(ast.parse(en))) == ast.dump(_Blank().visit(ast.parse(ko)))
    en_table, ko_table = _table(en), _table(ko)
    assert ko_table["SECTIONS"] == {k: v.replace("/cnn-course/book/", "/cnn-course/ko/book/")
                                    for k, v in en_table["SECTIONS"].items()}
    assert all(v.startswith(KO_BOOK) for v in ko_table["SECTIONS"].values())
    catalog = _entries(translate.load_catalog(CATALOG))
    assert ko_table["MESSAGES"] == {key: catalog[key, english].string
                                    for key, english in en_table["MESSAGES"].items()}


def test_are_the_korean_checksums_what_nbgrader_computes():
    import nbformat
    from nbgrader.utils import compute_checksum

    nb = nbformat.read(KOREAN, as_version=4)
    checked = 0
    for cell in nb.cells:
        stored = cell.metadata.get("nbgrader", {}).get("checksum")
        if stored:
            assert compute_checksum(cell) == stored, cell.id
            checked += 1
    assert checked >= 12


def test_does_the_korean_release_store_korean_reminders_and_no_english_prose():
    korean = by_gid(load(KOREAN))
    for gid in ("corr2d", "pool2d", "residual", "residual_training"):
        printed = "".join("".join(o.get("text", "")) for o in korean[gid].get("outputs", []))
        assert "아직 구현되지 않았습니다" in printed, f"{gid}: run `make exercises`"
    for cell in korean.values():
        if cell["cell_type"] == "markdown":
            assert "Likely cause" not in source_of(cell) and "(3 points)" not in source_of(cell)


@pytest.mark.slow
def test_is_the_korean_release_exactly_what_the_release_command_generates(tmp_path):
    from autograder.release import release

    fresh = release(ASSIGNMENT, dest_root=tmp_path)
    assert load(fresh.parent / "ko" / fresh.name) == load(KOREAN), (
        "exercises/assignment1/ko/ is out of date: run `make exercises`")
    assert load(fresh) == load(ENGLISH)


# --- the visible self-checks print Korean -------------------------------------------------
def _run_korean_self_check(gid: str, answer: str | None = None,
                           answer_part: str | None = None) -> tuple[str, str | None]:
    """The Korean notebook's set-up, table and helpers, the solution's answers (or
    ``answer`` for part ``answer_part``, by default ``gid``) and its self-check cell
    ``gid``: (what it printed, its failure message or None)."""
    import contextlib
    import io

    from test_assignment1 import SELF_CHECKS, _solution

    cells, ns, out = by_gid(load(KOREAN)), {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell_id in ("setup", MESSAGE_CELL, "self_check_helpers"):
            exec(compile(source_of(cells[cell_id]), cell_id, "exec"), ns)  # noqa: S102
        for part, answer_id in SELF_CHECKS.items():
            mine = part == (answer_part or gid) and answer is not None
            code = answer if mine else _solution(answer_id)
            exec(compile(code, answer_id, "exec"), ns)  # noqa: S102 - our code, its variants
        try:
            exec(compile(source_of(cells[gid]), gid, "exec"), ns)  # noqa: S102
        except AssertionError as failed:
            return out.getvalue(), str(failed)
    return out.getvalue(), None


@pytest.mark.parametrize("gid", ["corr2d", "pool2d", "residual", "residual_training"])
def test_does_the_solution_pass_the_korean_self_checks(gid):
    printed, failed = _run_korean_self_check(gid)
    assert failed is None, failed
    assert printed.count(" OK\n") >= 1 and "아직 구현되지" not in printed


# the Korean words each common mistake of test_assignment1.MISTAKES must print
KO_WORDS = {
    "corr2d_square_only": "정사각형 커널에서만 동작하거나",
    "corr2d_kh_kw_swapped": "k_h와 k_w를 바꿔 쓰는",
    "corr2d_flipped_kernel": "커널이 뒤집혔습니다",
    "pool2d_stride_is_window": "스트라이드 = 윈도 크기 (2, 2)",
    "pool2d_default_avg": "기본값은 최댓값이어야 합니다",
    "pool2d_ph_pw_swapped": "p_h와 p_w가 서로 바뀌었습니다",
    "residual_old_d2l_signature": "Residual(num_channels, use_1x1conv=False, strides=1)을 사용",
    "residual_relu_before_add": "지름길 연결을 더하기 전에 ReLU를 적용했습니다",
    "residual_no_shortcut": "지름길 연결이 빠졌습니다",
    "residual_conv2_after_add": "지름길 연결을 더한 뒤에 conv2를 적용했습니다",
    "residual_bn2_after_add": "지름길 연결을 더한 뒤에 bn2를 적용했습니다",
    "residual_no_final_relu": "출력의 ReLU가 빠졌습니다",
    "residual_no_middle_relu": "bn1과 conv2 사이의 ReLU가 빠졌습니다",
    "residual_unnamed_layers": "층은 속성 conv1, conv2",
    "residual_other_arithmetic": "forward를 블록의 순서와 비교해 보십시오",
}
KO_SECTIONS = {"corr2d": "02_cross_correlation.html#", "pool2d": "05_pooling.html#",
               "residual": "08_resnet.html#the-residual-block"}


def test_does_every_common_mistake_have_its_korean_words():
    from test_assignment1 import MISTAKES

    assert set(KO_WORDS) == set(MISTAKES)


@pytest.mark.parametrize("case", sorted(KO_WORDS))
def test_does_a_common_mistake_fail_the_korean_self_check_in_korean(case):
    from test_assignment1 import MISTAKES

    gid, answer, _ = MISTAKES[case]
    _, message = _run_korean_self_check(gid, answer)
    assert message is not None, f"{case} passed the Korean self-check"
    assert KO_WORDS[case] in message, message
    assert "\n가능한 원인: " in message and "Likely cause" not in message, message
    assert "\n다시 읽을 절: " + KO_BOOK + KO_SECTIONS[gid] in message, message


def test_does_a_block_that_cannot_learn_fail_the_korean_training_check_in_korean():
    from test_assignment1 import _mistake

    constant = _mistake("residual_answer", "return F.relu(Y + shortcut)",
                        "return F.relu(Y + shortcut).detach() * 0 + 1")
    _, message = _run_korean_self_check("residual_training", constant, "residual")
    assert message is not None and "손실이" in message and "절반 아래로" in message, message


# --- graded exactly as the English notebook -----------------------------------------------
@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """One grading run over the solution, the release and every fixture, each in English
    and as a Korean notebook (``ko__<name>``); identical answers train once."""
    from autograder.pipeline import Options, grade

    fixtures = make_fixtures()
    korean = load(KOREAN)
    notebooks = {"solution": fixtures.completed_solution(), "release": load(ENGLISH),
                 **fixtures.all_fixtures()}
    subs = tmp_path_factory.mktemp("submissions")
    for name, nb in notebooks.items():
        (subs / f"{name}.ipynb").write_text(json.dumps(nb))
        (subs / f"ko__{name}.ipynb").write_text(json.dumps(fixtures.in_language(nb, korean)))
    (subs / "ko__release.ipynb").write_text(json.dumps(korean))
    (subs / "ko__filled_release.ipynb").write_text(json.dumps(fixtures.filled(korean)))
    out = tmp_path_factory.mktemp("grades")
    grade(ASSIGNMENT, [subs], out, Options(jobs=2, timeout_s=15.0))
    data = json.loads((out / "results.json").read_text())
    return {s["student_id"]: s for s in data["submissions"]}


def _scores(submission: dict) -> dict:
    return {"total": submission["total"], "max_total": submission["max_total"],
            "error": submission["error"] is not None,
            "parts": [(p["name"], p["score"], p["max_score"]) for p in submission["parts"]]}


@pytest.mark.slow
@pytest.mark.data  # the training part trains on the real Fashion-MNIST files
def test_does_the_korean_notebook_filled_with_the_solution_score_full_marks(graded):
    for student in ("ko__filled_release", "ko__solution"):
        s = graded[student]
        assert s["error"] is None and s["total"] == s["max_total"] == 12.0, _scores(s)
    assert graded["ko__release"]["total"] == 0.0 and graded["ko__release"]["error"] is None


@pytest.mark.slow
@pytest.mark.data
def test_do_the_fixtures_score_the_same_in_both_languages(graded):
    english = sorted(s for s in graded if not s.startswith("ko__"))
    assert len(english) == len(make_fixtures().all_fixtures()) + 2
    differ = {name: (_scores(graded[name]), _scores(graded[f"ko__{name}"]))
              for name in english if _scores(graded[name]) != _scores(graded[f"ko__{name}"])}
    assert not differ, differ
    assert _scores(graded["ko__release"]) == _scores(graded["release"])
