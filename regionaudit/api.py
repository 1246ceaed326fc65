"""`audit()`: the library entry point. It only orchestrates the stages of DESIGN.md's data flow:
import (`importer`), probes (`probes`), the exact analyzers (`analysis`), and the result's sections
(`assemble`); the CLI parses options, calls it and writes outputs.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from regionaudit import assemble
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.loops import vertex_crossings
from regionaudit.distance_method import distance_settings
from regionaudit.environment import describe as describe_environment
from regionaudit.errors import BadOption
from regionaudit.estimate import estimate, long_run_message
from regionaudit.importer import ImportedModel, import_model
from regionaudit.importer.pipeline import resolve_device
from regionaudit.limits import time_limit
from regionaudit.frame import add_reference_frame, frame_notes, load_labels
from regionaudit.options import Options, check_names, ineffective
from regionaudit.probes import build_probes, import_check_rows, segment_lengths
from regionaudit.result import AuditResult
from regionaudit.slice_audit import NO_PLANE_NOTE, choose_plane, has_plane, measure_slice

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def import_for_audit(model: str | Path | ImportedModel, opts: Options, check_rows: np.ndarray | None = None) -> ImportedModel:
    """The model imported as the options ask (shape, output, precision, device), checked against
    onnxruntime on random inputs and on `check_rows` (the first data rows) when given."""
    if isinstance(model, ImportedModel):
        _check_imported(model, opts)
        return model
    if not isinstance(model, (str, os.PathLike)):  # (str() of an onnx.ModelProto would be read as a file name)
        hint = ": save it with onnx.save() and pass the file's path" if hasattr(model, "SerializeToString") else ""
        raise BadOption(f"the model must be the path of an .onnx file (str or Path) or an ImportedModel, "
                        f"not {type(model).__name__}{hint}")
    return import_model(
        str(model),
        input_shape=opts.input_shape,
        output_name=opts.output_name,
        dtype=DTYPES[opts.dtype],
        device=opts.device,
        check_inputs=check_rows,
        seed=opts.seed,
        max_file_bytes=opts.max_file_size,
    )


def _check_imported(model: ImportedModel, opts: Options) -> None:
    """A model imported before the call is analysed as it was imported: options that would have
    imported it otherwise are refused, since the result's settings would record them."""
    net = model.network
    asked = {
        "dtype": (opts.dtype, str(net.dtype).removeprefix("torch.")),
        "device": (resolve_device(opts.device).type, net.device.type),
        "input_shape": (None if opts.input_shape is None else tuple(opts.input_shape), tuple(net.input_shape)),
        "output_name": (opts.output_name, net.output_name),
    }
    for name, (want, have) in asked.items():
        if want is not None and want != have:
            raise BadOption(f"{name} {want!r} was asked, but the model given was imported with {have!r}: pass "
                            f"the model's path instead, or import it with that {name}")


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))


def audit(
    model: str | Path | ImportedModel,
    options: Options | None = None,
    progress=None,
    warn=None,
    notify=None,
    clock=time.perf_counter,
    checked=None,
    **kwargs,
) -> AuditResult:
    """Measure density, deviation and boundary distance of `model` on probes; see DESIGN.md.

    `options` (or keyword arguments named like its fields: `data`, `pairs`, `seed`, ...; None takes
    the default) set the probes and precision; `progress`, if given, is called as progress(stage, total) and returns a
    callable(n) or None; `warn`, if given, is called with each note that should reach the user
    before the analysis runs (data that looks unscaled, an option that has no effect; those notes
    are in the result too); `notify`, if given, is called with one line when the audit is estimated
    to take long (regionaudit.estimate); `clock` times the stages and that estimate; `checked`, if
    given, is called with the result's notes so far once every check that can refuse the input
    has passed (the slice's plane chosen), before the warnings and the analysis: it may raise to
    stop the audit before minutes of work (the CLI refuses a slice gate there when the data spans
    no plane).
    """
    if options is not None and kwargs:
        raise BadOption(f"give either options or keyword arguments, not both (got {', '.join(sorted(kwargs))})")
    # keyword arguments are the options typed: one that has no effect is said, as the CLI says it
    typed = options is None
    check_names(kwargs)
    # a keyword given as None is not given, as an option left off the command line: its default applies
    opts = options if options is not None else Options.from_given(kwargs)
    # `timeout` stops a call as it stops the CLI (TimeLimit); inside the CLI's own limit, which
    # holds over the outputs it writes as well, it adds none
    with time_limit(opts.timeout):
        return _audit(model, opts, typed, progress, warn, notify, clock, checked)


