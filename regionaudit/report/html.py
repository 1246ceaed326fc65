"""The self-contained HTML report: inline CSS, inline SVG plots, no scripts, no external links."""

from __future__ import annotations

from regionaudit.report.context import audit_context, compare_context
from regionaudit.report.templating import html_environment, read_resource
from regionaudit.result import AuditResult, CompareResult


def _render(template: str, ctx: dict) -> str:
    env = html_environment()
    return env.get_template(template).render(**ctx, ctx=ctx, css=read_resource("report.css"))


def render_html(result: AuditResult, clock=None) -> str:
    """The audit report as one HTML string; with `clock`, its timing table includes the time
    spent making the report (left out by default, so the same result renders the same)."""
    return _render("report.html.j2", audit_context(result, clock))


def render_compare_html(result: CompareResult, clock=None) -> str:
    """The comparison report (`regionaudit compare A B`) as one HTML string; `clock` as for
    `render_html`."""
    return _render("compare.html.j2", compare_context(result, clock))

