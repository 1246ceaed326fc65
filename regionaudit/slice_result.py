"""The `slice` section of a result: plain data that round-trips through JSON.

The polygons themselves are written only with `--keep-polygons`; the report and the picture use
the `drawing` held in memory (an attribute, not a field, so `asdict` and the JSON leave it out).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class SliceDrawing:
    """What the picture needs, in plane coordinates (numpy, float64)."""

    polygons: list  # one (n_i, 2) array per region
    classes: np.ndarray  # (P,) predicted class per region
    edges: np.ndarray  # (E, 2, 2) region boundaries (each interior edge once per side)
    edge_layers: np.ndarray  # (E,) index into layer_names; -1 for the box
    layer_names: list[str]
    decision: np.ndarray  # (M, 2, 2) decision-boundary pieces
    points: np.ndarray  # (3, 2)
    point_classes: list[int]
    box: tuple[float, float, float, float]
    input_plane: bool  # axes are the input's own coordinates
    synthetic: bool = False
    color: str = "region"  # "region": neighbours apart; "class": by predicted class


@dataclass
class SliceResult:
    regions: int  # activation regions in the box (a lower bound when truncated)
    truncated: bool
    box: dict  # centre, axes, half_width; or xmin, xmax, ymin, ymax for a 2-D input
    area: dict | None  # summary over region areas
    regions_per_unit_area: float | None
    boundary_length: float  # total length of region boundaries inside the box
    boundary_length_per_layer: dict[str, float | None]  # kink node name -> length of boundary it made (null: the slice stopped before it split)
    decision_boundary: dict  # pieces (segments inside regions), length
    classes: dict[str, int]  # predicted class -> regions
    points: list[list[float]]  # the three points' plane coordinates
    point_classes: list[int]
    point_rows: list[int] | None  # data rows the points are (None: --slice-points)
    source: str  # "data", "synthetic" or "file"
    polygons: list[dict] | None = None  # per region, with --keep-polygons
    decision_segments: list[list[list[float]]] | None = None  # with --keep-polygons

    @classmethod
    def from_dict(cls, d: dict) -> "SliceResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def drawing(self) -> SliceDrawing | None:
        """The in-memory picture data, or one rebuilt from kept polygons (without layer colours)."""
        held = getattr(self, "_drawing", None)
        if held is not None or not self.polygons:
            return held
        polys = [np.asarray(p["vertices"], dtype=float) for p in self.polygons]
        edges = [np.stack([p, np.roll(p, -1, 0)], 1) for p in polys if len(p) >= 2]
        segs = np.asarray(self.decision_segments or np.zeros((0, 2, 2)), dtype=float).reshape(-1, 2, 2)
        all_edges = np.concatenate(edges) if edges else np.zeros((0, 2, 2))
        return SliceDrawing(
            polygons=polys,
            classes=np.asarray([p.get("class", 0) for p in self.polygons]),
            edges=all_edges,
            edge_layers=np.full(len(all_edges), -1),
            layer_names=[],
            decision=segs,
            points=np.asarray(self.points, dtype=float).reshape(-1, 2),
            point_classes=list(self.point_classes),
            box=_box_of(self.box, polys),
            input_plane="xmin" in self.box,
            synthetic=self.source == "synthetic",
        )

    def attach(self, drawing: SliceDrawing) -> "SliceResult":
        self._drawing = drawing
        return self


def _box_of(box: dict, polys: list) -> tuple[float, float, float, float]:
    if "xmin" in box:
        return box["xmin"], box["xmax"], box["ymin"], box["ymax"]
    h = box.get("half_width")
    if h is not None:
        return -h, h, -h, h
    allv = np.concatenate(polys)
    return float(allv[:, 0].min()), float(allv[:, 0].max()), float(allv[:, 1].min()), float(allv[:, 1].max())


def empty_slice() -> SliceResult:
    """Every field, for the catalogue of gateable paths."""
    return SliceResult(
        regions=0,
        truncated=False,
        box={"half_width": None},
        area=None,
        regions_per_unit_area=None,
        boundary_length=0.0,
        boundary_length_per_layer={},
        decision_boundary={"pieces": 0, "length": 0.0},
        classes={},
        points=[],
        point_classes=[],
        point_rows=None,
        source="data",
    )