def _audit(model, opts: Options, typed: bool, progress, warn, notify, clock, checked) -> AuditResult:
    """audit() once its options are set; `typed`: they came as keyword arguments."""
    t_start = clock()
    timing: dict[str, float] = {}
    imported = import_for_audit(model, opts, None if isinstance(model, ImportedModel) else import_check_rows(opts.data, opts.max_file_size))
    timing["import_s"] = imported.import_s
    net = imported.network
    probes = build_probes(net.input_shape, opts)
    settings = assemble.settings(opts, str(net.device.type), probes)
    notes = assemble.probe_notes(probes, opts, net.input_shape)
    # --- reference frame: labels are read before minutes of work, so a bad file fails first
    if opts.labels is not None and probes.data_rows is None:
        raise BadOption("--labels needs --data: one label per data row")
    label_rows = load_labels(opts.labels, probes.data_rows, opts.max_file_size) if opts.labels is not None else None
    # --- end reference frame

    a, b = probes.segments
    lengths = segment_lengths(a, b)
    seg_a, seg_b, at = _to_tensor(a), _to_tensor(b), _to_tensor(probes.points)
    method = distance_settings(opts, net, settings, notes)
    unused = ineffective(opts, exact_distance=method.name == "exact", input_size=math.prod(net.input_shape)) if typed else []
    plane = None
    if opts.slice and has_plane(net):
        plane = choose_plane(net, opts, probes.rows, probes.synthetic, notes)  # (a bad points file fails first)
    elif opts.slice:
        notes.append(NO_PLANE_NOTE)
    if checked is not None:
        checked(list(notes))
    for message in [*unused, *probes.warnings] if warn is not None else []:  # after the checks that refuse data
        warn(message)
    if notify is not None:
        loops = None
        if probes.loops:
            first_a, first_b = probes.loops[0].edges
            loops = (_to_tensor(first_a), _to_tensor(first_b), sum(len(loop.vertices) for loop in probes.loops))
        est = estimate(net, (seg_a, seg_b), loops, at, opts.max_knots, opts.max_memory, clock, method.directions,
                       reference_copies=opts.init_reference, plane=plane.plane if plane else None, max_regions=opts.max_regions)
        message = long_run_message(est, settings["pairs"] is not None, settings["max_points"] is not None, opts.dtype, settings["device"])
        if message:
            notify(message)

    t0 = clock()
    bar = progress("segments", len(a)) if progress else None
    traces = trace_segments(net, seg_a, seg_b, max_knots=opts.max_knots, max_memory=opts.max_memory, progress=bar)
    seg_density, seg_dev = assemble.segment_records(traces, lengths, opts.keep_knots)
    bar = progress("loops", len(probes.loops)) if progress and probes.loops else None
    path_density, path_dev = [], []
    for loop in probes.loops:
        edges_a, edges_b = loop.edges
        edge_lengths = segment_lengths(edges_a, edges_b)
        edge_traces = trace_segments(
            net, _to_tensor(edges_a), _to_tensor(edges_b), max_knots=opts.max_knots, max_memory=opts.max_memory
        )
        turns = vertex_crossings(net, edges_a, edges_b, edge_traces, max_memory=opts.max_memory)
        path, dev = assemble.loop_records(edge_traces, edge_lengths, turns)
        path_density.append(path)
        path_dev.append(dev)
        if bar:
            bar(1)
    timing["density_s"] = clock() - t0

    t0 = clock()
    bar = progress("points", len(probes.points)) if progress else None
    dists = (
        boundary_distances(
            net, at, max_memory=opts.max_memory, progress=bar, directions=method.directions, seed=opts.seed
        )
        if len(probes.points)
        else []
    )
    timing["distance_s"] = clock() - t0

    slice_ = None
    if plane is not None:
        t0 = clock()
        slice_ = measure_slice(net, opts, plane, notes)
        timing["slice_s"] = clock() - t0

    assemble.check_finite(seg_density, path_density, seg_dev + path_dev, dists)
    notes += assemble.truncation_notes(seg_density, path_density, opts.max_knots)
    density = assemble.density_section(seg_density, path_density, net.neurons, notes)
    deviation = assemble.deviation_section(seg_dev, path_dev, seg_density, notes)
    distance = assemble.distance_section(dists, net.neurons, notes)
    distance.method, distance.directions, distance.relative_error = method.name, method.directions, method.relative_error
    result = AuditResult(
        model=assemble.model_info(imported),
        settings=settings,
        density=density,
        deviation=deviation,
        distance=distance,
        notes=notes,
        slice=slice_,
        timing=timing,
        environment=describe_environment(net.device, opts.dtype),
    )
    # --- reference frame (frame.py): init reference, capacity, class split, profile, Spearman test
    t0 = clock()
    add_reference_frame(result, imported, seg_a, seg_b, lengths, at, traces, opts, label_rows, probes.pair_rows,
                        distance_directions=method.directions)
    notes += frame_notes(result)
    notes += [n for n in unused if n not in notes]  # (last, where the CLI puts them)
    timing["reference_s"] = clock() - t0
    # --- end reference frame
    # a model imported before the call (the CLI does, to check gate paths first) still counts
    timing["total_s"] = clock() - t_start + (imported.import_s if isinstance(model, ImportedModel) else 0.0)
    return result
