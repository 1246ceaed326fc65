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
    """The report is self-contained; refuse any fetch (file://, http://) a string might smuggle in."""
    raise ValueError(f"regionaudit reports fetch nothing (refused {url[:80]!r})")


def render_document(html: str):
    """The laid-out WeasyPrint document (its `.pages` are the PDF pages)."""
    weasyprint = _weasyprint()
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)  # CSS it does not know (e.g. screen-only rules) is not the user's problem
    try:
        return weasyprint.HTML(string=html, url_fetcher=_no_fetch, base_url=None).render()
    finally:
        logger.setLevel(level)


def html_to_pdf(html: str) -> bytes:
    return render_document(html).write_pdf()

