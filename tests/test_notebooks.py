"""Do the chapters, student notebooks and solutions follow the course's notebook conventions?

Each check runs over whatever notebooks exist, so it can run while chapters are being written;
the table-of-contents checks make sure that every chapter the website lists is really there.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers import CHAPTERS, REPO, chapter_notebooks, toc_files

# The first cell of every chapter (a no-op outside Colab). Chapters must match it exactly.
COLAB_SETUP = '''\
# Colab set-up: install what Colab lacks (d2l needs --no-deps on Python 3.12). Does nothing elsewhere.
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "d2l==1.0.3"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "cnncourse @ git+https://github.com/cnn-course/cnn-course"], check=True)'''  # noqa: E501

# The first cell of the assignment notebooks (solutions/ and exercises/): the assignment needs
# only PyTorch, so it installs nothing. d2l and cnncourse hold working answers (d2l.corr2d,
# cnncourse.ops.pool2d, ...), so no assignment notebook may install or import them.
ASSIGNMENT_FIRST_CELL = """\
# This notebook needs only PyTorch, which Colab already has (as does the course's
# environment): this cell installs nothing, and no other cell does either."""
# what an assignment notebook's code must not contain: the reference packages, or installing
INSTALLS_OR_REFERENCES = re.compile(
    r"\bd2l\b|cnncourse|\bpip\b|\bconda\b|subprocess|os\.system|^\s*[!%]",
    re.IGNORECASE | re.MULTILINE)
ASSIGNMENT_FOLDERS = ("exercises", "solutions")
# links from the self-checks to the chapter sections to reread, checked against `make book`
SITE_URL = "https://cnn-course.github.io/cnn-course/"
SITE_LINK = re.compile(re.escape(SITE_URL) + r"([\w/.-]+\.html)#([\w-]+)")
SITE_BUILD = REPO / "_build" / "html"
# the self-checks take their links from the SECTIONS table of the self_check_messages cell
SECTION_ENTRY = re.compile(r'"([\w.]+)":\s*"(' + re.escape(SITE_URL) + r'[^"]+)"')
SECTION_USE = re.compile(r'SECTIONS\["([\w.]+)"\]')

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
# the Assignment 1 part that practises a chapter, named in that chapter's Exercises section
ASSIGNMENT_PARTS = {"02_cross_correlation": "corr2d", "05_pooling": "pool2d",
                    "08_resnet": "Residual"}
NOTEBOOK_FOLDERS = ("book", "exercises", "solutions")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def all_notebooks() -> list[Path]:
    found = []
    for folder in NOTEBOOK_FOLDERS:
        found += [p for p in sorted((REPO / folder).rglob("*.ipynb"))
                  if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts]
    return found


def markdown_pages() -> list[Path]:
    return sorted((REPO / "book").glob("*.md"))


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


notebooks = pytest.mark.parametrize("path", all_notebooks(), ids=_rel)
chapters = pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.stem)


# --- what any notebook must be ------------------------------------------------------------
@notebooks
def test_is_it_a_valid_nbformat_4_notebook(path: Path):
    nb = read(path)
    assert nb.nbformat == 4, f"{_rel(path)} is nbformat {nb.nbformat}; save it with Jupyter 7"
    nbformat.validate(nb)


@notebooks
def test_does_it_use_the_python3_kernelspec(path: Path):
    spec = dict(read(path).metadata.get("kernelspec", {}))
    assert spec == KERNELSPEC, (
        f"{_rel(path)} has kernelspec {spec}; set metadata.kernelspec to {KERNELSPEC}")


def is_assignment(path: Path) -> bool:
    return path.relative_to(REPO).parts[0] in ASSIGNMENT_FOLDERS


assignments = pytest.mark.parametrize("path", [p for p in all_notebooks() if is_assignment(p)],
                                      ids=_rel)


@notebooks
def test_is_the_first_cell_the_colab_setup_or_the_assignments_own(path: Path):
    first = read(path).cells[0]
    name, text = (("ASSIGNMENT_FIRST_CELL", ASSIGNMENT_FIRST_CELL) if is_assignment(path)
                  else ("COLAB_SETUP", COLAB_SETUP))
    assert first.cell_type == "code", f"{_rel(path)}: the first cell must be the {name} code"
    assert first.source.rstrip("\n") == text, (
        f"{_rel(path)}: the first cell differs from {name} in tests/test_notebooks.py; "
        "paste that text unchanged")


def test_are_there_assignment_notebooks_to_check():
    found = [_rel(p) for p in all_notebooks() if is_assignment(p)]
    assert "solutions/assignment1/assignment1.ipynb" in found, found
    assert "exercises/assignment1/assignment1.ipynb" in found, found


