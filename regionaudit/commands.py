"""What each CLI command does, once click has parsed its options.

Order matters for "nothing is written half-way": everything that can fail on bad input (import,
analysis, gate paths) happens before the first output file is written, and every file is written
atomically.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

import click

from regionaudit import __version__, gates as G
from regionaudit.api import Options, audit, check_rows, load_model, model_info
from regionaudit.baseline import (
    PROBE_OPTIONS,
    baseline_settings,
    check_increases,
    evaluate_increases,
    load_baseline,
    merge_settings,
)
from regionaudit.errors import BadOption
from regionaudit.files import check_writable, sha256_of, write_bytes, write_text
from regionaudit.importer.refusal import Refusal
from regionaudit.progress import Progress, say
from regionaudit.result import SCHEMA, AuditResult, CompareResult

CLOCK = time.perf_counter  # times the stages and the long-run estimate; tests put a fake clock here


def parse_shape(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        dims = tuple(int(v) for v in value.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise BadOption(f"--input-shape must be comma-separated integers like 3,32,32, got {value!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise BadOption(f"--input-shape must be positive integers, got {value!r}")
    return dims


def parse_memory(value: str | None) -> int | None:
    """Bytes from '512M', '2G', '1.5GiB' or a plain number."""
    if value is None:
        return None
    v = value.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        n = float(v[:-1]) * scale[v[-1]] if v and v[-1] in scale else float(v)
    except ValueError:
        raise BadOption(f"--max-memory must look like 512M or 2G, got {value!r}") from None
    if n <= 0:
        raise BadOption(f"--max-memory must be positive, got {value!r}")
    return int(n)


def _options(kw: dict) -> Options:
    given = {k: kw.get(k) for k in PROBE_OPTIONS}
    given["input_shape"] = parse_shape(kw.get("input_shape"))
    values = {k: v for k, v in given.items() if v is not None}
    for key in ("pairs", "max_points", "loops"):
        if values.get(key, 0) < 0:
            raise BadOption(f"--{key.replace('_', '-')} must be >= 0, got {values[key]}")
    if values.get("max_knots") is not None and values["max_knots"] < 1:
        raise BadOption(f"--max-knots must be >= 1, got {values['max_knots']}")
    if values.get("slice_box") is not None:
        values["slice_box"] = tuple(float(v) for v in values["slice_box"])
    return Options(
        **values,
        device=kw.get("device") or "cpu",
        max_memory=parse_memory(kw.get("max_memory")),
        keep_knots=bool(kw.get("keep_knots")),
        # --- 2-D slice
        slice_points=kw.get("slice_points"),
        keep_polygons=bool(kw.get("keep_polygons")),
        slice_color=kw.get("slice_color") or "region",
    )


def _apply_baseline(kw: dict, baseline: dict) -> dict:
    """Fill every probe option not given from the baseline; refuse explicit conflicts."""
    base = baseline_settings(baseline)
    explicit = {k: kw.get(k) for k in PROBE_OPTIONS}
    if explicit["input_shape"] is not None:
        explicit["input_shape"] = list(parse_shape(explicit["input_shape"]))
    merged = merge_settings(explicit, base, PROBE_OPTIONS)
    kw = dict(kw)
    for k in PROBE_OPTIONS:
        kw[k] = merged.get(k)
    if kw["input_shape"] is not None:
        kw["input_shape"] = ",".join(map(str, kw["input_shape"]))
    for key in ("data", "points", "segments", "slice_points"):
        recorded, digest = base.get(key), base.get(f"{key}_sha256")
        opt = "--" + key.replace("_", "-")
        if kw.get(key) is not None:
            if digest is not None and sha256_of(kw[key]) != digest:
                raise BadOption(f"{opt} {kw[key]} differs from the baseline's {key} file (sha256 {digest[:12]}…)")
            if digest is None and recorded is None:
                raise BadOption(f"{opt} was given but the baseline was measured without one")
        elif recorded is not None:
            if not Path(recorded).is_file() or sha256_of(recorded) != digest:
                raise BadOption(f"the baseline was measured on {opt} {recorded}; pass the same file with {opt}")
            kw[key] = recorded
    return kw


def unused_options(kw: dict) -> list[str]:
    """A sentence for each option given that has no effect with the probes given: a person who
    typed it expects it to matter, so it is said rather than silently ignored."""
    given = {k: v for k, v in kw.items() if v is not None}
    files = [k for k in ("data", "points", "segments") if k in given]
    loops = bool(given.get("loops"))
    out = []
    if "pairs" in given and ("segments" in given or ("data" not in given and "points" in given)):
        why = "--segments gives the segments" if "segments" in given else "--points alone gives no data rows to pair"
        out.append(f"--pairs {given['pairs']} has no effect: {why}.")
    if "max_points" in given and ("points" in given or ("data" not in given and "segments" in given)):
        why = "--points gives the points" if "points" in given else "--segments alone gives no data rows for points"
        out.append(f"--max-points {given['max_points']} has no effect: {why}.")
    for key in ("loop_radius", "loop_steps"):
        if key in given and not loops:
            out.append(f"--{key.replace('_', '-')} {given[key]} has no effect without --loops.")
    if "layout" in given and not loops and (not files or given.get("data_layout", "chw") == given["layout"]):
        out.append(f"--layout {given['layout']} has no effect: there are no --loops and no arrays in another --data-layout.")
    if "data_layout" in given and not files:
        out.append(f"--data-layout {given['data_layout']} has no effect: no --data, --points or --segments file was given.")
    return out


def _say_unused(kw: dict) -> list[str]:
    notes = unused_options(kw)
    for note in notes:
        click.echo(f"regionaudit: note: {note}", err=True)
    return notes


def _run_audit_only(model, kw, imported=None, unused: list[str] | None = None):
    quiet = bool(kw.get("quiet"))
    with ExitStack() as bars:

        def progress(stage: str, total: int):
            return bars.enter_context(Progress(total, stage, clock=CLOCK)).update

        result = audit(
            imported if imported is not None else model,
            data=kw.get("data"),
            points=kw.get("points"),
            segments=kw.get("segments"),
            options=_options(kw),
            progress=None if quiet else progress,
            warn=_warn,
            notify=None if quiet else _notify,
            clock=CLOCK,
        )
        result.notes.extend(unused or [])
        return result


def _notify(message: str) -> None:
    click.echo(f"regionaudit: {message}", err=True)


def _importing(model: str, kw: dict) -> None:
    if not kw.get("quiet"):
        say(f"importing {model} and checking it against onnxruntime...")


def _warn(message: str) -> None:
    click.echo(f"regionaudit: warning: {message}", err=True)


def _evaluate_gates(result_dict: dict, kw: dict, baseline: dict | None) -> list:
    results = G.evaluate_gates(result_dict, list(kw.get("fail_if") or []))
    if kw.get("max_increase"):
        results += evaluate_increases(result_dict, baseline, list(kw["max_increase"]))
    return results


def _output_paths(kw: dict, report: Path | None) -> list:
    outputs = (report, kw.get("json_out"), kw.get("card"), kw.get("card_append"), kw.get("junit"), kw.get("slice_png"))
    return [p for p in outputs if p]


def _check_outputs(kw: dict, report: Path | None) -> None:
    """Everything that could refuse an output is checked before the analysis runs."""
    from regionaudit import report as R

    for path in _output_paths(kw, report):
        check_writable(path)
    if report is not None and report.suffix.lower() == ".pdf":
        R.check_pdf_support()
    if kw.get("card_append"):
        R.read_card(kw["card_append"])
    if kw.get("slice_png"):  # --- 2-D slice picture
        from regionaudit.report.slice_plot import check_picture_path

        check_picture_path(kw["slice_png"], kw.get("slice") is not False)


def _rendered_outputs(result, kw: dict, report: Path | None) -> list[tuple[str, bytes, int | None]]:
    """(path, bytes, mode) of every output, all rendered in memory before the first is written,
    so a failure while rendering leaves no file half-way."""
    from regionaudit import report as R
    from regionaudit.junit import junit_xml

    compare = isinstance(result, CompareResult)
    out: list[tuple[str, bytes, int | None]] = []
    if report is not None:
        started = CLOCK()
        html = (R.render_compare_html if compare else R.render_html)(result, clock=CLOCK)
        data = R.html_to_pdf(html) if report.suffix.lower() == ".pdf" else html.encode("utf-8")
        out.append((str(report), data, None))
        result.timing["report_s"] = CLOCK() - started  # in the JSON, the PDF conversion included
    if kw.get("json_out"):
        out.append((kw["json_out"], (result.to_json() + "\n").encode("utf-8"), None))
    if kw.get("card"):
        card = R.render_card(result, _relative_link(report, kw["card"]))
        out.append((kw["card"], card.encode("utf-8"), None))
    if kw.get("card_append"):
        out.append((kw["card_append"], *R.appended_card(result, kw["card_append"], _relative_link(report, kw["card_append"]))))
    if kw.get("junit"):
        out.append((kw["junit"], junit_xml(result.gates).encode("utf-8"), None))
    if kw.get("slice_png") and not compare:  # --- 2-D slice picture
        from regionaudit.report.slice_plot import standalone_picture

        out.append((kw["slice_png"], standalone_picture(result.slice, kw["slice_png"]), None))
    return out


def _finish(result, kw: dict, report: Path | None) -> int:
    """Write every output, print one line per gate on stderr; the exit code says whether all passed."""
    for path, data, mode in _rendered_outputs(result, kw, report):
        write_bytes(path, data, mode)
    for g in result.gates:
        click.echo(G.format_gate_line(g), err=True)
    return 1 if G.any_failed(result.gates) else 0


def _report_path(kw: dict, default_stem: str) -> Path | None:
    if kw.get("output"):
        path = Path(kw["output"])
        if path.suffix.lower() not in (".html", ".htm", ".pdf"):
            raise BadOption(f"-o must end in .html or .pdf, got {path.name}")
        return path
    if kw.get("json_out") or kw.get("card") or kw.get("card_append") or kw.get("junit"):
        return None
    return Path(f"{default_stem}.regionaudit.html")


def run_audit(model: str, kw: dict) -> int:
    baseline = load_baseline(kw["baseline"]) if kw.get("baseline") else None
    if baseline is not None:
        kw = _apply_baseline(kw, baseline)
    # a malformed gate, an unknown path or an unwritable output is a usage error before minutes of work
    gates = G.check_gates(list(kw.get("fail_if") or []))
    bounds = check_increases(list(kw.get("max_increase") or []), baseline)
    report = _report_path(kw, Path(model).stem)
    _check_outputs(kw, report)
    unused = _say_unused(kw)
    _importing(model, kw)
    imported = load_model(model, _options(kw), check_rows(kw.get("data")))
    G.check_node_paths([g.path for g in gates] + [b.path for b in bounds], imported.network.kink_names)
    if kw.get("slice") is False and any(p.startswith("slice.") for p in [g.path for g in gates] + [b.path for b in bounds]):
        raise BadOption("a gate names a slice.* metric, but --no-slice turns the 2-D slice off")
    result = _run_audit_only(model, kw, imported, unused)
    result.gates = _evaluate_gates(result.to_dict(), kw, baseline)
    code = _finish(result, kw, report)
    _print_summary(result, _output_paths(kw, report))
    return code


def _relative_link(report: Path | None, card: str | None) -> str | None:
    """The report's path as seen from the card's folder, so the link works where the card lives."""
    if report is None or card is None:
        return None
    return Path(os.path.relpath(Path(report).resolve(), Path(card).resolve().parent)).as_posix()


def _fmt(summary: dict | None, key: str = "median", spec: str = ".4g") -> str:
    if summary is None or summary.get(key) is None:
        return "undefined"
    return format(summary[key], spec)


def _print_summary(result: AuditResult, written: list) -> None:
    m = result.model
    if result.settings.get("synthetic"):
        click.echo("SYNTHETIC PROBES: no data was given; every number below is measured at seeded Gaussian points, not real inputs (pass --data)")
    click.echo(f"{m.path}: input {tuple(m.input_shape)}, {m.neurons} ReLU units, {m.params} parameters")
    click.echo(
        f"  regions per segment: median {_fmt(result.density.summary)} over {len(result.density.segments)} segments"
    )
    click.echo(f"  absolute deviation: median {_fmt(result.deviation.summary)}")
    click.echo(f"  boundary distance: median {_fmt(result.distance.summary)} over {len(result.distance.points)} points")
    if result.slice is not None:  # --- 2-D slice
        sl = result.slice
        bound = " (lower bound: --max-regions reached)" if sl.truncated else ""
        click.echo(f"  2-D slice: {sl.regions:,} regions{bound}, decision boundary length {sl.decision_boundary['length']:.4g}")
    for p in written:
        if p:
            click.echo(f"wrote {p}")


def run_inspect(model: str, json_out: str | None, input_shape, output_name) -> int:
    _importing(model, {})
    try:
        imported = load_model(model, Options(input_shape=parse_shape(input_shape), output_name=output_name))
    except Refusal as exc:  # the JSON holds every refused node; stderr gets the one line
        if json_out:
            payload = {"regionaudit": __version__, "schema": SCHEMA, "model": {"path": model},
                       "refusal": exc.to_dict()}
            write_text(json_out, json.dumps(payload, indent=2, allow_nan=False) + "\n")
        raise
    info = model_info(imported)
    if json_out:
        payload = {"regionaudit": __version__, "schema": SCHEMA, "model": asdict(info)}
        write_text(json_out, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    click.echo(format_inspect(info))
    if json_out:
        click.echo(f"wrote {json_out}")
    return 0


def format_inspect(info) -> str:
    rows = [("id", "kind", "ONNX name", "output shape", "units", "detail")]
    for n in info.nodes:
        rows.append((str(n["id"]), n["kind"], n["name"], "x".join(map(str, n["shape"])) or "scalar", str(n["units"] or ""), n.get("detail") or ""))
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]))]
    lines = [
        f"{info.path}  (opset {info.opset}, {info.producer or 'unknown producer'})",
        f"input {info.input_name!r} shape {tuple(info.input_shape)}; output {info.output_name!r} shape {tuple(info.output_shape)}",
        "",
    ]
    for r in rows:
        lines.append("  ".join(c[:40].ljust(w) for c, w in zip(r, widths)).rstrip())
    v = info.validation
    lines += [
        "",
        f"neurons (ReLU-type units): {info.neurons}   maxpool windows: {info.maxpool_windows}",
        f"parameters: {info.params}   multiply-adds per forward pass: {info.macs}",
        f"validation against {v.get('reference', 'onnxruntime')}: max abs err {v.get('max_abs_err', float('nan')):.3g}, "
        f"max rel err {v.get('max_rel_err', float('nan')):.3g}",
    ]
    lines += [f"note: {n}" for n in info.notes]
    return "\n".join(lines)


def run_compare(model_a: str, model_b: str, kw: dict) -> int:
    from regionaudit.paired import paired_measures

    gates = G.check_gates(list(kw.get("fail_if") or []), compare=True)
    kw = {**kw, "slice": False}  # compare measures no 2-D slices
    opts = _options(kw)
    report = _report_path(kw, f"{Path(model_a).stem}-vs-{Path(model_b).stem}")
    _check_outputs(kw, report)
    rows = check_rows(kw.get("data"))
    unused = _say_unused(kw)
    _importing(model_a, kw)
    imp_a = load_model(model_a, opts, rows)
    _importing(model_b, kw)
    imp_b = load_model(model_b, opts, rows)
    shape_note = _compare_shapes(model_a, imp_a.network.input_shape, model_b, imp_b.network.input_shape)
    for prefix, imported in (("a.", imp_a), ("b.", imp_b)):
        paths = [g.path.removeprefix(prefix) for g in gates if g.path.startswith(prefix)]
        G.check_node_paths(paths, imported.network.kink_names)
    res_a = _run_audit_only(model_a, kw, imp_a, unused)
    res_b = _run_audit_only(model_b, kw, imp_b, unused)
    if shape_note:
        click.echo(f"regionaudit: note: {shape_note}", err=True)
        res_a.notes.append(shape_note)
        res_b.notes.append(shape_note)
    result = CompareResult(a=res_a, b=res_b, paired=paired_measures(res_a, res_b))
    result.timing = {"total_s": res_a.timing.get("total_s", 0.0) + res_b.timing.get("total_s", 0.0)}
    result.gates = G.evaluate_gates(result.to_dict(), list(kw.get("fail_if") or []))
    code = _finish(result, kw, report)
    p = result.paired
    click.echo(f"{model_a} vs {model_b}: {len(p.density.differences)} paired segments")
    click.echo(f"  fraction with more regions in B: {_frac(p.density.fraction_positive)}")
    click.echo(f"  fraction with larger deviation in B: {_frac(p.deviation.fraction_positive)}")
    for path in _output_paths(kw, report):
        click.echo(f"wrote {path}")
    return code


def _compare_shapes(model_a: str, shape_a, model_b: str, shape_b) -> str | None:
    """None when both models take the same shape; a note when one is flat and the other holds the
    same number of values (both see the same points, row-major); otherwise a refusal."""
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    if shape_a == shape_b:
        return None
    size_a, size_b = math.prod(shape_a), math.prod(shape_b)
    if size_a == size_b and (len(shape_a) == 1 or len(shape_b) == 1):
        return (
            f"{model_a} takes inputs of shape {shape_a} and {model_b} of shape {shape_b}: both are measured on "
            f"the same points, the flat model's inputs being the other's read row-major."
        )
    why = (
        " (the same number of values, but a reshape between two image shapes would scramble the images)"
        if size_a == size_b else ""
    )
    raise BadOption(f"cannot compare: {model_a} takes inputs of shape {shape_a}, {model_b} of shape {shape_b}{why}")


def _frac(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.3f}"


def run_metrics(result_path: str | None) -> int:
    if result_path is None:
        paths = G.gateable_paths(None)
    else:
        from regionaudit.baseline import load_result

        paths = G.gateable_paths(load_result(result_path))
    click.echo("\n".join(paths))
    return 0
