"""The reference frame: re-initialised copies, `reference.init`, ratio to init, labels, capacity in results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from regionaudit import ir
from regionaudit.api import audit, import_for_audit
from regionaudit.options import Options
from regionaudit.errors import BadData, BadOption
from regionaudit.reinit import fan_in, reinitialise
from netfactory import Builder

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
DIGITS = SAMPLES / "digits_test.npy"
LABELS = SAMPLES / "digits_test_labels.npy"


def _big_net() -> tuple[ir.Network, list[str]]:
    """Wide dense and conv layers, a batch-norm-like Scale and an input normalisation Scale."""
    g = Builder((3, 16, 16), 0)
    x = g._add(ir.Scale("norm/Sub", (0,), (3, 16, 16), mul=torch.full((3, 1, 1), 2.0, dtype=torch.float64),
                        add=torch.full((3, 1, 1), -0.5, dtype=torch.float64)))
    x = g.conv(x, 64, 3, pad=1)
    x = g.scale(x)
    x = g.relu(x)
    x = g.avgpool(x, 2, 2)
    x = g.flatten(x)
    x = g.relu(g.dense(x, 256))
    out = g.dense(x, 10)
    net = g.network(out)
    ops = ["", "Sub", "Conv", "BatchNormalization", "Relu", "AveragePool", "Flatten", "Gemm", "Relu", "Gemm"]
    return net, ops


def test_reinitialised_network_keeps_structure_and_has_the_stated_statistics():
    net, ops = _big_net()
    copy = reinitialise(net, ops, [0, 13, 0])
    assert [type(n) for n in copy.nodes] == [type(n) for n in net.nodes]
    assert [n.shape for n in copy.nodes] == [n.shape for n in net.nodes]
    assert [n.inputs for n in copy.nodes] == [n.inputs for n in net.nodes]
    for old, new in zip(net.nodes, copy.nodes):
        if isinstance(new, (ir.MatMul, ir.Conv)):
            w = new.weight
            assert w.shape == old.weight.shape and not torch.equal(w, old.weight)
            var = 2.0 / fan_in(new)
            n = w.numel()
            # sample variance of n normals: standard error var * sqrt(2 / n); allow 5 of them
            assert abs(float(w.var()) - var) < 5 * var * math.sqrt(2 / n)
            assert abs(float(w.mean())) < 5 * math.sqrt(var / n)
            b = new.bias
            assert abs(float(b.var()) - 1e-6) < 5 * 1e-6 * math.sqrt(2 / b.numel()) + 1e-7
        elif isinstance(new, ir.Scale) and new.name.startswith("BatchNormalization"):
            assert torch.equal(new.mul, torch.ones_like(old.mul)) and torch.equal(new.add, torch.zeros_like(old.add))
        elif isinstance(new, ir.Scale):  # input normalisation is preprocessing: kept
            assert torch.equal(new.mul, old.mul) and torch.equal(new.add, old.add)
        elif isinstance(new, ir.AvgPool):
            assert torch.equal(new.divisor, old.divisor)
    # the original is untouched, and the same seed gives the same weights
    again = reinitialise(net, ops, [0, 13, 0])
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(copy.nodes, again.nodes) if isinstance(a, (ir.MatMul, ir.Conv)))
    other = reinitialise(net, ops, [0, 13, 1])
    assert not torch.equal(other.nodes[2].weight, copy.nodes[2].weight)


def test_fan_in_of_each_weight_layout():
    right = ir.MatMul("r", (0,), (5,), weight=torch.zeros(7, 5))
    left = ir.MatMul("l", (0,), (5,), weight=torch.zeros(5, 7), weight_left=True)
    conv = ir.Conv("c", (0,), (4, 3, 3), weight=torch.zeros(4, 2, 3, 3), groups=1)
    assert fan_in(right) == 7 and fan_in(left) == 7 and fan_in(conv) == 18


@pytest.fixture(scope="module")
def mlp_audit():
    return audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, pairs=30, max_points=12)


def test_reference_init_on_the_same_probes(mlp_audit):
    r = mlp_audit
    ref = r.reference["init"]
    assert ref["copies"] == 2 and ref["segments"] == 20 and ref["points"] == 10
    assert len(ref["per_seed"]) == 2 and ref["recipe"]["seeds"] == [[0, 13, 0], [0, 13, 1]]
    for s in ref["per_seed"]:
        assert len(s["segments"]["regions"]) == 20 and len(s["points"]["distance"]) == 10
        # densities are regions over the audit's own segment lengths: the same segments
        for reg, dens, seg in zip(s["segments"]["regions"], s["segments"]["density"], r.density.segments):
            assert dens == pytest.approx(reg / seg.length)
    pooled = ref["pooled"]["density"]["summary"]
    assert pooled["count"] == 40
    # ratio: trained regions / mean init regions per segment, recomputed by hand
    ratios = [r.density.segments[i].regions / np.mean([s["segments"]["regions"][i] for s in ref["per_seed"]]) for i in range(20)]
    assert r.density.ratio_to_init["median"] == pytest.approx(float(np.median(ratios)))
    assert r.density.ratio_to_init["ci95_low"] <= r.density.ratio_to_init["median"] <= r.density.ratio_to_init["ci95_high"]
    # the init copy measured independently gives the same counts
    imported = import_for_audit(SAMPLES / "digits_mlp.onnx", Options())
    copy = reinitialise(imported.network, [n["op_type"] for n in imported.nodes], [0, 13, 1])
    from regionaudit.analysis.density import trace_segments
    from regionaudit.probes import build_probes

    probes = build_probes(imported.network.input_shape, Options(pairs=30, max_points=12, data=DIGITS))
    a, b = (torch.from_numpy(np.ascontiguousarray(x[:20], dtype=np.float64)) for x in probes.segments)
    assert [t.regions for t in trace_segments(copy, a, b)] == ref["per_seed"][1]["segments"]["regions"]


def test_init_reference_off_and_json_round_trip(mlp_audit):
    from regionaudit.result import AuditResult

    off = audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, pairs=30, max_points=12, init_reference=0)
    assert off.reference is None and off.density.ratio_to_init is None
    # everything else is the same measurement
    assert [s.regions for s in off.density.segments] == [s.regions for s in mlp_audit.density.segments]
    d = json.loads(mlp_audit.to_json())
    assert "capacity" in d and "reference" in d and d["density"]["ratio_to_init"]["median"] > 0
    assert AuditResult.from_dict(d).to_dict() == d
    from regionaudit.report.html import render_html

    html = render_html(off)
    assert "No initialisation reference was measured (--init-reference 0)." in html
    assert "at init " not in html and "serra2018_upper" in html


def test_every_summary_has_an_interval(mlp_audit):
    d = mlp_audit.to_dict()
    found = []

    def walk(x, path):
        if isinstance(x, dict):
            if "median" in x and "count" in x:
                found.append(path)
                assert "ci95_low" in x and "ci95_high" in x, path
                if x["count"] >= 2:
                    assert x["ci95_low"] <= x["median"] <= x["ci95_high"], path
            for k, v in x.items():
                walk(v, f"{path}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")

    walk(d, "")
    assert ".density.summary" in found and ".reference.init.pooled.distance.summary" in found
    sp = mlp_audit.deviation.spearman
    assert sp["rho"] == pytest.approx(mlp_audit.deviation.spearman_density) and 0 <= sp["p_value"] <= 1


def test_labels_change_only_the_split(tmp_path, mlp_audit):
    labelled = audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, labels=LABELS, pairs=30, max_points=12)
    a, b = mlp_audit.to_dict(), labelled.to_dict()
    strip = lambda d: {k: v for k, v in d.items() if k not in ("by_class",)}  # noqa: E731
    assert [strip(s) | {"same_class": None} for s in a["density"]["segments"]] == [
        strip(s) | {"same_class": None} for s in b["density"]["segments"]]
    for key in ("summary", "per_length", "knots_per_layer", "ratio_to_init"):
        assert a["density"][key] == b["density"][key]
    assert a["distance"] == b["distance"] and a["deviation"]["summary"] == b["deviation"]["summary"]
    assert a["reference"] == b["reference"]
    # the tags follow the labels of the two data rows
    from regionaudit.probes import random_pairs

    y = np.load(LABELS)
    i, j = random_pairs(len(y), 30, 0)
    assert [s.same_class for s in labelled.density.segments] == [bool(y[p] == y[q]) for p, q in zip(i, j)]
    split = labelled.density.by_class
    assert split["source"] == "labels" and mlp_audit.density.by_class["source"] == "predicted"
    assert split["same_class"]["count"] + split["different_class"]["count"] == 30
    same = [s.regions for s in labelled.density.segments if s.same_class]
    assert split["same_class"]["summary"]["median"] == pytest.approx(float(np.median(same)))
    assert labelled.settings["labels"] == str(LABELS)


def test_bad_labels_are_refused(tmp_path):
    short = tmp_path / "short.npy"
    np.save(short, np.zeros(5, dtype=np.int64))
    with pytest.raises(BadData, match="labels has 5 entries"):
        audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, labels=short, pairs=2, max_points=2, init_reference=0)
    frac = tmp_path / "frac.npy"
    np.save(frac, np.full(300, 0.5))
    with pytest.raises(BadData, match="integers"):
        audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, labels=frac, pairs=2, max_points=2, init_reference=0)
    with pytest.raises(BadOption, match="--labels needs --data"):
        audit(SAMPLES / "digits_mlp.onnx", labels=LABELS, pairs=2, max_points=2, init_reference=0)


def test_profile_knot_layers_match_the_counts(mlp_audit):
    p = mlp_audit.density.profile
    seg = mlp_audit.density.segments[p["segment"]]
    assert len(p["t"]) == seg.regions + 1
    counts = {k: p["knot_layers"].count(k) for k in set(p["knot_layers"])}
    assert counts == {k: v for k, v in seg.knots_per_layer.items() if v}


def test_a_float32_audit_of_a_max_pool_net_profiles_its_knots():
    """The profile's rounding bounds are the float type's own: a float64 bound (1e300) does not fit
    float32, and the audit of every net with a max pool stopped there."""
    r = audit(SAMPLES / "digits_resnet.onnx", data=DIGITS, pairs=4, max_points=2, init_reference=0, slice=False,
              dtype="float32")
    assert r.environment["dtype"] == "float32"
    p = r.density.profile
    seg = r.density.segments[p["segment"]]
    counts = {k: p["knot_layers"].count(k) for k in set(p["knot_layers"])}
    assert counts == {k: v for k, v in seg.knots_per_layer.items() if v}
    assert any(k.startswith("MaxPool") or "pool" in k.lower() for k in counts), counts


def test_capacity_in_the_audit(mlp_audit):
    cap = mlp_audit.capacity
    from regionaudit import capacity as C

    assert cap["log10_upper"] == pytest.approx(math.log10(C.serra2018([32, 32], 64)))
    assert cap["measured"]["max_segment_regions"] == max(s.regions for s in mlp_audit.density.segments)
    assert cap["measured"]["max_segment_regions"] <= 10 ** cap["line"]["log10_upper"]


def test_report_puts_every_headline_number_beside_init_and_interval(mlp_audit):
    import re

    from regionaudit.report.card import render_card
    from regionaudit.report.html import render_html

    html = render_html(mlp_audit)
    for key in ("regions", "distance", "deviation"):
        card = re.search(rf'id="metric-{key}".*?</div>\s*</div>', html, re.S).group(0)
        assert "95 % CI [" in card and "at init" in card, key
    assert 'id="reference"' in html and "serra2018_upper" in html and "Σ" in html
    assert "predicted classes" in html  # no labels given: the report says how classes were told apart
    for pid in ("density-hist", "knots-per-layer-unit", "segment-profile", "nearest-layer"):
        assert f'id="plot-{pid}"' in html
    assert html.count('class="reference-line"') == 3
    card = render_card(mlp_audit)
    assert "95 % CI" in card and "at init" in card and "Trained / init regions" in card


def test_segments_cut_short_are_left_out_of_the_ratio():
    r = audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, pairs=8, max_points=2, max_knots=4)
    ref = r.reference["init"]
    whole = [i for i in range(ref["segments"])
             if not r.density.segments[i].truncated and not any(s["segments"]["truncated"][i] for s in ref["per_seed"])]
    assert len(whole) < ref["segments"]  # the bound cut some segments short
    if whole:
        assert r.density.ratio_to_init["count"] == len(whole)
    else:
        assert r.density.ratio_to_init is None


def test_profile_credits_clip_knots_and_transposed_convs_are_reinitialised():
    """A Clip unit has two kinks (at lo and hi); the profile credits each knot as the density does."""
    from regionaudit.analysis.density import trace_segments
    from regionaudit.analysis.profile import segment_profile

    g = Builder((4,), 1)
    x = g.dense(0, 12)
    lo = torch.full((12,), -0.3, dtype=torch.float64)
    hi = torch.full((12,), 0.4, dtype=torch.float64)
    x = g._add(ir.Clip("Clip_2", (x,), (12,), lo=lo, hi=hi))
    x = g.relu(g.dense(x, 6))
    net = g.network(g.dense(x, 3))
    a = torch.full((1, 4), -3.0, dtype=torch.float64)
    b = torch.full((1, 4), 3.0, dtype=torch.float64)
    (tr,) = trace_segments(net, a, b)
    p = segment_profile(net, tr, 0)
    counts = {k: p["knot_layers"].count(k) for k in set(p["knot_layers"])}
    assert counts == {k: v for k, v in tr.knots_per_layer.items() if v} and counts.get("Clip_2", 0) > 12

    w = torch.zeros(8, 4, 3, 3, dtype=torch.float64)  # (C_in, C_out, k, k), stride 2
    ct = ir.ConvTranspose("up", (0,), (4, 9, 9), weight=w, bias=torch.zeros(4, dtype=torch.float64),
                          strides=(2, 2), pads=(0, 0, 0, 0), output_padding=(0, 0), dilations=(1, 1))
    net = ir.Network([ir.Input("input", (), (8, 4, 4)), ct], (8, 4, 4), (8, 4, 4), 1)
    copy = reinitialise(net, ["", "ConvTranspose"], 0)
    assert fan_in(ct) == pytest.approx(8 * 9 / 4)
    assert float(copy.nodes[1].weight.var()) == pytest.approx(2 / (8 * 9 / 4), rel=0.25)
    assert float(copy.nodes[1].bias.abs().max()) < 0.01


def test_a_single_output_model_splits_segments_by_the_output_sign(tmp_path):
    """A single output's class is its sign (as in the slice), not the argmax of one number,
    which would make every segment same-class."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, b1, w2 = rng.standard_normal((3, 8)), rng.standard_normal(8), rng.standard_normal((8, 1))
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n", 1])],
                              [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "reg.onnx"
    onnx.save(model, str(path))
    f = lambda x: np.maximum(x @ w1 + b1, 0) @ w2  # noqa: E731
    points = rng.standard_normal((400, 3)) * 3
    pos, neg = points[f(points)[:, 0] > 0.1], points[f(points)[:, 0] < -0.1]
    assert len(pos) >= 3 and len(neg) >= 3
    segments = np.stack([np.stack([pos[0], neg[0]]), np.stack([pos[1], pos[2]]), np.stack([neg[1], pos[0]]),
                         np.stack([neg[1], neg[2]])])
    np.save(tmp_path / "seg.npy", segments)
    result = audit(path, segments=tmp_path / "seg.npy", max_points=0, init_reference=0, slice=False)
    assert [s.same_class for s in result.density.segments] == [False, True, False, True]
    split = result.density.by_class
    assert split["source"] == "predicted" and split["different_class"]["count"] == 2
