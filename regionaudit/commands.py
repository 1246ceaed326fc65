"""What each CLI command does, once click has parsed its options into `Options` and `Wanted`.

Order matters for "nothing is written half-way": everything that can fail on bad input (import,
analysis, gate paths) happens before the first output file is written, and every file is written
atomically (`outputs.py`).
"""

from __future__ import annotations

import functools
import json
import math
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import click

from regionaudit.analysis.distance import choose_method
from regionaudit.api import audit, import_for_audit
from regionaudit.assemble import model_info
from regionaudit.capacity import capacity, format_bounds
from regionaudit.environment import environment_warning
from regionaudit.errors import BadData, BadOption
from regionaudit.files import is_dash, to_stdout, write_text
from regionaudit.gates import thresholds
from regionaudit.gates.baseline import (apply_baseline, check_baseline_model, check_increases, evaluate_increases,
                                        load_baseline)
from regionaudit.gates.catalogue import check_node_paths, gateable_paths, needs_slice
from regionaudit.gates.paired import paired_measures
from regionaudit.importer.refusal import Refusal
from regionaudit.options import Options, file_option_names, ineffective, option_flag
from regionaudit.outputs import OutputRequest, check_outputs, report_format, write_outputs
from regionaudit.probes import check_loop_input, import_check_rows
from regionaudit.progress import Progress, say
from regionaudit.report.formatting import counted
from regionaudit.result import SCHEMA, AuditResult, CompareResult, load_result
from regionaudit.slice_audit import SKIPPED_HINT, SKIPPED_NOTE, has_plane
from regionaudit.version import __version__

CLOCK = time.perf_counter  # times the stages and the long-run estimate; tests put a fake clock here


@dataclass(frozen=True)
class Wanted:
    """What a command was asked to write and to check, apart from the options that change numbers."""

    report: str | None = None  # -o report.html / report.pdf
    json: str | None = None
    card: str | None = None
    card_append: str | None = None
    junit: str | None = None
    slice_png: str | None = None  # the 2-D slice's picture, .png or .svg
    fail_if: tuple[str, ...] = ()
    max_increase: tuple[str, ...] = ()
    baseline: str | None = None
    quiet: bool = False

    def outputs(self, default_stem: str) -> list[OutputRequest]:
        """The files to write, in order; with nothing named, the HTML report `<stem>.regionaudit.html`."""
        named = [("json", self.json), ("card", self.card), ("card-append", self.card_append), ("junit", self.junit)]
        report: str | Path | None = self.report
        if report is None and not any(path for _, path in named):
            report = Path(f"{default_stem}.regionaudit.html")
        requests = [OutputRequest(report_format(report), report)] if report is not None else []
        named.append(("slice-png", self.slice_png))  # a picture alone still gets the report
        return requests + [OutputRequest(fmt, path, report) for fmt, path in named if path]


def _inputs(opts: Options, named: dict[str, str | None]) -> dict[str, str | None]:
    """Every file the run reads, by what it is: no output may replace one."""
    return {**named, **{option_flag(name): getattr(opts, name) for name in file_option_names()}}


def _unused(opts: Options, network, typed: frozenset[str] | None = None) -> list[str]:
    """Options typed that have no effect with the probes given and this network: said on stderr
    (`_say`) once the checks after the import have passed, and noted."""
    size = math.prod(network.input_shape)
    return ineffective(opts, exact_distance=choose_method(opts.distance, size) == "exact", typed=typed, input_size=size)


def _say(notes: list[str]) -> None:
    """Notes held back until the usage errors that follow the import could no longer come: a
    refused run says one line."""
    for note in notes:
        _note(note)


def _run_analysis(imported, opts: Options, quiet: bool, unused: list[str], warn=None, checked=None) -> AuditResult:
    with ExitStack() as bars:

        def progress(stage: str, total: int):
            return bars.enter_context(Progress(total, stage, clock=CLOCK)).update

        result = audit(
            imported,
            options=opts,
            progress=None if quiet else progress,
            warn=warn or _warn,
            notify=None if quiet else _notify,
            clock=CLOCK,
            checked=checked,
        )
        result.notes.extend(n for n in unused if n not in result.notes)  # (the audit may say one itself)
        return result


