"""Does the website build cleanly, in both languages, and does every page work in a real browser?

The session builds the book into ``_build/html`` and its Korean edition into
``_build/html/ko`` (as ``make book`` does, re-reading every page), serves it on localhost and
walks it with headless Chromium from the index page, following internal links (the language
switch on every page leads the walk into the Korean site and back). Requests to any other
host fail at once (the browser cannot resolve them), so nothing waits on a CDN, and the
formulas render only because the site serves its own MathJax (``make book`` fetches a pinned
copy from npm; _config.yml points ``mathjax_path`` at it): on every page with math the checks
wait for MathJax and look for its output. A screenshot of each page lands in
``_build/screenshots/``.
"""
from __future__ import annotations

import functools
import re
import shutil
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest

from helpers import CHAPTERS, REPO, Build, jupyter_book, timed_build, toc_files

pytestmark = pytest.mark.browser

SITE = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPOSITORY = "https://github.com/cnn-course/cnn-course"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
    # every host name fails to resolve; the site is served from the IP 127.0.0.1
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
WINDOW = (1280, 900)
SCREENSHOT_MAX_HEIGHT = 6000  # px: enough to see a chapter's first figures


@dataclass
class Page:
    """What the browser saw on one page."""

    url: str
    links: list[str] = field(default_factory=list)     # absolute hrefs, with fragments
    anchors: set[str] = field(default_factory=set)     # ids and names on the page
    images: list[dict] = field(default_factory=list)   # src, alt, naturalWidth
    console: list[str] = field(default_factory=list)   # severe console messages
    content: dict = field(default_factory=dict)        # what the article shows, see _CONTENT
    screenshot: Path | None = None


@dataclass
class Crawl:
    base: str
    pages: dict[str, Page] = field(default_factory=dict)  # url without fragment -> page
    broken_links: list[str] = field(default_factory=list)

    def page(self, path: str) -> Page | None:
        return self.pages.get(urljoin(self.base, path))


# --- fixtures: build, serve, browse -------------------------------------------------------
def build_book(source: Path) -> Build:
    """One language's build of ``source``, re-reading every page (--all) so that warnings
    from pages unchanged since the last build count too."""
    return timed_build([str(jupyter_book()), "build", str(source), "--all", "--warningiserror",
                        "--keep-going", "--quiet"], source, timeout=900)


@pytest.fixture(scope="session")
def build(site_build) -> Build:
    """``make book``: both languages, through scripts/build_book.py (tests/conftest.py)."""
    return site_build


@pytest.fixture(scope="session")
def site(build: Build) -> Path:
    for index in (SITE / "index.html", SITE / "ko" / "index.html"):
        if not index.is_file():
            pytest.fail(f"the build wrote no {index}:\n{build.output[-3000:]}")
    return SITE


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="session")
def base_url(site: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs Debian's chromium and chromium-driver in /usr/bin: "
                    "apt-get install -y chromium chromium-driver (make system-deps)")
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed: pip install -r requirements.txt")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    # an explicit driver path: selenium uses it and downloads nothing
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


_COLLECT = """
for (const img of document.images) { img.loading = 'eager'; }
const refresh = document.querySelector('meta[http-equiv="refresh" i]');
const links = Array.from(document.querySelectorAll('a[href]'), a => a.href);
if (refresh) {
  const m = /url=(.*)$/i.exec(refresh.content);
  if (m) links.push(new URL(m[1].trim(), document.baseURI).href);
}
return {
  links: links,
  anchors: Array.from(document.querySelectorAll('[id], a[name]'),
                      e => e.id || e.getAttribute('name')),
};
"""
_IMAGES = """
return Array.from(document.images, img => ({
  src: img.currentSrc || img.src, alt: img.getAttribute('alt'),
  complete: img.complete, naturalWidth: img.naturalWidth}));
"""


# What the main article shows: its first heading or content element, the text of its code
# blocks, and, once MathJax has typeset the page, its math (`hasMath`: the build wrote TeX).
_CONTENT = """
const done = arguments[arguments.length - 1];
const article = document.querySelector('article.bd-article') || document.body;
const report = () => {
  const first = article.querySelector(
    'h1, h2, p, div.cell, div.highlight, pre, figure, img, table, ul, ol, dl');
  done({
    first: first ? first.tagName.toLowerCase() : null,
    code: Array.from(article.querySelectorAll('div.highlight pre'), e => e.innerText),
    pre: Array.from(article.querySelectorAll('pre'), e => e.innerText),
    prose: Array.from(article.querySelectorAll('p, li, h1, h2, h3, h4, figcaption, th, td'))
      .filter(e => !e.closest('pre, .cell_output, .highlight'))
      .map(e => e.innerText),
    lang: document.documentElement.lang,
    title: (article.querySelector('h1') || {}).innerText || null,
    languageSwitch: (document.querySelector('a.language-switch') || {}).href || null,
    hasMath: article.querySelector('.math') !== null,
    mathjax: typeof window.MathJax === 'object' && !!window.MathJax.startup,
    containers: article.querySelectorAll('mjx-container').length,
    errors: article.querySelectorAll('merror, mjx-merror').length,
    text: article.innerText,
  });
};
if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
  window.MathJax.startup.promise.then(report, report);
} else { report(); }
"""