@assignments
def test_does_the_assignment_install_and_mention_no_reference_package(path: Path):
    """The student's notebook must not pull in d2l or cnncourse, which hold the answers."""
    found = [f"cell {i}: {match.group(0).strip()!r}"
             for i, cell in enumerate(read(path).cells, start=1) if cell.cell_type == "code"
             for match in INSTALLS_OR_REFERENCES.finditer(cell.source)]
    assert not found, (f"{_rel(path)}: the assignment needs only PyTorch; its code must not "
                       "mention d2l or cnncourse, nor install anything: " + "; ".join(found))


def test_does_the_install_pattern_catch_the_colab_cell():
    assert INSTALLS_OR_REFERENCES.search(COLAB_SETUP)
    for code in ("from d2l import torch as d2l", "import cnncourse.ops", "!pip install x",
                 "%pip install x", "  !conda install x"):
        assert INSTALLS_OR_REFERENCES.search(code), code
    assert not INSTALLS_OR_REFERENCES.search(ASSIGNMENT_FIRST_CELL)
    assert not INSTALLS_OR_REFERENCES.search("import torch\nx = 5 % 2  # a pipeline")


def _language(nb) -> str:
    return nb.metadata.get("cnn_course", {}).get("language", "en")


@assignments
def test_does_every_site_link_in_the_assignment_exist(path: Path, site_build):
    """Self-check failures name the chapter section to reread; each link must resolve, in
    the site of the notebook's language (a Korean notebook's in _build/html/ko), as the
    session's build of the site wrote it."""
    nb = read(path)
    language = _language(nb)
    site = SITE_BUILD if language == "en" else SITE_BUILD / language
    assert site_build.returncode == 0, site_build.output[-3000:]
    assert (site / "book").is_dir(), f"the build wrote no {_rel(site / 'book')}"
    text = "\n".join(cell.source for cell in nb.cells)
    links = SITE_LINK.findall(text)
    assert text.count(SITE_URL) == len(links), (
        f"{_rel(path)}: write each link to the site on one line as {SITE_URL}<page>.html#<id>")
    problems = []
    for page, anchor in sorted(set(links)):
        html = SITE_BUILD / page
        if language != "en" and not page.startswith(f"{language}/"):
            problems.append(f"{page}: not a page of the {language} site ({language}/book/...)")
        elif not html.is_file():
            problems.append(f"{page}: no such page in _build/html")
        elif not re.search(rf"""\bid=["']{re.escape(anchor)}["']""", html.read_text()):
            problems.append(f"{page}#{anchor}: no element with that id")
    assert not problems, f"{_rel(path)}: broken links: " + "; ".join(problems)
    graded = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source for cell in nb.cells}
    sections = dict(SECTION_ENTRY.findall(graded.get("self_check_messages", "")))
    for gid, page in (("corr2d", "02_cross_correlation"), ("pool2d", "05_pooling"),
                      ("residual", "08_resnet")):
        named = [key for key in SECTION_USE.findall(graded.get(gid, ""))
                 if f"book/{page}.html#" in sections.get(key, "")]
        assert named, (f"{_rel(path)}: the self-check {gid!r} names no section of {page} to "
                       "reread (SECTIONS[...] of the self_check_messages cell)")


