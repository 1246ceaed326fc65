"""The reference frame of an audit: what each measured number is compared with.

After the exact analyzers have run, this adds to the result (DESIGN.md, "Reference frame"):
- `reference.init`: the same architecture re-initialised, on the same first segments and points,
  and `density.ratio_to_init` (trained regions / mean init regions, per segment);
- `capacity`: the theoretical bounds, and what the measurement implies beside them;
- the same-class / different-class split of segments, from `--labels` or the predicted classes;
- a profile of one representative segment (knots by layer over the top logits);
- Spearman ρ's interval and p-value.
"""

from __future__ import annotations

import numpy as np
import torch

from regionaudit import capacity as C
from regionaudit.analysis.profile import segment_profile
from regionaudit.analysis.stats import spearman_test, summary
from regionaudit.errors import BadData
from regionaudit.files import load_array
from regionaudit.options import LABELS_WITHOUT_PAIRS
from regionaudit.planes import predicted
from regionaudit.reference import init_reference, ratio_to_init
from regionaudit.result import reference_cut_short


def load_labels(path, n_rows: int, max_file_bytes: int | None = None) -> np.ndarray:
    """One integer class per data row."""
    y = load_array(path, "labels", max_file_bytes=max_file_bytes)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise BadData(f"labels must hold one integer per data row, shape (N,); got shape {tuple(y.shape)}")
    if len(y) != n_rows:
        raise BadData(f"labels has {len(y)} entries but the data has {n_rows} rows; give one label per row")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise BadData("labels must be integers (class indices); found non-integer values")
        if np.abs(y).max(initial=0) > 2**53:  # (beyond it a float holds no exact integer; int64 wraps)
            raise BadData(f"labels must be class indices; found {np.abs(y).max():g}, beyond 2^53")
    elif y.dtype.kind not in "iub":
        raise BadData(f"labels must be integers (class indices); found dtype {y.dtype}")
    return y.astype(np.int64)


def same_class(traces, labels: np.ndarray | None, rows) -> tuple[list[bool], str]:
    """Per segment: do its endpoints share a class? From the labels of their data rows when given,
    else from the model's predicted classes at the endpoints (the argmax of the logits; a single
    output's sign)."""
    if labels is not None and rows is not None:
        i, j = rows
        return [bool(labels[p] == labels[q]) for p, q in zip(i, j)], "labels"
    if not traces:
        return [], "predicted"
    ends = predicted(torch.stack([torch.stack([tr.outputs[0], tr.outputs[-1]]) for tr in traces]).flatten(0, 1)).reshape(-1, 2)
    return (ends[:, 0] == ends[:, 1]).tolist(), "predicted"


def class_split(result, tags: list[bool], source: str) -> None:
    d, v = result.density, result.deviation
    for seg, tag in zip(d.segments, tags):
        seg.same_class = tag
    split_d, split_v = {"source": source}, {"source": source}
    for key, want in (("same_class", True), ("different_class", False)):
        segs = [s for s, t in zip(d.segments, tags) if t is want]
        devs = [s for s, t in zip(v.segments, tags) if t is want]
        split_d[key] = {
            "count": len(segs),
            "summary": summary([s.regions for s in segs]),
            "per_length": summary([s.density for s in segs if s.density is not None]),
        }
        split_v[key] = {"count": len(devs), "summary": summary([s.norm for s in devs if s.norm is not None])}
    d.by_class, v.by_class = split_d, split_v


def representative(regions: list[int], limit: int, truncated: list[bool] | None = None) -> int | None:
    """The segment (among the first `limit`, which the init reference also measures) whose region
    count is closest to the median of all segments; one that --max-knots did not cut short where
    there is one (its profile is then the network's)."""
    if not regions:
        return None
    med = float(np.median(regions))
    head = range(min(len(regions), max(1, limit)))
    whole = [i for i in head if not (truncated and truncated[i])]
    return min(whole or head, key=lambda i: abs(regions[i] - med))


def add_reference_frame(result, imported, a: torch.Tensor, b: torch.Tensor, lengths, points: torch.Tensor,
                        traces, opts, labels: np.ndarray | None, rows, distance_directions: int | None = None) -> None:
    """Fill the reference-frame parts of `result` in place (see the module docstring)."""
    from regionaudit.reference import REFERENCE_SEGMENTS

    net = imported.network
    d, v = result.density, result.deviation
    regions = [s.regions for s in d.segments]
    limit = REFERENCE_SEGMENTS if opts.init_reference else len(regions)
    pick = representative(regions, limit, [s.truncated for s in d.segments])
    if pick is not None:
        d.profile = segment_profile(net, traces[pick], pick)
    if opts.init_reference:
        ref = init_reference(imported, a, b, lengths, points, opts.init_reference, opts.seed, pick,
                             max_knots=opts.max_knots, max_memory=opts.max_memory, directions=distance_directions)
        result.reference = {"init": ref}
        cut = reference_cut_short(ref, [s.truncated for s in d.segments])
        ratios = ratio_to_init(regions, ref, cut) if ref["segments"] else []
        d.ratio_to_init = summary(ratios) if ratios else None
    pairs = [(s.density, dv.norm) for s, dv in zip(d.segments, v.segments) if s.density is not None and dv.norm is not None]
    if pairs:
        v.spearman = spearman_test([p[0] for p in pairs], [p[1] for p in pairs])
    if traces:
        class_split(result, *same_class(traces, labels, rows))
    cap = C.capacity(net)
    cap["measured"] = C.measured(cap, result)
    result.capacity = cap


def frame_notes(result) -> list[str]:
    """Sentences the report and card need to read the reference frame right."""
    notes = []
    split = result.density.by_class if result.density.segments else None
    if split and split["source"] == "predicted" and (result.settings or {}).get("labels"):
        notes.append(LABELS_WITHOUT_PAIRS)
    elif split and split["source"] == "predicted":
        notes.append(
            "Same-class / different-class segments are told apart by the model's predicted classes at the "
            "endpoints (no --labels given)."
        )
    ref = (result.reference or {}).get("init")
    if ref:
        notes.append(
            f"Initialisation reference: {ref['copies']} re-initialisation{'' if ref['copies'] == 1 else 's'} of the same architecture "
            f"(He-normal weights, biases of variance 1e-6, batch norm set to identity) measured on {_first(ref)}."
        )
        cut = len(reference_cut_short(ref, [s.truncated for s in result.density.segments]))
        if cut:
            left = ("so density.ratio_to_init is undefined (null)" if cut == ref["segments"] else
                    "density.ratio_to_init leaves them out")
            notes.append(f"--max-knots cut short {cut} of the {ref['segments']} segments the initialisation reference measured, "
                         f"in the model or a copy: their counts are lower bounds, {left}.")
    return notes


def _first(ref: dict) -> str:
    """"the first 4 segments and 1 point", leaving out a kind that has none."""
    parts = [f"{n:,} {noun}" + ("" if n == 1 else "s") for n, noun in ((ref["segments"], "segment"), (ref["points"], "point")) if n]
    return "the first " + " and ".join(parts) if parts else "no segment and no point"