def _screenshot(driver, url: str, base: str) -> Path:
    name = urlsplit(url).path[len(urlsplit(base).path):].strip("/") or "index"
    target = SCREENSHOTS / (re.sub(r"[^\w.-]+", "_", name).removesuffix(".html") + ".png")
    # a window as tall as the page (up to a limit) shows it the way a reader scrolls through it
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WINDOW[0], min(max(height, WINDOW[1]), SCREENSHOT_MAX_HEIGHT))
    try:
        target.write_bytes(driver.get_screenshot_as_png())
    finally:
        driver.set_window_size(*WINDOW)
    return target


def _visit(driver, url: str, base: str) -> Page:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    found = driver.execute_script(_COLLECT)
    # images marked lazy start loading only now; give them a moment (a stuck one is reported
    # below as not loaded)
    try:
        WebDriverWait(driver, 10).until(
            lambda d: all(i["complete"] for i in d.execute_script(_IMAGES)))
    except TimeoutException:
        pass
    page = Page(url=url, links=found["links"], anchors=set(found["anchors"]),
                images=driver.execute_script(_IMAGES))
    # script errors and failed loads of the site's own files (other hosts fail on purpose)
    page.console = [entry["message"] for entry in driver.get_log("browser")
                    if entry.get("level") == "SEVERE" and base.rstrip("/") in entry["message"]
                    and ("Uncaught" in entry["message"] or "Failed to load" in entry["message"])]
    driver.set_script_timeout(30)
    page.content = driver.execute_async_script(_CONTENT)
    page.screenshot = _screenshot(driver, url, base)
    return page


def _local_file(url: str, base: str) -> Path:
    path = unquote(urlsplit(url).path)[len(urlsplit(base).path):]
    target = SITE / path
    return target / "index.html" if url.endswith("/") or target.is_dir() else target


@pytest.fixture(scope="session")
def crawl(browser, base_url: str) -> Crawl:
    """Visit every page reachable from index.html; record links that lead nowhere."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    result = Crawl(base=base_url)
    queue, seen = deque([urljoin(base_url, "index.html")]), set()
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        page = result.pages[url] = _visit(browser, url, base_url)
        for link in page.links:
            target, _ = urldefrag(link)
            if target.startswith(base_url) and target.endswith(".html") and \
                    _local_file(target, base_url).is_file():
                queue.append(target)
    for url, page in result.pages.items():
        for link in page.links:
            target, fragment = urldefrag(link)
            if not target.startswith(base_url):
                continue  # external: never fetched, see the launch-button test
            where = f"{url[len(base_url):]} -> {link[len(base_url):]}"
            if not _local_file(target, base_url).is_file():
                result.broken_links.append(f"{where}: no such file")
            elif fragment and target in result.pages and \
                    unquote(fragment) not in result.pages[target].anchors:
                result.broken_links.append(f"{where}: no element with id '{unquote(fragment)}'")
    return result


# --- the checks ---------------------------------------------------------------------------
def test_does_the_site_build_without_warnings(build: Build):
    warnings = [line for line in build.output.splitlines() if "WARNING" in line or "ERROR" in line]
    failed = build.returncode != 0
    assert not failed, (
        "jupyter-book build --warningiserror failed; fix these and run `make book`:\n"
        + "\n".join(warnings or build.output.splitlines()[-40:]))


def test_is_no_notebook_executed_by_the_build(build: Build):
    """The site shows the stored outputs; a build that ran notebooks would publish whatever
    this machine happened to compute (and take minutes)."""
    import yaml

    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    executed = [line for line in build.output.splitlines() if "Executing" in line]
    assert not executed, "\n".join(executed[:5])


def test_is_every_page_of_the_toc_reachable_from_the_index(crawl: Crawl):
    expected = [f"{lang}{name}.html" for lang in ("", "ko/") for name in toc_files()]
    missing = [path for path in expected if crawl.page(path) is None]
    assert not missing, f"pages in _toc.yml that no link leads to: {missing}"


def test_does_every_internal_link_lead_somewhere(crawl: Crawl):
    broken = crawl.broken_links
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_does_every_image_load_with_alt_text(crawl: Crawl):
    problems = []
    for url, page in crawl.pages.items():
        where = url[len(crawl.base):]
        for image in page.images:
            src = image["src"].rsplit("/", 1)[-1][:60]
            alt = (image["alt"] or "").strip()
            if image["naturalWidth"] == 0:
                problems.append(f"{where}: image {src} did not load")
            if not alt or alt == src:
                problems.append(f"{where}: image {src} has no alt text")
    assert not problems, "\n".join(problems)


def test_does_every_page_run_without_script_errors_or_missing_files(crawl: Crawl):
    """An uncaught exception or a 404 for the site's own stylesheet, script or font."""
    errors = [f"{url[len(crawl.base):]}: {message}"
              for url, page in crawl.pages.items() for message in page.console]
    assert not errors, "\n".join(errors)