def _import_notes(imported, name: str | None = None) -> list[str]:
    """What the import decided (the output analysed, a Softmax stripped, a fixed first axis read
    as part of the input): said on stderr (`_say`) as well as in the result."""
    return [f"{name}: {note}" if name else note for note in imported.notes]


def _notify(message: str) -> None:
    click.echo(f"regionaudit: {message}", err=True)


def _importing(model: str, quiet: bool) -> None:
    if not quiet:
        say(f"importing {model} and checking it against onnxruntime...")


def _note(message: str) -> None:
    click.echo(f"regionaudit: note: {message}", err=True)


def _warn(message: str) -> None:
    click.echo(f"regionaudit: warning: {message}", err=True)


def _finish(result, outputs: list[OutputRequest]) -> int:
    """Write every output, print one line per gate on stderr; the exit code says whether all passed."""
    write_outputs(result, outputs, clock=CLOCK)
    for g in result.gates:
        click.echo(thresholds.format_gate_line(g), err=True)
    return 1 if thresholds.any_failed(result.gates) else 0


def run_audit(model: str, opts: Options, wanted: Wanted) -> int:
    typed = opts.given  # (what a baseline fills in counts as given from here on, but was not typed)
    baseline = load_baseline(wanted.baseline) if wanted.baseline else None
    if baseline is not None:
        opts = apply_baseline(opts, baseline)
    # a malformed gate, an unknown path or an unwritable output is a usage error before minutes of work
    gates = thresholds.check_gates(list(wanted.fail_if))
    bounds = check_increases(list(wanted.max_increase), baseline)
    outputs = wanted.outputs(Path(model).stem)
    check_outputs(outputs, _inputs(opts, {"the model": model, "--baseline": wanted.baseline}))
    paths = [g.path for g in gates] + [b.path for b in bounds]
    _check_slice_wanted(opts.slice, wanted, paths, "--no-slice turns the 2-D slice off" if "slice" in typed else
                        "the baseline was measured with --no-slice, which this run reuses; make a new baseline that "
                        "measures the slice")
    _importing(model, wanted.quiet)
    try:
        imported = import_for_audit(model, opts, import_check_rows(opts.data, opts.max_file_size))
    except BadData as exc:
        if baseline is None or "data" in typed or opts.data is None:
            raise
        # (its rows are read before the model is known, so a baseline of another model fails here)
        raise BadData(f"--data {opts.data}, which the baseline measured: {exc}; a baseline of another model? "
                      "make a new baseline") from None
    if baseline is not None:
        check_baseline_model(baseline, imported.network.input_shape, model)
    unused = _unused(opts, imported.network, typed)
    check_node_paths(paths, imported.network.kink_names, imported.network.n_outputs,
                     input_size=math.prod(imported.network.input_shape))
    _check_slice_wanted(has_plane(imported.network), wanted, paths, "this model's input has one element: it has no 2-D slice")

    def checked(notes: list[str]) -> None:  # (a data set that spans no plane is known once its rows are read)
        skipped = [n.removeprefix(SKIPPED_NOTE).removesuffix(SKIPPED_HINT) for n in notes
                   if opts.slice and n.startswith(SKIPPED_NOTE) and n.endswith(SKIPPED_HINT)]
        if skipped:
            _check_slice_wanted(False, wanted, paths, skipped[0] + " (give three points with --slice-points)")
        _say(_import_notes(imported) + unused)

    result = _run_analysis(imported, opts, wanted.quiet, unused, checked=checked)
    if baseline is not None and (line := environment_warning(result.environment, baseline.get("environment"))):
        click.echo(line, err=True)
    result_dict = result.to_dict()
    result.gates = thresholds.evaluate_gates(result_dict, list(wanted.fail_if))
    if wanted.max_increase:
        result.gates += evaluate_increases(result_dict, baseline, list(wanted.max_increase))
    code = _finish(result, outputs)
    _print_summary(result, [r.path for r in outputs])
    return code


