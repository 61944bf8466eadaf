"""Answer code reduced to what survives a disguised copy.

Renaming variables, rewording comments and docstrings, and re-spacing or re-wrapping lines
are the cheap ways to hide a copy, so all of them are taken out before fingerprints are
taken: every name a student chose becomes ``V``, every string ``S``; comments, blank lines
and indentation go, and so do the type annotations of function headers; each statement
ends in ``;``. Keywords, builtins, numbers, operators and attribute names (``.shape``,
``nn.LazyConv2d``: the API a copy cannot rename) stay as written. Each character of the
reduced text remembers the stretch of the original it came from, so matches can be shown
on the code as the student wrote it.
"""
from __future__ import annotations

import builtins
import io
import keyword
import tokenize
from dataclasses import dataclass

__all__ = ["Normalized", "normalize"]

_KEPT_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(
    dir(builtins))
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING, tokenize.TYPE_COMMENT}


@dataclass(frozen=True)
class Normalized:
    """The reduced ``text``, and for each of its characters the (start, end) it stands for
    in ``raw``."""

    raw: str
    text: str
    spans: tuple[tuple[int, int], ...]

    def raw_range(self, start: int, end: int) -> tuple[int, int]:
        """The stretch of ``raw`` behind ``text[start:end]``."""
        end = min(end, len(self.spans))
        if start >= end:
            return (0, 0)
        return (self.spans[start][0], self.spans[end - 1][1])


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    """Python's own tokens of ``code``, an f-string (split into parts by Python 3.12) as
    one token; code that does not tokenize to the end (an unclosed bracket) keeps the
    tokens read before the fault."""
    out: list[tokenize.TokenInfo] = []
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == _FSTRING_START:
                if not depth:
                    out.append(tok._replace(type=tokenize.STRING))
                depth += 1
            elif depth:
                if tok.type == _FSTRING_END:
                    depth -= 1
                    out[-1] = out[-1]._replace(end=tok.end) if not depth else out[-1]
            elif tok.type not in _SKIPPED and (tok.string.strip() or
                                               tok.type == tokenize.NEWLINE):
                out.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return _without_annotations(out)


def _without_annotations(tokens: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    """``tokens`` less the type annotations of ``def`` headers (``x: int``, ``-> T``):
    adding or dropping them changes nothing a copy depends on."""
    out: list[tokenize.TokenInfo] = []
    in_header, depth, skipping, default = False, 0, False, False
    for tok in tokens:
        s = tok.string if tok.type == tokenize.OP else ""
        if tok.type == tokenize.NAME and tok.string == "def":
            in_header, depth, skipping, default = True, 0, False, False
        elif in_header:
            if s in ("(", "[", "{"):
                depth += 1
            elif s in (")", "]", "}"):
                depth -= 1
            ends = (depth == 1 and s in (",", "=")) or (depth == 0 and s in (")", ":"))
            if depth == 1 and s in (",", "="):
                default = s == "="  # a default's own colons (a lambda) are not annotations
            if skipping and ends:
                skipping = False
            elif (depth == 1 and s == ":" and not default) or (depth == 0 and s == "->"):
                skipping = True
                continue
            if depth == 0 and s == ":" and not skipping:
                in_header = False
        if not skipping:
            out.append(tok)
    return out


_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)  # Python 3.12 splits f-strings
_FSTRING_END = getattr(tokenize, "FSTRING_END", -2)


def _emitted(tokens: list[tokenize.TokenInfo], i: int) -> str:
    tok = tokens[i]
    previous = tokens[i - 1] if i else None
    if tok.type == tokenize.NAME:
        return tok.string if tok.string in _KEPT_NAMES or (
            previous is not None and previous.string == ".") else "V"
    if tok.type == tokenize.STRING:
        statement_start = previous is None or previous.type == tokenize.NEWLINE
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if statement_start and (after is None or after.type == tokenize.NEWLINE):
            return ""  # a docstring, or a string standing alone: a comment by another name
        return "S"
    if tok.type == tokenize.NEWLINE:
        return ";"
    return tok.string  # operators and numbers


def normalize(code: str) -> Normalized:
    """``code`` reduced as the module says, with the spans back to it."""
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(row: int, col: int) -> int:
        return starts[min(row - 1, len(starts) - 1)] + col

    text: list[str] = []
    spans: list[tuple[int, int]] = []
    tokens = _tokens(code)
    for i, tok in enumerate(tokens):
        out = _emitted(tokens, i)
        if out == ";" and (not text or text[-1] == ";"):
            continue  # the end of a statement that left nothing (a docstring)
        if out:
            span = (offset(*tok.start), offset(*tok.end))
            text.append(out)
            spans.extend([span] * len(out))
    return Normalized(code, "".join(text), tuple(spans))
