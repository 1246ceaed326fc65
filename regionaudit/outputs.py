"""Output formats, chosen from one table (coverage.py's reporters): HTML, PDF, JSON, model card,
model card appended to an existing file, JUnit XML, the 2-D slice's picture (PNG or SVG).

Each format renders a result to bytes; `write_outputs` renders every requested output in memory
before it writes the first, each atomically, so a failure leaves no file half-way. `check_outputs`
runs every check that could refuse an output before the analysis starts. The CLI and the tests
both go through here; adding a format is one row in `FORMATS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from regionaudit.errors import BadOption
from regionaudit.files import appended, check_writable, is_dash, is_special, same_file, to_stdout, write_files, write_into
from regionaudit.result import AuditResult, CompareResult

Result = AuditResult | CompareResult


@dataclass(frozen=True)
class OutputRequest:
    """One file to write: its format (a key of FORMATS), its path, and the report written in the
    same run, if any (the model card links to it)."""

    format: str
    path: str | Path  # as given, so messages show it as the user typed it
    report: str | Path | None = None


@dataclass(frozen=True)
class Rendered:
    path: str | Path
    data: bytes
    mode: int | None = None  # permissions to keep (an edited model card keeps its own)


@dataclass(frozen=True)
class OutputFormat:
    name: str
    option: str  # the command-line option that asks for it
    render: Callable[[Result, OutputRequest, Callable[[], float] | None], Rendered]
    precheck: Callable[[OutputRequest], None] | None = None  # before the analysis


def relative_link(report: str | Path | None, card: str | Path) -> str | None:
    """The report's path as seen from the card's folder, so the link works where the card lives."""
    if report is None:
        return None
    return Path(os.path.relpath(Path(report).resolve(), Path(card).resolve().parent)).as_posix()


def _html(result: Result, clock) -> str:
    from regionaudit.report.html import render_compare_html, render_html

    render = render_compare_html if isinstance(result, CompareResult) else render_html
    return render(result, clock=clock)


def _timed(result: Result, clock, make: Callable[[], bytes]) -> bytes:
    """With a clock, the report's making is part of what the run cost: `timing.report_s`, in the
    JSON rendered after it (the PDF conversion included)."""
    started = clock() if clock else 0.0
    data = make()
    if clock:
        result.timing["report_s"] = clock() - started
    return data


def _render_html(result: Result, req: OutputRequest, clock=None) -> Rendered:
    return Rendered(req.path, _timed(result, clock, lambda: _html(result, clock).encode("utf-8")))


def _render_pdf(result: Result, req: OutputRequest, clock=None) -> Rendered:
    from regionaudit.report.pdf import html_to_pdf

    return Rendered(req.path, _timed(result, clock, lambda: html_to_pdf(_html(result, clock))))


def _check_pdf(req: OutputRequest) -> None:
    from regionaudit.report.pdf import check_pdf_support

    check_pdf_support()


def _render_json(result: Result, req: OutputRequest, clock=None) -> Rendered:
    return Rendered(req.path, (result.to_json() + "\n").encode("utf-8"))


def _audit_only(result: Result, what: str) -> AuditResult:
    if isinstance(result, CompareResult):
        raise BadOption(f"{what} is written for a single-model audit, not for a comparison")
    return result


def _render_card(result: Result, req: OutputRequest, clock=None) -> Rendered:
    from regionaudit.report.card import render_card

    card = render_card(_audit_only(result, "--card"), relative_link(req.report, req.path))
    return Rendered(req.path, card.encode("utf-8"))


def _render_card_append(result: Result, req: OutputRequest, clock=None) -> Rendered:
    from regionaudit.report.card import appended_card

    data, mode = appended_card(_audit_only(result, "--card-append"), req.path, relative_link(req.report, req.path))
    return Rendered(req.path, data, mode)


def _check_card_append(req: OutputRequest) -> None:
    from regionaudit.report.card import read_card

    read_card(req.path)


def _render_junit(result: Result, req: OutputRequest, clock=None) -> Rendered:
    from regionaudit.gates.junit import junit_xml

    return Rendered(req.path, junit_xml(result.gates).encode("utf-8"))


def _render_slice_png(result: Result, req: OutputRequest, clock=None) -> Rendered:
    from regionaudit.report.slice_plot import standalone_picture

    return Rendered(req.path, standalone_picture(_audit_only(result, "--slice-png").slice, str(req.path)))


def _check_slice_png(req: OutputRequest) -> None:
    from regionaudit.report.slice_plot import check_picture_path

    check_picture_path(str(req.path))


FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("html", "-o", _render_html),
        OutputFormat("pdf", "-o", _render_pdf, _check_pdf),
        OutputFormat("json", "--json", _render_json),
        OutputFormat("card", "--card", _render_card),
        OutputFormat("card-append", "--card-append", _render_card_append, _check_card_append),
        OutputFormat("junit", "--junit", _render_junit),
        OutputFormat("slice-png", "--slice-png", _render_slice_png, _check_slice_png),
    )
}
REPORT_SUFFIXES = {".html": "html", ".htm": "html", ".pdf": "pdf"}
TO_STDOUT = ("json", "card", "junit")  # the outputs that "-" sends to standard output (text a pipe reads)


def report_format(path: str | Path) -> str:
    """The report's format from its extension (`-o report.html` or `-o report.pdf`)."""
    fmt = REPORT_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise BadOption(f"-o must end in .html or .pdf, got {Path(path).name}")
    return fmt


