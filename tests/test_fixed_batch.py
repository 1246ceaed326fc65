"""A graph whose input declares a fixed batch of 2 is analysed as one joint input of both rows
(importer/signature.py): every layer then has that axis before its channels. Its regions along a
segment are those of the two rows' own segments through the batch-1 graph, knots merged; its
nearest boundary is the nearer of the two rows' (a boundary of one row leaves the other free)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from regionaudit.analysis._common import T_MERGE
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.analysis.walk import walk_segment
from regionaudit.importer import import_model


def _pool_net(path, batch: int, seed: int = 0) -> str:
    """Conv 3x3 (3 -> 4 channels, padded) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm to 5, on
    (batch, 3, 12, 12)."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float32), "W"),
        numpy_helper.from_array((rng.standard_normal(4) * 0.1).astype(np.float32), "b"),
        numpy_helper.from_array((rng.standard_normal((144, 5)) * 0.2).astype(np.float32), "G"),
        numpy_helper.from_array((rng.standard_normal(5) * 0.1).astype(np.float32), "g"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["m"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "G", "g"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return str(path)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fixed_batch")
    joint = import_model(_pool_net(folder / "joint.onnx", 2))
    single = import_model(_pool_net(folder / "single.onnx", 1))
    return joint, single, folder / "joint.onnx"


def test_the_joint_input_keeps_both_rows(nets):
    joint, single, _ = nets
    assert joint.network.input_shape == (2, 3, 12, 12) and single.network.input_shape == (3, 12, 12)
    assert joint.validation["max_rel_err"] < 1e-6  # against onnxruntime, max pool included
    assert joint.notes == ["input 'x' declares a fixed first axis of 2, not a batch axis (1 or dynamic): its 2 rows "
                           "are analysed together, as one input point"]
    assert single.notes == []


def test_regions_are_both_rows_knots_merged(nets):
    joint, single, _ = nets
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 2, 3, 12, 12, generator=gen, dtype=torch.float64), torch.randn(3, 2, 3, 12, 12, generator=gen, dtype=torch.float64)
    traces = trace_segments(joint.network, a, b)
    rows = [trace_segments(single.network, a[:, r], b[:, r]) for r in range(2)]
    for s, tr in enumerate(traces):
        t = torch.cat([rows[0][s].t, rows[1][s].t]).sort().values
        merged = 1 + int((t[1:] - t[:-1] >= T_MERGE).sum())  # knots, each end counted once
        assert tr.regions == merged - 1 > 20
    assert traces[0].regions == walk_segment(joint.network, a[0], b[0]).regions


def test_distance_is_the_nearer_rows(nets):
    joint, single, _ = nets
    pts = torch.randn(4, 2, 3, 12, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours = [d.distance for d in boundary_distances(joint.network, pts)]
    rows = [[d.distance for d in boundary_distances(single.network, pts[:, r])] for r in range(2)]
    assert ours == pytest.approx([min(x, y) for x, y in zip(*rows)], rel=1e-9)


def test_a_default_audit_runs_and_says_how_it_read_the_input(nets, tmp_path):
    """The whole audit (density, distance, the 2-D slice) on the command line; the import's note
    on stderr as well as in the JSON."""
    _, _, path = nets
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "regionaudit", str(path), "--pairs", "4", "--max-points", "4",
                           "--max-regions", "3000", "--init-reference", "0", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "regionaudit: note: input 'x' declares a fixed first axis of 2" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["model"]["input_shape"] == [2, 3, 12, 12] and doc["model"]["output_shape"][0] == 2 and any("fixed first axis" in n for n in doc["model"]["notes"])
    assert all(s["regions"] > 1 for s in doc["density"]["segments"]) and doc["slice"]["regions"] > 1
