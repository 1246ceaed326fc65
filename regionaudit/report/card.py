"""The model-card section: a short Markdown summary for a Hugging Face style README.

`render_card` makes the section alone; `appended_card` puts it into an existing README between
`<!-- regionaudit:start -->` and `<!-- regionaudit:end -->`, replacing an earlier section and
leaving every other byte (front matter, line endings, text around it) as it was. `outputs.py`
writes either.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from urllib.parse import quote

from regionaudit.errors import BadOption
from regionaudit.gates.numbers import format_number
from regionaudit.metrics import Metric
from regionaudit.report import formatting as show
from regionaudit.report.context import cut_short, median, model_name, probe_words, result_notes, settings_section
from regionaudit.report import framecontext as RF
from regionaudit.report.tables import shown_metrics, summary_of
from regionaudit.report.templating import MarkdownSafe, markdown_environment
from regionaudit.result import AuditResult

START = "<!-- regionaudit:start -->"
END = "<!-- regionaudit:end -->"


def _init_summary(result: AuditResult, path: str) -> dict | None:
    """The same metric at initialisation (reference.init.pooled), where the reference measures it."""
    pooled = (RF.init_ref(result) or {}).get("pooled") or {}
    section, _, key = path.partition(".")
    return (pooled.get(section) or {}).get(key)


# slice metrics that only grow as the partition goes on: a stopped slice's value is a lower bound
LOWER_BOUNDS_WHEN_STOPPED = ("slice.regions", "slice.regions_per_unit_area", "slice.boundary_length")


def _slice_stopped(result: AuditResult) -> bool:
    return result.slice is not None and result.slice.truncated


def _metric_row(result: AuditResult, metric: Metric, words: dict[str, str]) -> dict:
    value = summary_of(result, metric.path)
    if metric.summary:
        med = median(value)
        if med is None:
            shown = "undefined"
        else:
            spread = show.spread(value)
            ci = RF.ci_text(value)  # the median's 95 % interval, and the init reference beside it
            over_segments = metric.path in ("density.summary", "density.per_length", "density.regions_per_neuron")
            bound = ", a lower bound: segments were cut short" if over_segments and cut_short(result) else ""
            if metric.path == "density.path_summary" and any(p.truncated for p in result.density.paths):
                bound = ", a lower bound: loops were cut short"
            if metric.slice and _slice_stopped(result):
                bound = ", of an unfinished partition: the slice stopped at --max-regions"
            shown = f"{show.num(med)} (median{bound}" + (f", {ci}" if ci else "") + (f"; {spread})" if spread else ")")
            init = median(_init_summary(result, metric.path))
            if init is not None:
                shown += f"; at init {show.num(init)}"
    else:
        shown = "undefined" if value is None else show.num(value)
        if value is not None and metric.slice and _slice_stopped(result):
            shown += " (a lower bound: the slice stopped at --max-regions)" if metric.path in LOWER_BOUNDS_WHEN_STOPPED else \
                " (of an unfinished partition: the slice stopped at --max-regions)"
        sp = result.deviation.spearman
        if metric.path == "deviation.spearman_density" and value is not None and sp and sp.get("ci95_low") is not None:
            shown += f" (p = {show.num(sp['p_value'])}, {RF.ci_text(sp)})"
    return {"metric": metric.label, "value": shown, "meaning": metric.describe(**words)}


def card_context(result: AuditResult, report_link: str | None) -> dict:
    m = result.model
    between, at = probe_words(result)
    near = "near the probes" if (result.settings or {}).get("synthetic") else "near the data"
    words = {"between": between, "at": at, "near": near, "approx": show.approx_words(result.distance)}
    metrics = [_metric_row(result, metric, words) for metric in shown_metrics(result)]
    settings = settings_section(result)
    s = result.settings or {}
    data = settings["data"]
    data_line = synthetic_line = None
    if settings["synthetic"]:
        synthetic_line = MarkdownSafe(
            "**Synthetic probes:** no data was given, so every number here is measured at seeded Gaussian "
            "points, not at real inputs; near real data it can differ a lot."
        )
    elif data:
        data_line = f"Data: {PathName(data)}" + (f" (sha256 {show.short_hash(settings['data_hash'], 16)})" if settings["data_hash"] else "") + ", used as given (no rescaling)."
    link = None
    if report_link:
        link = MarkdownSafe(f"[{show.markdown(_link_text(report_link))}](<{_link_target(report_link)}>)")
    notes = result_notes(result)
    return {
        "start": MarkdownSafe(START),
        "end": MarkdownSafe(END),
        "model_name": model_name(result),
        "sha": show.short_hash(m.sha256),
        "version": result.regionaudit,
        "neurons": show.count(m.neurons),
        "params": show.count(m.params),
        "input_shape": show.shape(m.input_shape),
        "metrics": metrics,
        "settings_lines": settings["lines"],
        "data_line": data_line,
        "synthetic_line": synthetic_line,
        "seed": show.value(s.get("seed")),
        "gates": [
            {"expr": g.expr, "value": format_number(g.value) if g.value is not None else "undefined", "result": "pass" if g.passed else "FAIL"}
            for g in result.gates
        ],
        "notes": notes,
        "link": link,
    }


class PathName(str):
    """A file name for display (folders dropped): the card should not leak local paths."""

    def __new__(cls, path: str):
        return super().__new__(cls, Path(str(path).replace("\\", "/")).name or str(path))


def _link_text(link: str) -> str:
    return Path(link.replace("\\", "/")).name or link


def _link_target(link: str) -> str:
    """A link destination that cannot close the Markdown link or carry a script."""
    if re.match(r"(?i)\s*(javascript|data|vbscript):", link):
        raise BadOption(f"report link {link!r} is not a file path or http(s) URL")
    return quote(link, safe="/:.-_~#?=&%+@,;")


def render_card(result: AuditResult, report_link: str | None = None) -> str:
    """The Markdown section, markers included, ending with one newline."""
    text = markdown_environment().get_template("card.md.j2").render(**card_context(result, report_link))
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n"


_FRONT_MATTER = re.compile(r"\A(\ufeff)?---[ \t]*\r?\n.*?^(---|\.\.\.)[ \t]*(\r?\n|\Z)", re.S | re.M)


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _markers(text: str, head: int) -> list[tuple[str, int, int]]:
    """Our markers in `text` after `head`: (START or END, where it begins, where it ends), each
    alone on its line (up to 3 spaces before it, blanks after) and outside fenced code blocks, so
    that a marker quoted in prose or in a code example is text like any other. A fence left open
    at the end of the file fences nothing here: a section appended after it must be found again."""
    found: list[tuple[str, int, int]] = []
    fenced: list[tuple[str, int, int]] = []  # markers inside the fence now open
    fence, at = "", head
    for line in text[head:].splitlines(keepends=True):
        start, at = at, at + len(line)
        bare = line.rstrip("\r\n")
        opened = _FENCE.match(bare)
        if opened and opened.group(1)[0] == "`" and "`" in bare[opened.end():]:
            opened = None  # (a backtick fence's info string holds no backtick: CommonMark)
        if fence and opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) \
                and not bare[opened.end():].strip():
            fence, fenced = "", []
        elif not fence and opened:
            fence = opened.group(1)
        elif bare.strip() in (START, END) and len(bare) - len(bare.lstrip(" ")) <= 3:
            begin = start + bare.index(bare.strip())
            (fenced if fence else found).append((bare.strip(), begin, begin + len(bare.strip())))
    return sorted(found + fenced, key=lambda m: m[1])


def insert_section(text: str, section: str) -> str:
    """`text` with our marked section replaced, or appended after one blank line.

    `section` uses "\\n"; it takes the file's line ending. Text outside the markers is untouched.
    """
    crlf = text.count("\r\n") > 0 and text.count("\r\n") * 2 >= text.count("\n")
    newline = "\r\n" if crlf else "\n"
    body = section.rstrip("\n").replace("\n", newline)
    fm = _FRONT_MATTER.match(text)
    markers = _markers(text, fm.end() if fm else 0)
    kinds = [kind for kind, _, _ in markers]
    if kinds[:2] == [START, END]:
        return text[: markers[0][1]] + body + text[markers[1][2] :]
    if kinds:
        problem = ("an end marker before its start marker" if kinds[0] == END and START in kinds else
                   f"a regionaudit {'start' if kinds[0] == START else 'end'} marker without its pair")
        raise BadOption(f"the file has {problem} ({START} … {END}, each on a line of its own); fix it by hand")
    if not text:
        return body + newline
    if text.endswith(newline * 2) or (not crlf and text.endswith("\n\n")):
        sep = ""
    elif text.endswith("\n"):
        sep = newline
    else:
        sep = newline * 2
    return text + sep + body + newline


def read_card(readme_path: str | os.PathLike) -> tuple[str, int | None]:
    """An existing card's text (bytes that are not UTF-8 kept as they are) and its mode; ("", None)
    when there is no file yet. Its markers are checked here, so a broken card fails before any work."""
    path = Path(readme_path)
    if not path.exists():
        return "", None
    if not path.is_file():
        raise BadOption(f"cannot write the model card: {path} is not a file")
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    try:
        insert_section(text, "")
    except BadOption as exc:  # (the line names the card: a run may write several files)
        raise BadOption(f"--card-append {path}: {exc}") from None
    return text, stat.S_IMODE(path.stat().st_mode)


def appended_card(result: AuditResult, readme_path: str | os.PathLike, report_link: str | None = None) -> tuple[bytes, int | None]:
    """The card file with regionaudit's section inserted or replaced, and the mode to keep."""
    text, mode = read_card(readme_path)
    new = insert_section(text, render_card(result, report_link))
    return new.encode("utf-8", errors="surrogateescape"), mode