def _flag(req: OutputRequest) -> str:
    return "-o" if req.format in REPORT_SUFFIXES.values() else f"--{req.format}"


def check_outputs(requests: list[OutputRequest], inputs: dict[str, str | Path | None] | None = None) -> None:
    """Everything that could refuse an output, checked before the analysis runs: among them two
    outputs to one file (the second would replace the first) and an output onto an input file
    (`inputs`: what each is, e.g. "the model", "--data"). A device such as /dev/null takes any
    number of outputs."""
    for req in requests:
        if is_dash(req.path) and req.format not in TO_STDOUT:
            raise BadOption(f"{_flag(req)} cannot write to standard output (-): give a file")
        check_writable(req.path)
    dashes = [req for req in requests if is_dash(req.path)]
    others = [req for req in requests if not is_dash(req.path) and to_stdout(req.path)]
    if dashes and others:  # (two outputs named "-" are refused below, as any two names of one file)
        raise BadOption(f"{_flag(dashes[0])} and {_flag(others[0])} both write to standard output: give each output its own file")
    files = [req for req in requests if not is_special(req.path)]
    for k, req in enumerate(files):
        for other in files[k + 1 :]:
            if same_file(req.path, other.path):
                raise BadOption(f"{_flag(req)} and {_flag(other)} both name {req.path}: give each output its own file")
        for what, path in (inputs or {}).items():
            if path is not None and same_file(req.path, path):
                raise BadOption(f"{_flag(req)} {req.path} would overwrite {what}")
    for req in requests:
        fmt = FORMATS[req.format]
        if fmt.precheck is not None:
            fmt.precheck(req)


def render_outputs(result: Result, requests: list[OutputRequest], clock=None) -> list[Rendered]:
    """Every output in memory, in request order (the report first, so the JSON after it holds its
    time when `clock` is given)."""
    return [FORMATS[req.format].render(result, req, clock) for req in requests]


def write_outputs(result: Result, requests: list[OutputRequest], clock=None) -> list[str | Path]:
    """Render every output, then write them all or none (`files.write_files`); the paths written,
    in request order."""
    rendered = render_outputs(result, requests, clock)
    files = [(r.path, r.data, r.mode) for r in rendered if not appended(r.path)]
    devices = [r for r in rendered if appended(r.path)]

    def into_devices():  # after every file is staged, before any is renamed: interruptible
        for r in devices:
            write_into(r.path, r.data)

    write_files(files, then=into_devices)
    return [r.path for r in rendered]
