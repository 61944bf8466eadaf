"""similarity.csv and similarity.html: the pairs, their scores and the matching code.

For the instructor only: nothing here is read by the feedback pages or the exporters. The
page is one self-contained file (no script, no outside resource), so it opens offline.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from html import escape

from ..output.results import spreadsheet_safe
from .compare import Pair, Params

__all__ = ["Report", "to_csv", "to_html", "CSV_COLUMNS"]

CSV_COLUMNS = ("rank", "student_a", "student_b", "score", "share_of_a", "share_of_b",
               "matched_lines_a", "matched_lines_b")


@dataclass(frozen=True)
class Report:
    assignment: str
    pairs: tuple[Pair, ...]
    codes: dict            # key -> answer id -> the student's code, as written
    students: dict         # key -> student id
    part_names: dict       # answer id -> the part names it answers
    compared: int
    not_compared: tuple[tuple[str, str], ...]   # (student id, why)
    shared_sources: tuple[str, ...]
    params: Params


def _lines(code: str, ranges) -> int:
    """How many lines of ``code`` the matched ranges touch."""
    touched: set[int] = set()
    for start, end in ranges:
        first = code.count("\n", 0, start)
        touched.update(range(first, first + code.count("\n", start, max(start, end - 1)) + 1))
    return len(touched)


def _matched_lines(report: Report, pair: Pair, side: int) -> int:
    key = (pair.a, pair.b)[side]
    return sum(_lines(report.codes[key][m.answer_id], m.ranges[side]) for m in pair.parts)


def to_csv(report: Report) -> str:
    aids = sorted(report.part_names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(report.part_names[a] for a in aids)])
    for rank, pair in enumerate(report.pairs, 1):
        by_part = {m.answer_id: max(m.similarity) for m in pair.parts}
        writer.writerow([rank, spreadsheet_safe(report.students[pair.a]),
                         spreadsheet_safe(report.students[pair.b]), f"{pair.score:.3f}",
                         f"{pair.sides[0]:.3f}", f"{pair.sides[1]:.3f}",
                         _matched_lines(report, pair, 0), _matched_lines(report, pair, 1),
                         *(f"{by_part[a]:.3f}" if a in by_part else "" for a in aids)])
    return out.getvalue()


def _marked(code: str, ranges) -> str:
    """The code, escaped, with its matched stretches in <mark>."""
    out, at = [], 0
    for start, end in sorted(ranges):
        start = max(start, at)
        if end <= start:
            continue
        out += [escape(code[at:start]), "<mark>", escape(code[start:end]), "</mark>"]
        at = end
    out.append(escape(code[at:]))
    return "".join(out)


_STYLE = """body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:80rem;
padding:0 1rem;color:#1a1a1a}.private{border-left:4px solid #b00020;padding:.5rem 1rem;
background:#fff4f4}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:.25rem .5rem;text-align:left}.sides{display:grid;
grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem}pre{background:#f6f8fa;
padding:.75rem;overflow-x:auto;font-size:14px}
mark{background:#ffe08a;color:inherit}figure{margin:0;min-width:0}"""


def _summary(report: Report) -> list[str]:
    p = report.params
    html = [f"<p>{report.compared} submission(s) compared; {len(report.pairs)} pair(s) "
            f"scored at least {p.threshold:g}. A pair's score is the larger share of one "
            "submission's own code that matches the other's, after names, strings, "
            "comments and spacing are taken out. Matches shorter than "
            f"{p.noise} reduced characters do not count; every match of {p.guarantee} or "
            "more is found.</p>",
            "<p>Code every student may share was left out before comparing:</p><ul>",
            *(f"<li>{escape(s)}</li>" for s in report.shared_sources), "</ul>"]
    if report.not_compared:
        html += ["<p>Not compared:</p><ul>",
                 *(f"<li>{escape(s)}: {escape(why)}</li>" for s, why in report.not_compared),
                 "</ul>"]
    return html


def _table(report: Report) -> list[str]:
    rows = ["<table><thead><tr><th>#</th><th>Student A</th><th>Student B</th><th>Score</th>"
            "<th>Parts that match</th></tr></thead><tbody>"]
    for rank, pair in enumerate(report.pairs, 1):
        parts = ", ".join(report.part_names[m.answer_id] for m in pair.parts)
        rows.append(f'<tr><td><a href="#pair-{rank}">{rank}</a></td>'
                    f"<td>{escape(report.students[pair.a])}</td>"
                    f"<td>{escape(report.students[pair.b])}</td><td>{pair.score:.2f}</td>"
                    f"<td>{escape(parts)}</td></tr>")
    return [*rows, "</tbody></table>"]


def _pair_section(report: Report, rank: int, pair: Pair) -> list[str]:
    a, b = (escape(report.students[k]) for k in (pair.a, pair.b))
    html = [f'<section id="pair-{rank}"><h2>{rank}. {a} and {b}: {pair.score:.2f}</h2>']
    for m in pair.parts:
        html.append(f"<h3>{escape(report.part_names[m.answer_id])}: {m.similarity[0]:.0%} "
                    f"of {a}'s own code matches, {m.similarity[1]:.0%} of {b}'s</h3>"
                    '<div class="sides">')
        for side, key in enumerate((pair.a, pair.b)):
            code = report.codes[key][m.answer_id]
            html.append(f"<figure><figcaption>{escape(report.students[key])}</figcaption>"
                        f"<pre><code>{_marked(code, m.ranges[side])}</code></pre></figure>")
        html.append("</div>")
    return [*html, "</section>"]


def to_html(report: Report) -> str:
    title = f"Similar answer code: {escape(report.assignment)}"
    body = [f"<h1>{title}</h1>",
            '<p class="private"><strong>For the instructor only.</strong> Do not hand this '
            "page to students. A high score is a reason to read the two answers side by "
            "side, not a proof of copying: short exercises leave little room to differ.</p>",
            *_summary(report), *_table(report)]
    for rank, pair in enumerate(report.pairs, 1):
        body += _pair_section(report, rank, pair)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
