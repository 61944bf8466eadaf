"""A link to the same page in the other language, in the header of every page of both sites.

The English site is ``_build/html``, the Korean one ``_build/html/ko`` (``make book`` builds
both from the same notebooks; see ``scripts/build_book.py``). On an English page the link
goes to ``ko/<page>.html``; on a Korean page back to ``../<page>.html``. The template
``book/_templates/language-switch.html`` draws it beside the page's buttons; each page
also names its translation with ``<link rel="alternate" hreflang=...>``.
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

# this site's language -> (the other site's root relative to this one, its code, label, title)
_OTHER = {"en": ("ko/", "ko", "한국어", "이 페이지를 한국어로 읽기"),
          "ko": ("../", "en", "English", "Read this page in English")}


def _on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict,
                     doctree: Any) -> None:
    language = (app.config.language or "en").split("_")[0]
    folder, code, label, title = _OTHER.get(language, _OTHER["en"])
    href = context["pathto"](f"{folder}{pagename}.html", 1)
    context["language_switch"] = {"href": href, "code": code, "label": label,
                                  "title": title}
    context["metatags"] = (context.get("metatags", "") +
                           f'<link rel="alternate" hreflang="{code}" href="{href}" />\n')


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _on_page_context)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
