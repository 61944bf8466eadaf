"""Build checks on stored notebook outputs: no saved tracebacks, no image without alt text.

The book is built with ``execute_notebooks: off``, so ``nb_execution_raise_on_error`` never
fires and a traceback saved in a notebook would be published as if it were a result. This
extension records every stored error output and every image without alt text while documents
are read, keeps the findings in the build environment (so an incremental rebuild still
reports them), and warns about all of them once per build. ``jupyter-book build
--warningiserror`` (``make book``) then fails. It also drops the inline scripts that Sphinx
7.4 writes twice into every page (see ``_on_page_context``).
"""
from __future__ import annotations

import json
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

_ENV_KEY = "course_findings"  # docname -> list of (warning subtype, message)


def _findings(env: BuildEnvironment) -> dict[str, list[tuple[str, str]]]:
    if not hasattr(env, _ENV_KEY):
        setattr(env, _ENV_KEY, {})
    return getattr(env, _ENV_KEY)


def stored_errors(notebook_json: str) -> list[str]:
    """One message per error output stored in a notebook's JSON text."""
    try:
        cells = json.loads(notebook_json).get("cells", [])
    except (ValueError, AttributeError):
        return []  # not JSON: myst-nb itself reports unreadable notebooks
    messages = []
    for index, cell in enumerate(cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                messages.append(
                    f"cell {index} stores an error output ({output.get('ename', '?')}: "
                    f"{output.get('evalue', '')}); fix the cell, re-run the notebook top to "
                    "bottom and save it again")
    return messages


def _on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        for message in stored_errors(source[0]):
            _findings(app.env).setdefault(docname, []).append(("stored_error", message))


def _on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    for image in doctree.findall(nodes.image):
        if str(image.get("alt", "")).strip():
            continue
        cell = _cell_number(image)
        if cell is not None:
            message = (f"cell {cell} shows an image without alt text: add the cell metadata "
                       '{"mystnb": {"image": {"alt": "what the plot shows"}}}')
        else:
            message = (f"image {image.get('uri', '')} (line {image.line or '?'}) has no alt "
                       "text: write ![what it shows](...) or give the figure an :alt: option")
        _findings(app.env).setdefault(docname, []).append(("alt_text", message))


def _cell_number(node: nodes.Node) -> int | None:
    # myst-nb wraps each code cell's input and outputs in a container carrying cell_index
    while node is not None:
        if isinstance(node, nodes.Element) and node.get("cell_index") is not None:
            return int(node["cell_index"]) + 1
        node = node.parent
    return None


def _on_purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _findings(env).pop(docname, None)


def _on_merge(app: Sphinx, env: BuildEnvironment, docnames: set[str],
              other: BuildEnvironment) -> None:
    for docname in docnames:
        if docname in _findings(other):
            _findings(env)[docname] = _findings(other)[docname]


def _on_check(app: Sphinx, env: BuildEnvironment) -> None:
    for docname in sorted(_findings(env)):
        if docname not in env.found_docs:
            continue
        for subtype, message in _findings(env)[docname]:
            logger.warning(message, location=docname, type="course", subtype=subtype)


def _on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict,
                     doctree: Any) -> None:
    # Sphinx 7.4 lists an inline script twice when an extension adds it after the builder
    # started (sphinx-thebe, sphinx-togglebutton): once with filename None, once with ''.
    # Browsers then fail on the repeated `const THEBE_JS_URL`; keep the first of each.
    unique, seen = [], set()
    for script in context.get("script_files", []):
        key = (str(getattr(script, "filename", script) or ""), getattr(script, "priority", 0),
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _on_page_context)
    app.connect("source-read", _on_source_read)
    app.connect("doctree-read", _on_doctree_read)
    app.connect("env-purge-doc", _on_purge)
    app.connect("env-merge-info", _on_merge)
    app.connect("env-check-consistency", _on_check)
    return {"version": "1", "env_version": 1, "parallel_read_safe": True,
            "parallel_write_safe": True}
