"""Loading the Jinja templates shipped as package data in `regionaudit.templates`.

Templates are read through importlib.resources, so they work from a source checkout, an editable
install and a wheel alike.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jinja2

from regionaudit.report import formatting


def read_resource(name: str) -> str:
    return resources.files("regionaudit.templates").joinpath(name).read_text(encoding="utf-8")


def _load(name: str) -> str | None:
    res = resources.files("regionaudit.templates").joinpath(name)
    if not res.is_file():
        return None
    return res.read_text(encoding="utf-8")


class MarkdownSafe(str):
    """Markdown that a template may print as is (already escaped or built by us)."""


def _markdown_finalize(value):
    if isinstance(value, MarkdownSafe):
        return value
    if value is None:
        return formatting.DASH
    return formatting.markdown(value)


@lru_cache(maxsize=None)
def html_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = formatting.num
    return env


@lru_cache(maxsize=None)
def markdown_environment() -> jinja2.Environment:
    """Every `{{ value }}` is Markdown-escaped unless it is a `MarkdownSafe` string."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=False,
        finalize=_markdown_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["raw"] = MarkdownSafe
    return env
