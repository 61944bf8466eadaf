"""Notebooks handed in as HTML: ``jupyter nbconvert --to html`` (the lab and the classic
templates), as the homework this course grew from asked for.

The page keeps each code cell's source as the text of a ``<pre>`` in the cell's input area
(highlighted with spans, which the text drops); the cell metadata, answer ids included, is
gone. The code cells are read back into a notebook that the grader grades as one whose
editor dropped the metadata: each answer is the last cell that defines its graded name. Any
other HTML is a per-file error. The page is only parsed (``html.parser``, which fetches and
runs nothing), never rendered.
"""
from __future__ import annotations

from html.parser import HTMLParser

from ..errors import NotebookError
from ..i18n import _

__all__ = ["looks_like_html", "notebook_from_html", "HTML_EXPORT"]

HTML_EXPORT = "cnn_course_html_export"  # set in the rebuilt notebook's metadata
# (cell container, input area) classes of nbconvert's lab and classic templates
_TEMPLATES = (("jp-CodeCell", "jp-InputArea-editor"), ("code_cell", "input_area"))


def looks_like_html(data: bytes) -> bool:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html"))


class _CodeCells(HTMLParser):
    """The text of the ``<pre>`` blocks inside code cells' input areas, one per cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[str] = []
        self.stack: list[tuple[str, str, bool]] = []  # (tag, role, a source <pre>?)
        self.text: list[str] | None = None             # the source <pre> being read

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("br", "img", "meta", "link", "input", "hr", "wbr", "source"):
            return  # void elements never close
        classes = (attrs.get("class") or "").split()
        role = next((r for cell, area in _TEMPLATES for r, name in
                     (("cell", cell), ("input", area)) if name in classes), "")
        roles = {r for _, r, _ in self.stack}
        source = tag == "pre" and self.text is None and {"cell", "input"} <= roles
        if source:
            self.text = []
        self.stack.append((tag, role, source))

    def handle_endtag(self, tag):
        if not any(t == tag for t, _, _ in self.stack):
            return  # a stray end tag
        while self.stack:
            open_tag, _, source = self.stack.pop()
            if source:
                self.cells.append("".join(self.text or []))
                self.text = None
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)


def notebook_from_html(data: bytes) -> dict:
    """A notebook (nbformat 4, code cells only) rebuilt from an nbconvert HTML export, or a
    NotebookError for any other HTML."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError(_("the HTML file is not UTF-8 text")) from None
    parser = _CodeCells()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError, RecursionError) as exc:
        raise NotebookError(_("the HTML file could not be read ({error})").format(
            error=type(exc).__name__)) from None
    if not parser.cells:
        raise NotebookError(_(
            "this HTML file is not a notebook exported with jupyter nbconvert --to html "
            "(no code cells found); hand in the .ipynb file, or the HTML export of it"))
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
              "execution_count": None} for source in parser.cells]
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {HTML_EXPORT: True}}