def test_does_every_chapter_offer_colab_binder_and_the_repository(crawl: Crawl):
    problems = []
    for name in CHAPTERS:
        page = crawl.page(f"book/{name}.html")
        if page is None:
            problems.append(f"book/{name}.html was not reached")
            continue
        expected = {
            "Colab": f"https://colab.research.google.com/github/cnn-course/cnn-course/blob/main/book/{name}.ipynb",
            "Binder": f"https://mybinder.org/v2/gh/cnn-course/cnn-course/main?urlpath=tree/book/{name}.ipynb",
            "repository": REPOSITORY,
        }
        problems += [f"{name}: no {label} link {href}" for label, href in expected.items()
                     if href not in page.links]
    assert not problems, "\n".join(problems)


def test_can_students_download_the_assignment(crawl: Crawl):
    page = crawl.page("book/exercises.html")
    assert page is not None, "book/exercises.html was not reached from the index"
    downloads = [link for link in page.links if link.endswith("/assignment1.ipynb")
                 and link.startswith(crawl.base)]
    assert downloads, "the exercises page has no download link for assignment1.ipynb"


def test_is_there_a_screenshot_of_every_page(crawl: Crawl):
    missing = [url for url, page in crawl.pages.items()
               if page.screenshot is None or not page.screenshot.is_file()
               or page.screenshot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"]
    assert not missing, f"no PNG screenshot in {SCREENSHOTS} for {missing}"


def test_does_every_chapter_start_with_its_title(crawl: Crawl):
    """Nothing (the Colab set-up cell, say) may come before a chapter's h1."""
    problems = []
    for path in [f"{lang}book/{name}.html" for lang in ("", "ko/") for name in CHAPTERS]:
        page = crawl.page(path)
        if page is None:
            problems.append(f"{path} was not reached")
        elif page.content.get("first") != "h1":
            problems.append(f"{path}: the article starts with a "
                            f"<{page.content.get('first')}>, not its <h1> title")
    assert not problems, "\n".join(problems)


def test_does_no_page_show_nbval_markers(crawl: Crawl):
    shown = [f"{url[len(crawl.base):]}: {line.strip()}"
             for url, page in crawl.pages.items() for block in page.content.get("code", [])
             for line in block.splitlines() if "NBVAL" in line]
    assert not shown, ("nbval markers are shown on the site; use the cell tags "
                       "nbval-ignore-output etc. instead:\n" + "\n".join(shown))


_RAW_TEX = ("$$", "\\(", "\\)", "\\[", "\\]")


def test_do_the_formulas_render_offline(crawl: Crawl):
    """Every page with math loads the site's own MathJax and shows typeset formulas only."""
    pages = {url: page for url, page in crawl.pages.items() if page.content.get("hasMath")}
    assert pages, "no page has math: did the build stop marking formulas with class 'math'?"
    problems = []
    for url, page in pages.items():
        where, seen = url[len(crawl.base):], page.content
        if not seen.get("mathjax"):
            problems.append(f"{where}: MathJax did not load (is _static/mathjax in the build?)")
        if not seen.get("containers"):
            problems.append(f"{where}: no mjx-container, so no formula was typeset")
        if seen.get("errors"):
            problems.append(f"{where}: {seen['errors']} MathJax error element(s)")
        raw = [d for d in _RAW_TEX if d in seen.get("text", "")]
        if raw:
            problems.append(f"{where}: raw TeX delimiters {raw} in the visible text")
    assert not problems, "\n".join(problems)


# --- the Korean edition -------------------------------------------------------------------
def _pairs(crawl: Crawl) -> list[tuple[str, Page | None, Page | None]]:
    return [(name, crawl.page(f"{name}.html"), crawl.page(f"ko/{name}.html"))
            for name in toc_files()]


def test_does_every_page_link_to_itself_in_the_other_language(crawl: Crawl):
    problems = []
    for name, english, korean in _pairs(crawl):
        if english is None or korean is None:
            problems.append(f"{name}: {'English' if english is None else 'Korean'} page "
                            "not reached")
            continue
        if english.content.get("languageSwitch") != korean.url:
            problems.append(f"{name}.html switches to {english.content.get('languageSwitch')}")
        if korean.content.get("languageSwitch") != english.url:
            problems.append(f"ko/{name}.html switches to {korean.content.get('languageSwitch')}")
    assert not problems, "\n".join(problems)


def test_is_every_korean_page_titled_in_korean(crawl: Crawl):
    """A translated title is parsed as Markdown: "2. 교차상관" would start a list and the
    English title would stay (scripts/build_book.py keeps the number as text)."""
    same = [f"{name}: {english.content.get('title')!r}" for name, english, korean in
            _pairs(crawl) if english and korean and
            english.content.get("title") == korean.content.get("title")]
    assert not same, "\n".join(same)


def test_does_each_site_declare_its_language(crawl: Crawl):
    wrong = [f"{url[len(crawl.base):]}: lang={page.content.get('lang')!r}"
             for url, page in crawl.pages.items()
             if page.content.get("lang") != ("ko" if "/ko/" in url else "en")]
    assert not wrong, "\n".join(wrong)


def test_do_both_languages_show_the_same_code_and_outputs(crawl: Crawl):
    """The code is written once: every code block and stored output of a Korean page is the
    English page's, in the same order."""
    differ = [name for name, english, korean in _pairs(crawl)
              if english and korean and english.content.get("pre") != korean.content.get("pre")]
    assert not differ, f"code or outputs differ between the languages on {differ}"


# worked results that a Korean reader must see exactly as printed on the English page
_WORKED = {"book/02_cross_correlation": "[[19.0, 25.0], [37.0, 43.0]]",
           "book/04_channels": "[104., 120.]]]])",
           "book/05_pooling": "2x2 max pooling:  32 of 56 one-pixel shifts",
           "book/06_lenet": "output shape: (1, 16, 5, 5)"}


@pytest.mark.parametrize("name, text", _WORKED.items())
def test_are_the_worked_results_on_the_korean_page(crawl: Crawl, name: str, text: str):
    for prefix in ("", "ko/"):
        page = crawl.page(f"{prefix}{name}.html")
        assert page is not None, f"{prefix}{name}.html was not reached"
        assert any(text in block for block in page.content.get("pre", [])), \
            f"{prefix}{name}.html does not show {text!r}"


_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def test_is_the_korean_site_written_in_korean(crawl: Crawl):
    """Every heading, paragraph, list item and table cell of a Korean page with more than a
    few English words holds Korean: nothing fell back to the English text. Bibliography
    entries (a citation with its year) keep their original titles."""
    english = []
    for url, page in crawl.pages.items():
        if "/ko/" not in url:
            continue
        for text in page.content.get("prose", []):
            words = re.findall(r"[A-Za-z]{2,}", text)
            if len(words) > 4 and not _HANGUL.search(text) and not \
                    re.search(r"\b(19|20)\d\d\b", text):
                english.append(f"{url[len(crawl.base):]}: {text[:80]!r}")
    assert not english, f"{len(english)} English passages:\n" + "\n".join(english[:15])


@pytest.mark.slow
def test_does_a_stored_traceback_or_a_plot_without_alt_text_fail_the_build(tmp_path: Path):
    """With execution off, only book/_ext/notebook_checks.py stands between them and the site."""
    import nbformat

    shutil.copy(REPO / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(REPO / "book" / "_ext", tmp_path / "book" / "_ext")
    shutil.copytree(REPO / "book" / "_static", tmp_path / "book" / "_static")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n"
                                       "chapters:\n  - file: book/broken\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nA page.\n")
    error = nbformat.v4.new_output("error", ename="ZeroDivisionError",
                                   evalue="division by zero", traceback=["ZeroDivisionError"])
    plot = nbformat.v4.new_output("display_data", data={"image/png": _TINY_PNG,
                                                        "text/plain": "<Figure>"})
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                            "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Broken"),
                nbformat.v4.new_code_cell("1 / 0", execution_count=1, outputs=[error]),
                nbformat.v4.new_code_cell("plot()", execution_count=2, outputs=[plot])]
    nbformat.write(nb, tmp_path / "book" / "broken.ipynb")
    result = build_book(tmp_path)
    assert result.returncode != 0
    assert "cell 2 stores an error output (ZeroDivisionError: division by zero)" in result.output
    assert "cell 3 shows an image without alt text" in result.output


# a 1x1 transparent PNG, base64
_TINY_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
             "RU5ErkJggg==")
