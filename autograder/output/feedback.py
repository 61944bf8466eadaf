"""One self-contained, accessible HTML page of feedback per student.

Headings give the structure (h1 page, h2 per part, h3 per section), the score table has a
caption and header cells, pass/fail is written out (never colour alone), pictures carry
alt text and are embedded as base64, and every string from a submission is escaped.
"""
from __future__ import annotations

import base64
import re
from html import escape

from ..i18n import DEFAULT, _, current, language
from ..late import NO_TIME
from .results import LeftOut, PartResult, SubmissionResult

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
           f'<h2 id="{_anchor(part.name)}">' + escape(_("{part}: {score} out of {max}").format(
               part=part.name, score=_fmt(part.score), max=_fmt(part.max_score))) + "</h2>",
           f"<p>{escape(part.feedback)}</p>"]
    if part.notes:
        out.append(f"<h3>{_('Notes')}</h3><ul>"
                   + "".join(f"<li>{escape(n)}</li>" for n in part.notes) + "</ul>")
    if part.checks:
        out.append(f"<h3>{_('Checks')}</h3><ul>")
        for c in part.checks:
            cls, status = ("pass", _("Passed")) if c.passed else ("fail", _("Failed"))
            kind = " " + (_("(hidden cases)") if c.hidden else _("(worked example)"))
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
        more = ("\n... " + _("({count} more characters not shown)").format(
            count=len(part.output) - _OUTPUT_SHOWN) if len(part.output) > _OUTPUT_SHOWN else "")
        out.append(f"<h3>{_('What your answer cell printed')}</h3>"
                   f"<pre>{escape(shown + more)}</pre>")
    out.append("</section>")
    return "\n".join(out)


def _reason(part: LeftOut) -> str:
    """Why a part was not graded, as HTML, in the page's language."""
    if part.kind == "chosen":
        return escape(_("left out with --parts"))
    if part.kind == "rests_on" and part.rests_on:
        return escape(_("it rests on {parts}, which was not graded").format(
            parts=", ".join(part.rests_on)))
    if current() == DEFAULT:
        return escape(part.reason)
    return (escape(_("the grading machine could not run this part (not a problem with your "
                     "code); your instructor has the details:")) +
            f" <code>{escape(part.reason)}</code>")


def _left_out(result: SubmissionResult) -> list[str]:
    """A note on the parts this run did not grade, and the assignment's full total."""
    if not result.left_out:
        return []
    items = "".join("<li>" + _("{part} ({points} points): {reason}").format(
        part=f"<strong>{escape(p.name)}</strong>", points=_fmt(p.max_score),
        reason=_reason(p)) + "</li>" for p in result.left_out)
    return [f"<p>{escape(_('The total covers the parts graded in this run. Not graded:'))}"
            f"</p><ul>{items}</ul><p>"
            + escape(_("The assignment's full total is {total} points.").format(
                total=_fmt(result.full_total))) + "</p>"]


def _lateness(result: SubmissionResult) -> list[str]:
    """When the notebook came in and what that cost (``late.py``), or that no time was
    found although the assignment has a due time."""
    if result.timestamp_source == NO_TIME:
        return ["<p>" + escape(_("No time of handing in was found for this notebook, so it "
                                 "was not checked for lateness.")) + "</p>"]
    if not result.timestamp:
        return []
    when = _("Handed in {time} (from {source}).").format(time=result.timestamp,
                                                          source=result.timestamp_source)
    late = result.late_by_seconds
    if late is not None and late > 0:
        hours = f"{late / 3600:.1f}"
        when += " " + _("That is {hours} hours after the due time: {points} points off under "
                        "the late policy, so the score is {score} out of {max}.").format(
            hours=hours, points=_fmt(result.late_penalty), score=_fmt(result.score),
            max=_fmt(result.max_total))
    elif late is not None:
        when += " " + _("That is on time.")
    return ["<p>" + escape(when) + "</p>"]


def render(result: SubmissionResult, assignment: str) -> str:
    """The feedback page for one submission, in its language (``result.language``)."""
    with language(result.language) as lang:
        return _render(result, assignment, lang)


def _render(result: SubmissionResult, assignment: str, lang: str) -> str:
    body = ["<h1>" + escape(_("Feedback on {assignment} for {student}").format(
        assignment=assignment, student=result.student_id)) + "</h1>"]
    if result.error:
        body.append(f'<div class="error" role="alert"><h2>'
                    f"{escape(_('This submission could not be graded'))}</h2>"
                    f"<p>{escape(result.error)}</p><p>"
                    f"{escape(_('Fix the problem and submit again, or ask your instructor.'))}"
                    "</p></div>")
    else:
        body.append("<p><strong>" + escape(_("Total: {score} out of {max}").format(
            score=_fmt(result.total), max=_fmt(result.max_total))) + "</strong></p>")
        body.extend(_left_out(result))
        body.extend(_lateness(result))
        rows = "".join(f'<tr><th scope="row"><a href="#{_anchor(p.name)}">{escape(p.name)}'
                       f"</a></th><td>{_fmt(p.score)}</td><td>{_fmt(p.max_score)}</td></tr>"
                       for p in result.parts)
        rows += "".join(f'<tr><th scope="row">{escape(p.name)}</th>'
                        f"<td>{escape(_('not graded'))}</td>"
                        f"<td>{_fmt(p.max_score)}</td></tr>" for p in result.left_out)
        body.append(f"<table><caption>{escape(_('Scores by part'))}</caption><thead><tr>"
                    f'<th scope="col">{escape(_("Part"))}</th><th scope="col">'
                    f'{escape(_("Score"))}</th><th scope="col">{escape(_("Out of"))}</th></tr>'
                    f"</thead><tbody>{rows}</tbody></table>")
        body.extend(_part(p) for p in result.parts)
        body.append("<p>" + escape(_(
            "Hidden cases use inputs you have not seen; their messages describe sizes and "
            "errors but never the inputs. Output printed while the checks called your code "
            "is not shown.")) + "</p>")
    title = escape(_("{assignment} feedback: {student}").format(assignment=assignment,
                                                                student=result.student_id))
    return (f"<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
