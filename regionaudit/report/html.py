"""The self-contained HTML report: inline CSS, inline SVG plots, no scripts, no external links."""

from __future__ import annotations

from regionaudit.report.context import audit_context, compare_context
from regionaudit.report.templating import html_environment, read_resource
from regionaudit.result import AuditResult, CompareResult


def _render(template: str, ctx: dict) -> str:
    env = html_environment()
    return env.get_template(template).render(**ctx, ctx=ctx, css=read_resource("report.css"))


def render_html(result: AuditResult) -> str:
    """The audit report as one HTML string."""
    return _render("report.html.j2", audit_context(result))


def render_compare_html(result: CompareResult) -> str:
    """The comparison report (`regionaudit compare A B`) as one HTML string."""
    return _render("compare.html.j2", compare_context(result))