def _check_slice_wanted(sliced: bool, wanted: Wanted, gate_paths: list[str], why: str = "--no-slice turns the 2-D slice off") -> None:
    """A slice gate or picture without a slice (--no-slice, or a model with one input element)
    can never be evaluated: a usage error before the analysis."""
    if sliced:
        return
    if wanted.slice_png:
        raise BadOption(f"--slice-png draws the 2-D slice, but {why}")
    sliced_paths = [p for p in gate_paths if needs_slice(p)]
    if sliced_paths:
        raise BadOption(f"a gate names {sliced_paths[0]}, which needs the 2-D slice, but {why}")


def _fmt(summary: dict | None, key: str = "median", spec: str = ".4g") -> str:
    if summary is None or summary.get(key) is None:
        return "undefined"
    return format(summary[key], spec)


def _print_summary(result: AuditResult, written: list) -> None:
    m = result.model
    say = _echo(written)
    if result.settings.get("synthetic"):
        say(SYNTHETIC_LINE)
    say(f"{m.path}: input {tuple(m.input_shape)}, {m.neurons} ReLU units, {m.params} parameters")
    cut = result.density.cut_segments
    bound = f" (lower bound: {cut} reached --max-knots)" if cut else ""
    say(f"  regions per segment: median {_fmt(result.density.summary)}{bound} over {counted(len(result.density.segments), 'segment')}")
    say(f"  absolute deviation: median {_fmt(result.deviation.summary)}")
    say(f"  boundary distance: median {_fmt(result.distance.summary)} over {counted(len(result.distance.points), 'point')}")
    if result.slice is not None:
        sl = result.slice
        bound = " (lower bound: --max-regions reached)" if sl.truncated else ""
        say(f"  2-D slice: {counted(sl.regions, 'region')}{bound}, decision boundary length {sl.decision_boundary['length']:.4g}")
    _print_written(written, say)


def _echo(written: list) -> Callable[[str], None]:
    """click.echo for a command's summary: onto stderr where an output went to standard output
    ("-", /dev/stdout), so that standard output holds that output alone (for a pipe)."""
    return functools.partial(click.echo, err=any(p and to_stdout(p) for p in written))


def _print_written(written: list, say: Callable[[str], None]) -> None:
    for p in written:
        if p and not is_dash(p):
            say(f"wrote {p}")


SYNTHETIC_LINE = ("SYNTHETIC PROBES: no data was given; every number below is measured at seeded Gaussian points, "
                  "not real inputs (pass --data)")


