"""Reports: HTML, PDF and model-card Markdown, rendered from an `AuditResult` / `CompareResult`.

`context` turns a result into plain data (numbers formatted, sentences, tables, SVG plots);
the templates in `regionaudit.templates` lay it out. PDF goes through WeasyPrint, imported lazily.
"""

from regionaudit.report.card import append_card, appended_card, read_card, render_card, write_card
from regionaudit.report.html import render_compare_html, render_html, write_compare_html, write_html
from regionaudit.report.pdf import check_pdf_support, html_to_pdf, write_compare_pdf, write_pdf

__all__ = [
    "append_card",
    "appended_card",
    "check_pdf_support",
    "html_to_pdf",
    "read_card",
    "render_card",
    "render_compare_html",
    "render_html",
    "write_card",
    "write_compare_html",
    "write_compare_pdf",
    "write_html",
    "write_pdf",
]
