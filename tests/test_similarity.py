"""Does ``python -m autograder similarity`` find the pairs whose answer code is nearly the
same after names, comments and spacing are changed, and only those: not students who share
the release's stubs or the textbook's own code, not two students who each wrote their own?
And does none of it reach a student: not the feedback pages, not an export?

The class is graded for real (training part left out: it adds nothing here but time):
- ana writes her own answers; ben hands in ana's with every name changed, the comments
  reworded, docstrings and type annotations added and the lines re-wrapped; hana hands in
  ana's file as it is;
- cho writes her own, by other means;
- dan and eun each copy the textbook's corr2d, pool2d and Residual (the book's chapters),
  dan renaming the variables;
- fay and gus hand in the release as it came.
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, make_fixtures

RELEASE = REPO / "exercises/assignment1/assignment1.ipynb"
PARTS = "corr2d,pool2d,residual"

ANA = {
    "corr2d_answer": '''def corr2d(X, K):
    rows, cols = K.shape
    height = X.shape[0] - rows + 1
    width = X.shape[1] - cols + 1
    cells = [[torch.dot(X[r:r + rows, c:c + cols].reshape(-1).double(),
                        K.reshape(-1).double()) for c in range(width)]
             for r in range(height)]
    # stack row by row, then go back to the default float type
    return torch.stack([torch.stack(row) for row in cells]).to(torch.get_default_dtype())
''',
    "pool2d_answer": '''def pool2d(X, pool_size, mode="max"):
    if mode != "max" and mode != "avg":
        raise ValueError("unknown mode " + str(mode))
    ph, pw = pool_size
    patches = X.double().unfold(0, ph, 1).unfold(1, pw, 1)
    flat = patches.reshape(patches.shape[0], patches.shape[1], -1)
    picked = flat.max(dim=-1).values if mode == "max" else flat.sum(dim=-1) / (ph * pw)
    return picked.to(torch.get_default_dtype())
''',
    "residual_answer": '''class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, kernel_size=3, padding=1), nn.LazyBatchNorm2d())
        self.skip = (nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                     if use_1x1conv else nn.Identity())

    def forward(self, X):
        return F.relu(self.main(X) + self.skip(X))
''',
}

BEN = {  # ana's, disguised
    "corr2d_answer": '''def corr2d(inp: torch.Tensor, kern: torch.Tensor) -> torch.Tensor:
    """My cross-correlation."""
    kh, kw = kern.shape
    out_h = inp.shape[0] - kh + 1
    out_w = inp.shape[1] - kw + 1
    values = [[torch.dot(inp[i:i + kh, j:j + kw].reshape(-1).double(),
                         kern.reshape(-1).double())
               for j in range(out_w)]
              for i in range(out_h)]
    return torch.stack([torch.stack(v) for v in values]).to(torch.get_default_dtype())
''',
    "pool2d_answer": '''def pool2d(inp, size, mode="max"):
    # check the mode first
    if mode != "max" and mode != "avg":
        raise ValueError("mode must be max or avg: " + str(mode))
    a, b = size
    windows = inp.double().unfold(0, a, 1).unfold(1, b, 1)
    w = windows.reshape(windows.shape[0], windows.shape[1], -1)
    res = w.max(dim=-1).values if mode == "max" else w.sum(dim=-1) / (a * b)
    return res.to(torch.get_default_dtype())
''',
    "residual_answer": '''class Residual(nn.Module):
    """Residual block."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.path = nn.Sequential(nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                                stride=strides),
                                  nn.LazyBatchNorm2d(), nn.ReLU(),
                                  nn.LazyConv2d(num_channels, kernel_size=3, padding=1),
                                  nn.LazyBatchNorm2d())
        self.shortcut = (nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                         if use_1x1conv else nn.Identity())

    def forward(self, inputs):
        return F.relu(self.path(inputs) + self.shortcut(inputs))
''',
}

CHO = {  # her own, by other means
    "corr2d_answer": '''def corr2d(X, K):
    kernel_rows, kernel_cols = K.shape
    result = torch.zeros(X.shape[0] - kernel_rows + 1, X.shape[1] - kernel_cols + 1)
    for row in range(result.shape[0]):
        for col in range(result.shape[1]):
            total = 0.0
            for u in range(kernel_rows):
                for v in range(kernel_cols):
                    total += float(X[row + u, col + v]) * float(K[u, v])
            result[row, col] = total
    return result
''',
    "pool2d_answer": '''def pool2d(X, pool_size, mode="max"):
    if mode not in {"max", "avg"}:
        raise ValueError(mode)
    p_h, p_w = pool_size
    Y = torch.zeros(X.shape[0] - p_h + 1, X.shape[1] - p_w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + p_h, j:j + p_w].float()
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y
''',
    "residual_answer": '''class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.first = nn.LazyConv2d(num_channels, 3, stride=strides, padding=1)
        self.first_norm = nn.LazyBatchNorm2d()
        self.second = nn.LazyConv2d(num_channels, 3, padding=1)
        self.second_norm = nn.LazyBatchNorm2d()
        self.project = nn.LazyConv2d(num_channels, 1, stride=strides) if use_1x1conv else None

    def forward(self, X):
        h = torch.relu(self.first_norm(self.first(X)))
        h = self.second_norm(self.second(h))
        if self.project is not None:
            X = self.project(X)
        return torch.relu(h + X)
