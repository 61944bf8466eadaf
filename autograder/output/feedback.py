"""One self-contained, accessible HTML page of feedback per student.

Headings give the structure (h1 page, h2 per part, h3 per section), the score table has a
caption and header cells, pass/fail is written out (never colour alone), pictures carry
alt text and are embedded as base64, and every string from a submission is escaped.
"""
from __future__ import annotations

import base64
import re
from html import escape

from .results import PartResult, SubmissionResult

__all__ = ["render"]

_OUTPUT_SHOWN = 4000  # characters of printed output shown per part

_CSS = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}
main{max-width:52rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #bbb}
h3{font-size:1.05rem}
table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3rem .7rem;text-align:left}
caption{text-align:left;font-weight:600;padding-bottom:.3rem}
.status{font-weight:700;display:inline-block;min-width:4.5rem}
.pass .status{color:#0a5d1e}.fail .status{color:#a1001c}
.error{border-left:4px solid #a1001c;padding:.3rem .8rem;background:#fdf1f2}
pre{background:#f4f4f4;padding:.7rem;overflow-x:auto;white-space:pre-wrap}
img{max-width:100%;height:auto}
"""


def _fmt(x: float) -> str:
    return f"{x:g}"


def _anchor(name: str) -> str:
    return "part-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _part(part: PartResult) -> str:
    out = [f'<section aria-labelledby="{_anchor(part.name)}">',
           f'<h2 id="{_anchor(part.name)}">{escape(part.name)}: {_fmt(part.score)} out of '
           f'{_fmt(part.max_score)}</h2>', f"<p>{escape(part.feedback)}</p>"]
    if part.notes:
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{escape(n)}</li>" for n in part.notes)
                   + "</ul>")
    if part.checks:
        out.append("<h3>Checks</h3><ul>")
        for c in part.checks:
            cls, status = ("pass", "Passed") if c.passed else ("fail", "Failed")
            kind = " (hidden cases)" if c.hidden else " (worked example)"
            detail = "" if c.passed else f": {escape(c.message)}"
            out.append(f'<li class="{cls}"><span class="status">{status}</span> '
                       f"<strong>{escape(c.name)}</strong>{kind}{detail}</li>")
        out.append("</ul>")
    for fig in part.figures:
        data = base64.b64encode(fig.png).decode()
        out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(fig.alt)}">'
                   f"<figcaption>{escape(fig.alt)}</figcaption></figure>")
    if part.output:
        shown = part.output[:_OUTPUT_SHOWN]
        more = (f"\n... ({len(part.output) - _OUTPUT_SHOWN} more characters not shown)"
                if len(part.output) > _OUTPUT_SHOWN else "")
        out.append("<h3>What your answer cell printed</h3>"
                   f"<pre>{escape(shown + more)}</pre>")
    out.append("</section>")
    return "\n".join(out)


def _left_out(result: SubmissionResult) -> list[str]:
    """A note on the parts this run did not grade, and the assignment's full total."""
    if not result.left_out:
        return []
    items = "".join(f"<li><strong>{escape(p.name)}</strong> ({_fmt(p.max_score)} points): "
                    f"{escape(p.reason)}</li>" for p in result.left_out)
    return [f"<p>The total covers the parts graded in this run. Not graded:</p><ul>{items}"
            f"</ul><p>The assignment's full total is {_fmt(result.full_total)} points.</p>"]


def render(result: SubmissionResult, assignment: str) -> str:
    """The feedback page for one submission."""
    who, what = escape(result.student_id), escape(assignment)
    body = [f"<h1>Feedback on {what} for {who}</h1>"]
    if result.error:
        body.append('<div class="error" role="alert"><h2>This submission could not be '
                    f"graded</h2><p>{escape(result.error)}</p><p>Fix the problem and submit "
                    "again, or ask your instructor.</p></div>")
    else:
        body.append(f"<p><strong>Total: {_fmt(result.total)} out of "
                    f"{_fmt(result.max_total)}</strong></p>")
        body.extend(_left_out(result))
        rows = "".join(f'<tr><th scope="row"><a href="#{_anchor(p.name)}">{escape(p.name)}'
                       f"</a></th><td>{_fmt(p.score)}</td><td>{_fmt(p.max_score)}</td></tr>"
                       for p in result.parts)
        rows += "".join(f'<tr><th scope="row">{escape(p.name)}</th><td>not graded</td>'
                        f"<td>{_fmt(p.max_score)}</td></tr>" for p in result.left_out)
        body.append('<table><caption>Scores by part</caption><thead><tr><th scope="col">'
                    'Part</th><th scope="col">Score</th><th scope="col">Out of</th></tr>'
                    f"</thead><tbody>{rows}</tbody></table>")
        body.extend(_part(p) for p in result.parts)
        body.append("<p>Hidden cases use inputs you have not seen; their messages describe "
                    "sizes and errors but never the inputs. Output printed while the checks "
                    "called your code is not shown.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{what} feedback: {who}</title>\n<style>{_CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