@notebooks
def test_does_it_store_no_error_output(path: Path):
    errors = [f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
              for i, cell in enumerate(read(path).cells, start=1)
              for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors, f"{_rel(path)} stores error outputs ({'; '.join(errors)}); fix and re-run"


@notebooks
def test_are_its_outputs_stable_for_nbval(path: Path):
    """SVG, scripts and JavaScript differ from run to run, and nbval compares them as text."""
    unstable = []
    for i, cell in enumerate(read(path).cells, start=1):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/svg+xml" in data:
                unstable.append(f"cell {i}: an SVG plot (use matplotlib's inline PNG, "
                                "not d2l's plots)")
            if "<script" in str(data.get("text/html", "")).lower():
                unstable.append(f"cell {i}: HTML with a <script>")
            if "application/javascript" in data:
                unstable.append(f"cell {i}: a JavaScript output")
    assert not unstable, f"{_rel(path)}: " + "; ".join(unstable)


@notebooks
def test_does_every_image_output_have_alt_text(path: Path):
    missing = []
    for i, cell in enumerate(read(path).cells, start=1):
        shows_image = any(kind in out.get("data", {}) for out in cell.get("outputs", [])
                          for kind in IMAGE_TYPES)
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
        if shows_image and not (isinstance(alt, str) and alt.strip()):
            missing.append(str(i))
    assert not missing, (
        f"{_rel(path)}: cells {', '.join(missing)} show a plot without alt text; add the cell "
        'metadata {"mystnb": {"image": {"alt": "what the plot shows"}}}')


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)")
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_ALT = re.compile(r"""\balt\s*=\s*(["'])\s*[^"'\s][^"']*\1""", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^\s*(`{3,}|:{3,})\{(figure|image)\}\s*(\S*)")
_ALT_OPTION = re.compile(r"^\s*:alt:\s*\S")


def images_without_alt(markdown: str) -> list[str]:
    """Describe each image in MyST markdown that lacks a meaningful alt text."""
    problems = []
    for alt, src in _MD_IMAGE.findall(markdown):
        name = src.rsplit("/", 1)[-1].split(":")[-1]
        if not alt.strip() or alt.strip() == name:
            problems.append(f"![{alt}]({src})")
    problems += [tag for tag in _HTML_IMG.findall(markdown) if not _HTML_ALT.search(tag)]
    lines = markdown.splitlines()
    for n, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if match:
            options = []
            for following in lines[n + 1:]:
                if not following.strip().startswith(":") or following.strip().startswith(":::"):
                    break
                options.append(following)
            if not any(_ALT_OPTION.match(option) for option in options):
                problems.append(f"{{{match.group(2)}}} {match.group(3)} without :alt:")
    return problems


@notebooks
def test_does_every_markdown_image_have_alt_text(path: Path):
    problems = [f"cell {i}: {p}" for i, cell in enumerate(read(path).cells, start=1)
                if cell.cell_type == "markdown" for p in images_without_alt(cell.source)]
    assert not problems, f"{_rel(path)}: images need alt text: " + "; ".join(problems)


@pytest.mark.parametrize("path", markdown_pages(), ids=_rel)
def test_does_every_image_on_the_markdown_pages_have_alt_text(path: Path):
    problems = images_without_alt(path.read_text())
    assert not problems, f"{_rel(path)}: images need alt text: " + "; ".join(problems)


def test_does_the_alt_text_check_catch_missing_alt_text():
    assert images_without_alt("![](figures/ch02_kernel.svg)")
    assert images_without_alt("![ch02_kernel.svg](figures/ch02_kernel.svg)")
    assert images_without_alt('<img src="x.png" alt="">')
    assert images_without_alt(":::{figure} figures/x.png\n:width: 50%\n\nA caption.\n:::")
    assert not images_without_alt("![a 2x2 kernel over a 3x3 input](figures/ch02_kernel.svg)")
    assert not images_without_alt('<img src="x.png" alt="a kernel">')
    assert not images_without_alt("```{figure} figures/x.png\n:alt: a kernel\n\nCaption.\n```")


# --- what a chapter must be ---------------------------------------------------------------
def _headings(nb: nbformat.NotebookNode) -> list[tuple[int, str, str]]:
    """(cell number, level-2 heading, text up to the next heading) for each markdown '## '."""
    found: list[list] = []
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            if not fenced and line.startswith("## "):
                found.append([i, line[3:].strip(), ""])
            elif not fenced and line.startswith("# "):
                continue
            elif found:
                found[-1][2] += line + "\n"
    return [tuple(h) for h in found]


@chapters
def test_does_the_chapter_start_with_its_numbered_title(path: Path):
    nb = read(path)
    number = int(path.stem[:2])
    title = nb.cells[1] if len(nb.cells) > 1 else None
    assert title is not None and title.cell_type == "markdown" and \
        title.source.startswith(f"# {number}. "), (
            f"{_rel(path)}: the second cell must be markdown starting '# {number}. Title'")


@chapters
def test_does_the_chapter_end_with_its_exercises(path: Path):
    headings = _headings(read(path))
    names = [name for _, name, _ in headings]
    tail = names[-2:] if names[-1:] == ["References"] else names[-1:]
    assert tail and tail[0] == "Exercises", (
        f"{_rel(path)}: the last section must be '## Exercises' (optionally followed by "
        f"'## References'); the chapter's level-2 headings are {names}")
    text = dict((name, body) for _, name, body in headings)["Exercises"]
    assert "(exercises.md)" in text, (
        f"{_rel(path)}: the Exercises section must link to [the exercises](exercises.md)")
    part = ASSIGNMENT_PARTS.get(path.stem)
    if part:
        assert part in text and "Assignment 1" in text, (
            f"{_rel(path)}: the Exercises section must say that Assignment 1's `{part}` "
            "practises this chapter")


@chapters
def test_did_the_stored_outputs_come_from_one_clean_run(path: Path):
    code = [(i, c) for i, c in enumerate(read(path).cells, start=1)
            if c.cell_type == "code" and c.source.strip()]
    unexecuted = [str(i) for i, c in code if c.get("execution_count") is None]
    counts = [c.get("execution_count") for _, c in code]
    rerun = (f"re-run it top to bottom: cd book && CNN_QUICK= ../.venv/bin/jupyter nbconvert "
             f"--to notebook --execute --inplace {path.name}")
    assert not unexecuted, f"{_rel(path)}: cells {', '.join(unexecuted)} never ran; {rerun}"
    assert counts == list(range(1, len(code) + 1)), (
        f"{_rel(path)}: execution counts {counts} are not 1..{len(code)} in order, so the "
        f"outputs did not come from one fresh run; {rerun}")


MAX_CODE_COLUMNS = 88
NBVAL_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT",
                 "NBVAL_RAISES_EXCEPTION")


@chapters
def test_is_the_colab_cell_hidden_on_the_site(path: Path):
    tags = read(path).cells[0].get("metadata", {}).get("tags", [])
    assert "remove-cell" in tags, (
        f"{_rel(path)}: tag the Colab set-up cell 'remove-cell' so the page starts with its title")


@chapters
def test_does_the_chapter_code_fit_in_88_columns(path: Path):
    """Longer lines are clipped on the page. The hidden Colab cell is exempt."""
    long = [f"cell {i}, line {n}: {len(line)} columns"
            for i, cell in enumerate(read(path).cells, start=1)
            if cell.cell_type == "code" and "remove-cell" not in cell.metadata.get("tags", [])
            for n, line in enumerate(cell.source.splitlines(), start=1)
            if len(line) > MAX_CODE_COLUMNS]
    assert not long, f"{_rel(path)}: code lines over {MAX_CODE_COLUMNS} columns: " + "; ".join(long)


@chapters
def test_are_nbval_markers_cell_tags(path: Path):
    """A `# NBVAL_...` comment would be shown on the page; nbval reads the same as a tag."""
    found = [f"cell {i}: {marker}" for i, cell in enumerate(read(path).cells, start=1)
             if cell.cell_type == "code" for marker in NBVAL_MARKERS if marker in cell.source]
    assert not found, (f"{_rel(path)}: replace these comments by the cell tags "
                       "nbval-ignore-output, nbval-skip, ...: " + "; ".join(found))


# --- the table of contents ----------------------------------------------------------------
def test_does_the_toc_list_the_chapters_in_order():
    listed = [f.split("/")[-1] for f in toc_files() if re.fullmatch(r"book/0\d_\w+", f)]
    assert listed == list(CHAPTERS), f"_toc.yml lists chapters {listed}, expected {CHAPTERS}"


def test_does_every_page_in_the_toc_exist():
    missing = [f for f in toc_files()
               if not any((REPO / f"{f}{suffix}").is_file() for suffix in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


def test_is_every_notebook_in_book_listed_in_the_toc():
    listed = set(toc_files())
    orphans = [_rel(p) for p in sorted((REPO / "book").glob("*.ipynb"))
               if f"book/{p.stem}" not in listed]
    assert not orphans, (f"{orphans} are not in _toc.yml, so the website silently leaves them "
                         "out (only_build_toc_files); add them or move them out of book/")


def test_does_the_colab_cell_install_what_the_conventions_say():
    compile(COLAB_SETUP, "COLAB_SETUP", "exec")
    assert '"--no-deps", "d2l==1.0.3"' in COLAB_SETUP
    assert "git+https://github.com/cnn-course/cnn-course" in COLAB_SETUP


# --- the nbval sanitizer ------------------------------------------------------------------
def sanitize(text: str) -> str:
    """Apply .ci/nbval_sanitize.cfg the way nbval does: each pair in file order."""
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns((REPO / ".ci" / "nbval_sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("first, second", [
    ("epoch  3/10  train loss 0.412  (3.2 s)", "epoch  3/10  train loss 0.412  (12.0 s)"),
    ("10 epochs on CPU (x86_64, 2 cores): val acc 0.901; 30.1 s (1,234 examples/s)",
     "10 epochs on NVIDIA H100 80GB HBM3: val acc 0.901; 2.0 s (30,000.5 examples/s)"),
    ("tensor([1., 2.], device='cuda:0')", "tensor([1., 2.])"),
    ("<function f at 0x7f3a2c1d0e50>", "<function f at 0x55d1c0a3b2f0>"),
    ("forward took 140 ms", "forward took 2.5 min"),
])
def test_does_the_sanitizer_hide_what_varies_between_runs(first: str, second: str):
    assert sanitize(first) == sanitize(second)


@pytest.mark.parametrize("text", [
    "tensor([[19., 25.],\n        [37., 43.]])",
    "Conv2d             output shape: (1, 6, 28, 28)",
    "torch.Size([2, 3, 6, 8]) 10 epochs, 2 steps, 3 samples",
    "tensor([0.1000, 0.2000]) True",
])
def test_does_the_sanitizer_keep_deterministic_text(text: str):
    assert sanitize(text) == text
