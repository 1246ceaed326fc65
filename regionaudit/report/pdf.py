"""PDF reports: the same HTML laid out by WeasyPrint with the print CSS (A4, page numbers).

WeasyPrint is imported only here, and only when a PDF is written: it needs system libraries
(Pango) that an HTML-only user may not have.
"""

from __future__ import annotations

import logging

from regionaudit.errors import BadOption


def _weasyprint():
    try:
        import weasyprint
    except (ImportError, OSError) as e:  # OSError: cannot load libpango / libgobject
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadOption(f"PDF output needs WeasyPrint's system libraries (Pango): {detail}") from None
    return weasyprint


def check_pdf_support() -> None:
    """Fail before the analysis, not after it, when a PDF is asked for and WeasyPrint cannot load."""
    _weasyprint()


def _no_fetch(url: str, *args, **kwargs):
    """The report is self-contained: only inline `data:` URIs are read; any other fetch (file://,
    http://) a model-controlled string might smuggle in is refused (WeasyPrint < 66 API)."""
    if str(url).lower().startswith("data:"):
        return _weasyprint().default_url_fetcher(url, *args, **kwargs)
    raise ValueError(f"regionaudit reports fetch nothing (refused {url[:80]!r})")


def url_fetcher():
    """WeasyPrint's own fetcher restricted to `data:` URIs where it has one (WeasyPrint >= 66),
    else `_no_fetch`."""
    weasyprint = _weasyprint()
    if hasattr(weasyprint, "URLFetcher"):
        return weasyprint.URLFetcher(allowed_protocols={"data"})
    return _no_fetch


def render_document(html: str):
    """The laid-out WeasyPrint document (its `.pages` are the PDF pages)."""
    weasyprint = _weasyprint()
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)  # CSS it does not know (e.g. screen-only rules) is not the user's problem
    try:
        return weasyprint.HTML(string=html, url_fetcher=url_fetcher(), base_url=None).render()
    finally:
        logger.setLevel(level)


def html_to_pdf(html: str) -> bytes:
    return render_document(html).write_pdf()