def run_inspect(model: str, opts: Options, json_out: str | None, quiet: bool = False) -> int:
    if json_out:
        check_outputs([OutputRequest("json", json_out)], {"the model": model})
    _importing(model, quiet)
    try:
        imported = import_for_audit(model, opts)
    except Refusal as exc:  # the JSON holds every refused node; stderr gets the one line
        if json_out:
            payload = {"regionaudit": __version__, "schema": SCHEMA, "model": {"path": model},
                       "refusal": exc.to_dict()}
            write_text(json_out, json.dumps(payload, indent=2, allow_nan=False) + "\n")
        raise
    info = model_info(imported)
    cap = capacity(imported.network)
    if json_out:
        payload = {"regionaudit": __version__, "schema": SCHEMA, "model": asdict(info), "capacity": cap}
        write_text(json_out, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    say = _echo([json_out])
    say(format_inspect(info))
    say("\n".join(["", *format_bounds(cap)]))
    _print_written([json_out], say)
    return 0


def format_inspect(info) -> str:
    rows = [("id", "kind", "ONNX name", "output shape", "units", "detail")]
    for n in info.nodes:
        rows.append((str(n["id"]), n["kind"], n["name"], "x".join(map(str, n["shape"])) or "scalar", str(n["units"] or ""), n.get("detail") or ""))
    # columns cut at 40 characters, but the last (the detail), which no column follows
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]) - 1)]
    lines = [
        f"{info.path}  (opset {info.opset}, {info.producer or 'unknown producer'})",
        f"input {info.input_name!r} shape {tuple(info.input_shape)}; output {info.output_name!r} shape {tuple(info.output_shape)}",
        "",
    ]
    for r in rows:
        lines.append("  ".join([*(c[:40].ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip())
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


def run_compare(model_a: str, model_b: str, opts: Options, wanted: Wanted) -> int:
    opts = opts.with_values(slice=False)  # compare measures no 2-D slices
    gates = thresholds.check_gates(list(wanted.fail_if), compare=True)
    outputs = wanted.outputs(f"{Path(model_a).stem}-vs-{Path(model_b).stem}")
    check_outputs(outputs, _inputs(opts, {"the first model": model_a, "the second model": model_b}))
    rows = import_check_rows(opts.data, opts.max_file_size)
    _importing(model_a, wanted.quiet)
    imp_a = import_for_audit(model_a, opts, rows)
    unused = _unused(opts, imp_a.network)  # (both models read the same points)
    _importing(model_b, wanted.quiet)
    imp_b = import_for_audit(model_b, opts, rows)
    shape_note = _compare_shapes(model_a, imp_a.network.input_shape, model_b, imp_b.network.input_shape)
    for model, imported in ((model_a, imp_a), (model_b, imp_b)):  # (not after measuring A)
        check_loop_input(imported.network.input_shape, opts.loops, model)
    for prefix, imported in (("a.", imp_a), ("b.", imp_b)):
        paths = [g.path.removeprefix(prefix) for g in gates if g.path.startswith(prefix)]
        check_node_paths(paths, imported.network.kink_names, root=prefix)
    _say(_import_notes(imp_a, model_a) + unused + _import_notes(imp_b, model_b))
    warned: set[str] = set()

    def warn_once(message: str) -> None:  # (both models read the same data: one warning about it)
        if message not in warned:
            warned.add(message)
            _warn(message)

    res_a = _run_analysis(imp_a, opts, wanted.quiet, unused, warn_once)
    res_b = _run_analysis(imp_b, opts, wanted.quiet, unused, warn_once)
    n_a, n_b = imp_a.network.n_outputs, imp_b.network.n_outputs
    outputs_note = None if n_a == n_b else (
        f"A has {n_a} output{'s' if n_a != 1 else ''} and B {n_b}: a segment's absolute deviation is the L2 norm over "
        "a model's outputs, so the paired deviations compare norms over different outputs.")
    for note in (shape_note, outputs_note):
        if note:
            _note(note)
            res_a.notes.append(note)
            res_b.notes.append(note)
    result = CompareResult(a=res_a, b=res_b, paired=paired_measures(res_a, res_b))
    result.timing = {"total_s": res_a.timing.get("total_s", 0.0) + res_b.timing.get("total_s", 0.0)}
    result.gates = thresholds.evaluate_gates(result.to_dict(), list(wanted.fail_if))
    code = _finish(result, outputs)
    p = result.paired
    written = [out.path for out in outputs]
    say = _echo(written)
    if res_a.settings.get("synthetic"):
        say(SYNTHETIC_LINE)
    cut = len(p.density.differences) - p.density.pairs
    say(f"{model_a} vs {model_b}: {p.density.pairs} paired segments" + (f" ({cut} cut short by --max-knots left out)" if cut else ""))
    say(f"  fraction with more regions in B: {_frac(p.density.fraction_positive)}")
    say(f"  fraction with larger deviation in B: {_frac(p.deviation.fraction_positive)}")
    _print_written(written, say)
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
    paths = gateable_paths(None if result_path is None else load_result(result_path))
    click.echo("\n".join(paths))
    return 0
