"""The 2-D slice of an audit: choose the plane, partition it exactly, and turn the partition into
the `slice` section of the result (DESIGN.md, "2-D slices")."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from regionaudit import probes as P
from regionaudit.analysis.slices import Partition, decision_boundary, partition_plane, predicted_classes
from regionaudit.analysis.stats import summary
from regionaudit.errors import BadData
from regionaudit.files import load_array
from regionaudit.ir import Network
from regionaudit.planes import NoSpanningRows, SlicePlane, build_plane, classes_of
from regionaudit.slice_result import SliceDrawing, SliceResult

DEFAULT_MAX_REGIONS = 200_000
DEFAULT_SCALE = 1.25


def _points_file(path, input_shape, opts, notes: list[str]) -> np.ndarray:
    """The three points of --slice-points, read in --data-layout as data is, in the file's own
    type: `build_plane` judges their collinearity in its precision."""
    arr = load_array(path, "slice points", as_float=False, max_file_bytes=opts.max_file_size)
    P.check_size(arr, "slice points")
    rows = P.as_rows(arr, input_shape, "slice points", opts.data_layout, opts.layout, notes)
    if len(rows) != 3:
        raise BadData(f"--slice-points must hold exactly 3 points, found {len(rows)} in {path}")
    return rows


def activation_ids(part: Partition) -> list[str]:
    """sha1 of each region's activation pattern (every kink node's mask bits or window winners,
    in topological order): stable across runs and machines, unlike Python's hash()."""
    pats = part.patterns.cpu().numpy()
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in pats]


def _box(sp: SlicePlane) -> dict:
    if sp.input_plane:
        umin, umax, vmin, vmax = sp.plane.box
        return {"xmin": umin, "xmax": umax, "ymin": vmin, "ymax": vmax}
    return {
        "centre": [float(v) for v in sp.plane.origin.tolist()],
        "axes": [[float(v) for v in row] for row in sp.plane.axes.tolist()],
        "half_width": float(sp.half_width),
    }


SKIPPED_NOTE = "The 2-D slice is skipped: "  # how every note of a skipped slice starts
SKIPPED_HINT = ". Give three points with --slice-points P.npy to slice anyway."  # how a note of data that spans no plane ends
NO_PLANE_NOTE = (
    SKIPPED_NOTE + "the model's input has one element, so no plane runs through its input space "
    "(the density segments already lie on its input line)."
)


def has_plane(network: Network) -> bool:
    """Whether the input space holds a plane to slice: not for a model with a single input element."""
    return math.prod(network.input_shape) >= 2


def choose_plane(network: Network, opts, rows: np.ndarray | None, synthetic: bool, notes: list[str]) -> SlicePlane | None:
    """The slice's plane from `opts` (points file, scale, box) and the data rows; None, with a
    note, where the data holds no three rows that span a plane and no --slice-points were given
    (seeded Gaussian points would ignore the data's scale)."""
    points = _points_file(opts.slice_points, network.input_shape, opts, notes) if opts.slice_points else None
    source = "synthetic" if synthetic else "data"
    if rows is None or (synthetic and len(rows) < 3):
        rows = P.synthetic_rows(network.input_shape, 100, opts.seed)
        source = "synthetic"
    try:
        return build_plane(network, rows, source, opts.seed, opts.slice_scale, opts.slice_box, points)
    except NoSpanningRows as exc:
        notes.append(f"{SKIPPED_NOTE}{exc}{SKIPPED_HINT}")
        return None


def measure_slice(network: Network, opts, sp: SlicePlane, notes: list[str]) -> SliceResult:
    """The slice section: the plane `sp` (`choose_plane`) partitioned as `opts` bound it."""
    part = partition_plane(network, sp.plane, max_regions=opts.max_regions, max_memory=opts.max_memory)
    return slice_result(network, sp, part, bool(opts.keep_polygons), notes, getattr(opts, "slice_color", "region"))


def slice_result(
    network: Network, sp: SlicePlane, part: Partition, keep_polygons: bool, notes: list[str], color: str = "region"
) -> SliceResult:
    areas = part.polygons.areas().cpu().double().numpy()
    classes = predicted_classes(part).cpu().numpy()
    segs = decision_boundary(part).cpu().double().numpy()
    seg_len = np.linalg.norm(segs[:, 1] - segs[:, 0], axis=1) if len(segs) else np.zeros(0)
    names = network.kink_names
    ids = network.kink_ids
    edges, labels = part.polygons.edges()
    shift = np.asarray(part.centre, dtype=np.float64)
    edges = edges.cpu().double().numpy() + shift
    lut = {node_id: k for k, node_id in enumerate(ids)}
    edge_layers = np.asarray([lut.get(int(v), -1) for v in labels.cpu().tolist()], dtype=np.int64)
    polygons = part.vertices()
    point_classes = [int(c) for c in classes_of(network, sp.points)]
    per_layer = {k: None if v is None else float(v) for k, v in part.boundary_length.items()}
    known = [v for v in per_layer.values() if v is not None]  # (None: a layer the stopped slice never split)
    values = [float(a) for a in areas] + known + [float(seg_len.sum())]
    if not all(math.isfinite(v) for v in values):
        raise BadData("the slice overflowed float64 on this plane (an area or length is not finite); check the data's scale")
    counts = {str(c): int(n) for c, n in zip(*np.unique(classes, return_counts=True))}
    box_area = sp.plane.area
    if not math.isfinite(part.regions / box_area):
        raise BadData(f"the slice's box is too small for float64: {part.regions:,} regions over an area of {box_area:g} overflow")
    if part.truncated:
        notes.append(
            f"The 2-D slice reached --max-regions: its region count ({part.regions:,}) is a lower bound, and its "
            "areas, boundary lengths and decision boundary describe an unfinished partition; raise --max-regions "
            "to finish it."
        )
        unsplit = [k for k, v in per_layer.items() if v is None]
        if unsplit:
            notes.append(
                f"The 2-D slice stopped before {', '.join(unsplit)} split any region: their boundary lengths "
                "(slice.boundary_length_per_layer) are unknown, null rather than 0."
            )
    if sp.source == "synthetic":
        notes.append("No data was given: the 2-D slice goes through three seeded Gaussian points, not data.")
    result = SliceResult(
        regions=part.regions,
        truncated=part.truncated,
        box=_box(sp),
        area=summary([float(a) for a in areas]),
        regions_per_unit_area=part.regions / box_area,
        boundary_length=float(sum(known)),
        boundary_length_per_layer=per_layer,
        decision_boundary={"pieces": int(len(segs)), "length": float(seg_len.sum())},
        classes=counts,
        points=[[float(a), float(b)] for a, b in sp.uv],
        point_classes=point_classes,
        point_rows=sp.rows,
        source=sp.source,
    )
    if keep_polygons:
        act = activation_ids(part)
        result.polygons = [
            {"vertices": poly.tolist(), "area": float(a), "activation": h, "class": int(c)}
            for poly, a, h, c in zip(polygons, areas, act, classes)
        ]
        result.decision_segments = segs.tolist()
    drawing = SliceDrawing(
        polygons=polygons,
        classes=classes,
        edges=edges,
        edge_layers=edge_layers,
        layer_names=list(names),
        decision=segs,
        points=np.asarray(sp.uv, dtype=np.float64),
        point_classes=point_classes,
        box=sp.plane.box,
        input_plane=sp.input_plane,
        synthetic=sp.source == "synthetic",
        color=color,
    )
    return result.attach(drawing)