''',
}


def _textbook() -> dict[str, str]:
    """The book's own corr2d, pool2d (with the helper they call) and Residual."""
    cells = {}
    for chapter in ("02_cross_correlation", "05_pooling", "08_resnet"):
        nb = json.loads((REPO / "book" / f"{chapter}.ipynb").read_text())
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            for name, key in (("def corr2d(", "corr2d_answer"), ("def pool2d(", "pool2d_answer"),
                              ("class Residual(", "residual_answer")):
                if cell["cell_type"] == "code" and name in src:
                    cells[key] = src
    helper = cells["corr2d_answer"].split("def corr2d(")[0]
    cells["pool2d_answer"] = helper + cells["pool2d_answer"]
    cells["residual_answer"] = "import warnings\n\n" + cells["residual_answer"]
    return cells


def _renamed(code: str) -> str:
    """The same code with the short variable names changed."""
    for old, new in (("kh", "k_rows"), ("kw", "k_cols"), ("oh", "n_rows"), ("ow", "n_cols"),
                     ("windows", "stacked"), ("shortcut", "skip")):
        code = re.sub(rf"\b{old}\b", new, code)
    return code


def _class() -> dict[str, dict]:
    fixtures = make_fixtures()
    textbook = _textbook()
    release = json.loads(RELEASE.read_text())
    return {"ana": fixtures.build("ana", ANA), "ben": fixtures.build("ben", BEN),
            "hana": fixtures.build("ana", ANA), "cho": fixtures.build("cho", CHO),
            "dan": fixtures.build("dan", {k: _renamed(v) for k, v in textbook.items()}),
            "eun": fixtures.build("eun", textbook), "fay": release, "gus": release}


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("copies")
    for name, nb in _class().items():
        (tmp / f"{name}.ipynb").write_text(json.dumps(nb))
    out, report = tmp / "out", tmp / "report"
    proc = run_cli("grade", "--assignment", "assignment1", "--out", out, "--parts", PARTS,
                   "--similarity", report, *sorted(tmp.glob("*.ipynb")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, report, proc


def rows(report: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((report / "similarity.csv").read_text())))


def pairs(report: Path) -> dict[frozenset, dict[str, str]]:
    return {frozenset((r["student_a"], r["student_b"])): r for r in rows(report)}


def test_are_the_copies_found_and_only_they(graded):
    _out, report, proc = graded
    found = pairs(report)
    copies = {frozenset(p) for p in (("ana", "ben"), ("ana", "hana"), ("ben", "hana"))}
    assert set(found) == copies, found
    assert float(found[frozenset(("ana", "hana"))]["score"]) == 1.0
    assert float(found[frozenset(("ana", "ben"))]["score"]) >= 0.8
    assert "3 pair(s) at or above 0.5" in proc.stdout


def test_does_the_csv_have_its_columns_and_every_part(graded):
    _out, report, _proc = graded
    header = (report / "similarity.csv").read_text().splitlines()[0].split(",")
    assert header == ["rank", "student_a", "student_b", "score", "share_of_a", "share_of_b",
                      "matched_lines_a", "matched_lines_b", "corr2d", "pool2d", "residual"]
    row = pairs(report)[frozenset(("ana", "ben"))]
    assert all(float(row[part]) >= 0.6 for part in ("corr2d", "pool2d", "residual")), row
    assert int(row["matched_lines_a"]) >= 15 and int(row["matched_lines_b"]) >= 15


def test_does_the_page_show_the_matching_lines_side_by_side(graded):
    _out, report, _proc = graded
    page = (report / "similarity.html").read_text()
    assert "For the instructor only" in page
    section = page.split('id="pair-')[1:]
    ana_ben = next(s for s in section if "ana and ben" in s or "ben and ana" in s)
    marked = re.findall(r"<mark>(.*?)</mark>", ana_ben, re.S)
    assert any("unfold(0, ph, 1)" in m for m in marked)        # ana's pool2d, as she wrote it
    assert any("unfold(0, a, 1)" in m for m in marked)         # ben's renamed copy of it
    assert ana_ben.count('<div class="sides">') == 3           # one per part that matches
    assert "<script" not in page and "http" not in page.split("<body>")[1]


def test_do_the_release_and_the_textbook_not_count(graded):
    _out, report, _proc = graded
    page = (report / "similarity.html").read_text()
    for student in ("fay", "gus"):
        assert f"{student}: no answer code of its own" in page
    assert "release notebook (exercises/assignment1/assignment1.ipynb)" in page
    assert "the book&#x27;s chapters (8 notebooks)" in page
    assert not any({"dan", "eun"} & set(pair) for pair in pairs(report))


def test_does_nothing_of_it_reach_a_student(graded, tmp_path):
    out, report, _proc = graded
    results = json.loads((out / "results.json").read_text())
    assert "similar" not in json.dumps(results).lower()
    pages = sorted((out / "feedback").glob("*.html"))
    assert len(pages) == 8
    for page in pages:  # no page names another student (ana's copier ben on ana's page)
        text = page.read_text()
        others = {"ana", "ben", "hana", "cho", "dan", "eun", "fay", "gus"} - {page.stem}
        assert "similar" not in text.lower(), page
        assert not [s for s in others if re.search(rf"\b{s}\b", text)], page
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Assignment 1 (1)\n"
                      "    Points Possible,,,,,12\n" + "".join(
                          f"{s.title()},{i},S{i},{s},A,\n" for i, s in enumerate(
                              ("ana", "ben", "hana", "cho", "dan", "eun", "fay", "gus"))))
    canvas = ["--roster", roster, "--canvas-assignment", "Assignment 1 (1)"]
    for fmt in ("gradescope", "prairielearn", "canvas", "nbgrader"):
        dest = tmp_path / fmt
        proc = run_cli("export", "--format", fmt, "--out", dest,
                       *(canvas if fmt == "canvas" else []), out)
        assert proc.returncode == 0, proc.stderr
        for path in dest.rglob("*"):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", "replace").lower()
                assert "similar" not in text and "answers.json" not in text, path
    assert not (out / "feedback" / "similarity.html").exists()


def test_does_the_command_read_the_grading_output_again(graded, tmp_path):
    out, report, _proc = graded
    proc = run_cli("similarity", "--out", tmp_path / "again", "--threshold", "0.9", out)
    assert proc.returncode == 0, proc.stderr
    found = pairs(tmp_path / "again")
    assert frozenset(("ana", "hana")) in found
    assert all(float(r["score"]) >= 0.9 for r in found.values())
    assert (tmp_path / "again" / "similarity.html").read_text().count('<section id="pair-') \
        == len(found)


def test_is_bad_input_refused_with_nothing_written(graded, tmp_path):
    out, _report, _proc = graded
    not_output = tmp_path / "empty"
    not_output.mkdir()
    cases = [(not_output, tmp_path / "r1", "is not a grading output"),
             (out, out / "feedback" / "r2", "for the instructor only")]
    older = tmp_path / "older"
    shutil.copytree(out, older, ignore=shutil.ignore_patterns("answers.json", ".lock"))
    cases.append((older, tmp_path / "r3", "run the same grade command again"))
    for grading_out, dest, message in cases:
        proc = run_cli("similarity", "--out", dest, grading_out)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert not dest.exists()
    proc = run_cli("similarity", "--out", tmp_path / "r4", "--threshold", "2", out)
    assert proc.returncode == 2 and "--threshold" in proc.stderr
    proc = run_cli("grade", "--assignment", "assignment1", "--out", out, "--similarity",
                   out / "feedback" / "x", RELEASE)
    assert proc.returncode == 2 and "instructor only" in proc.stderr


def test_does_a_regrade_of_an_older_output_record_the_answers(graded, tmp_path):
    out, _report, _proc = graded
    older = tmp_path / "older"
    shutil.copytree(out, older, ignore=shutil.ignore_patterns("answers.json", ".lock"))
    tmp = tmp_path / "class"
    tmp.mkdir()
    for name, nb in _class().items():
        if name in ("ana", "hana"):
            (tmp / f"{name}.ipynb").write_text(json.dumps(nb))
    proc = run_cli("grade", "--assignment", "assignment1", "--out", older, "--parts", PARTS,
                   *sorted(tmp.glob("*.ipynb")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers = json.loads((older / "answers.json").read_text())["submissions"]
    assert set(answers) == {"ana", "hana"}
    assert answers["ana"]["answers"]["pool2d_answer"] == [ANA["pool2d_answer"].rstrip("\n")] \
        or answers["ana"]["answers"]["pool2d_answer"][0].startswith("def pool2d")


# --- the parts on their own: the reduction and the fingerprints ----------------------------

def test_does_the_reduction_forget_names_comments_spacing_and_annotations():
    from autograder.similarity.normalize import normalize

    a = normalize("def f(x, k):\n    # window\n    y = x.sum() + k  # add\n    return y\n")
    b = normalize('def g(inp: int,\n      kern) -> int:\n    """Doc."""\n\n'
                  "    out=inp.sum()+kern\n    return out")
    assert a.text == b.text == "defV(V,V):;V=V.sum()+V;returnV;"
    start, end = a.raw_range(a.text.index("sum"), a.text.index("sum") + 3)
    assert a.raw[start:end] == "sum"
    assert normalize("x = (1,").text == "V=(1,"   # code that stops mid-way keeps its start


def test_are_pairs_found_through_the_index_alone():
    from autograder.similarity.compare import Params, find_pairs, fingerprint

    params = Params()
    prints = {name: {aid: fingerprint(code, frozenset(), params) for aid, code in answers.items()}
              for name, answers in (("ana", ANA), ("ben", BEN), ("cho", CHO))}
    found = find_pairs(prints, params)
    assert [(p.a, p.b) for p in found] == [("ana", "ben")]
    assert find_pairs(prints, params, same_student=lambda a, b: True) == []
