"""The benchmark command end to end on the tiny subset (no timing asserted), and its FLOP bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
import torch

import netfactory as nf
from regionaudit.analysis.density import trace_segments
from regionaudit.bench import measure

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--repeat", "1", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    rows = {(r["model"], r["measure"], r["device"]): r for r in doc["rows"]}
    dens = rows[("spirals_mlp", "density", "cpu")]
    assert dens["walk_agree"] is True and dens["regions"] == sum(dens["counts"]) > dens["segments"]
    assert dens["bound_s"] > 0 and dens["bound_ratio"] > 0 and dens["f32_agree"].endswith("/32")
    # every bound at the best rate of the whole run; over the products alone, a smaller bound
    best = doc["matmul_macs_per_s"]["cpu"]
    assert all(r["bound_s"] == r["bound_macs"] / best for r in doc["rows"] if r.get("bound_macs"))
    assert dens["products_ratio"] >= dens["bound_ratio"] and "x prod" in proc.stdout
    assert dens["peak_mib"] >= 0
    dist = rows[("spirals_mlp", "distance", "cpu")]
    assert dist["points"] == 32 and all(d > 0 for d in dist["distances"])
    sliced = rows[("spirals_mlp", "2-D slice", "cpu")]  # benchmarks/bench_slice.py, through the rows hook
    assert sliced["regions"] >= sliced["grid_regions"] > 1 and sliced["grid_agree"] is True
    assert sliced["grid"] == 200 and sliced["time_s"] > 0 and sliced["grid_over_exact"] > 0
    assert doc["environment"]["torch"] and doc["matmul_macs_per_s"]["cpu"] > 0
    assert "spirals_mlp" in proc.stdout and "x bound" in proc.stdout and "grid/exact" in proc.stdout
    assert list(tmp_path.iterdir()) == [out]  # nothing else written


def test_density_bound_counts_knots_present_at_each_node():
    net = nf.mlp(0, in_dim=4, widths=(10, 10))  # Gemm 4x10, Relu, Gemm 10x10, Relu, Gemm 10x3
    a, b = nf.segments(net, 1, 3)
    tr = trace_segments(net, a, b)[0]
    k1, k2 = (tr.knots_per_layer[net.nodes[i].name] for i in net.kink_ids)
    macs = [0, 40, 10, 100, 10, 30]  # input, dense, relu, dense, relu, dense
    present = [2, 2, 2 + k1, 2 + k1, 2 + k1 + k2, 2 + k1 + k2]
    assert measure.density_macs(net, [tr]) == sum(m * p for m, p in zip(macs, present))
    assert measure.distance_macs(net, 3) == 3 * 4 * sum(macs)
    # over the products alone, the ReLUs count nothing (see `measure.products_only`)
    products = [0, 40, 0, 100, 0, 30]
    assert measure.density_macs(net, [tr], products=True) == sum(m * p for m, p in zip(products, present))
    assert measure.distance_macs(net, 3, products=True) == 3 * 4 * sum(products)


def test_peak_memory_sees_a_large_allocation():
    with measure.peak_memory(torch.device("cpu")) as box:
        x = torch.ones(64 << 17, dtype=torch.float64)  # 64 MiB, touched
        time.sleep(0.1)  # held for 20 sampling periods: the sampler thread must get to run
        del x
    assert box[0] >= 48 << 20


def test_other_convnets_build_and_their_counts_are_the_walks():
    """The benchmark's conv nets of verification shapes: each builds (10 outputs), and on a piece
    of a segment three of them, one with max pools and one with depthwise convolutions, count
    what the reference walk counts."""
    from regionaudit.analysis.walk import walk_segment
    from regionaudit.bench.models import other_convnets, probes

    specs = {s.name: s for s in other_convnets()}
    assert len(specs) == 7
    for spec in specs.values():
        net = spec.load(torch.float64, "cpu")
        a, b, pts = probes(spec, net.input_shape)
        assert net.forward(pts).shape == (len(pts), 10)
        if spec.name in ("convsmall-mnist", "maxpool-mnist-8", "mobilenet-cifar"):
            end = a[:1] + 0.1 * (b[:1] - a[:1])
            regions = trace_segments(net, a[:1], end)[0].regions
            assert regions == walk_segment(net, a[0], end[0]).regions > 50


def test_exported_nets_import_and_their_counts_are_the_walks():
    """The benchmark's nets exported from torch read through the importer (10 outputs, equal to
    torch's to float32 rounding), and on a piece of a segment the ResNet stem (padded max pool), the generator
    (transposed convolutions), MobileNet v2 (ReLU6, depthwise convolutions of 2x2 images), ShuffleNet
    (channel shuffle), the bottleneck net and the Inception net (branches concatenated, an overlapping
    max pool) count what the reference walk counts."""
    from regionaudit.analysis.walk import walk_segment
    from regionaudit.bench import exported
    from regionaudit.bench.models import exported_nets, probes

    specs = {s.name: s for s in exported_nets()}
    assert len(specs) == len(exported.NETS) == 11
    for seed, (name, module, _, _) in enumerate(exported.NETS, start=11):
        spec = specs[name]
        net = spec.load(torch.float64, "cpu")
        a, b, pts = probes(spec, net.input_shape)
        ours = net.forward(pts)
        assert ours.shape == (len(pts), 10)
        with torch.no_grad():
            theirs = exported.build(module, seed).double()(pts)
        # the exporter folds batch norm into the convolutions in float32
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        if name in ("resnet-stem-64", "dcgan-generator", "mobilenetv2-64", "shufflenet-64", "bottleneck-cifar", "inception-cifar"):
            end = a[:1] + 0.2 * (b[:1] - a[:1])
            regions = trace_segments(net, a[:1], end)[0].regions
            assert regions == walk_segment(net, a[0], end[0]).regions > 20


def test_cpu_and_cuda_rows_pair_by_model_and_measure():
    """cpu/cuda is the CPU row's time over the CUDA row's; =cuda compares counts exactly and
    distances to 1e-6 relative (rows made by hand: no GPU needed)."""
    from regionaudit.bench.run import _pair_devices

    rows = [
        {"model": "m", "measure": "density", "device": "cpu", "time_s": 2.0, "counts": [3, 4]},
        {"model": "m", "measure": "density", "device": "cuda", "time_s": 0.5, "counts": [3, 5]},
        {"model": "m", "measure": "distance", "device": "cpu", "time_s": 1.0, "distances": [0.5, 2.0]},
        {"model": "m", "measure": "distance", "device": "cuda", "time_s": 0.1, "distances": [0.5 * (1 + 1e-8), 2.0]},
        {"model": "n", "measure": "distance", "device": "cpu", "time_s": 1.0, "distances": [0.5]},
        {"model": "n", "measure": "distance", "device": "cuda", "time_s": 1.0, "distances": [0.5 * (1 + 1e-4)]},
    ]
    _pair_devices(rows)
    assert rows[1]["cpu_over_cuda"] == 4.0 and rows[1]["cuda_agree"] is False
    assert rows[3]["cpu_over_cuda"] == 10.0 and rows[3]["cuda_agree"] is True
    assert rows[5]["cuda_agree"] is False
    assert "cpu_over_cuda" not in rows[0]


def test_benchmark_measures_a_users_onnx_file(tmp_path, capsys):
    """`--onnx FILE` measures that file alone: density and distance rows on the segments asked
    for, the first segment's count equal to the reference walk's, the distances the analysis's
    own, and no memory, audit or slice rows; each measure says on stderr when it is done."""
    from regionaudit.analysis.distance import boundary_distances
    from regionaudit.analysis.walk import walk_segment
    from regionaudit.bench.models import probes, user_files
    from regionaudit.bench.run import main
    from regionaudit.importer import import_model

    model = ROOT / "sample_models" / "digits_cnn.onnx"
    out = tmp_path / "bench.json"
    doc = main(["--onnx", str(model), "--pairs", "3", "--max-points", "2", "--fraction", "0.5", "--repeat", "1",
                "--cpu-only", "--json", str(out)])
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(doc["rows"]))
    assert [(r["model"], r["measure"]) for r in doc["rows"]] == [(str(model), "density"), (str(model), "distance")]
    dens, dist = doc["rows"]
    net = import_model(str(model)).network
    spec = user_files([model], pairs=3, points=2, fraction=0.5)[0]
    a, b, pts = probes(spec, net.input_shape)
    assert torch.allclose(b - a, 0.5 * (probes(user_files([model], 3, 2, 1.0)[0], net.input_shape)[1] - a))
    assert dens["walk_agree"] is True and dens["walk_segments"] == 1 and dens["segments"] == 3
    assert dens["counts"][0] == walk_segment(net, a[0], b[0]).regions > 2
    assert dens["counts"] == [t.regions for t in trace_segments(net, a, b)]
    assert dens["bound_ratio"] > 0 and dens["f32_agree"].endswith("/3")
    assert dist["distances"] == [d.distance for d in boundary_distances(net, pts)]
    captured = capsys.readouterr()
    assert str(model) in captured.out
    # each measure says so on stderr as it is done (a large model takes minutes)
    said = [line for line in captured.err.splitlines() if line.startswith("  ")]
    assert said == [f"  density: {dens['regions']} regions, best {dens['time_s']:.3g} s",
                    f"  distance: best {dist['time_s']:.3g} s"]
    assert list(tmp_path.iterdir()) == [out]


def test_benchmark_options_named_twice_add_up():
    """`--onnx a.onnx --onnx b.onnx` measures both files (a second option replacing the first
    would drop a.onnx without a word), and `--models` likewise."""
    from regionaudit.bench.run import parser

    args = parser().parse_args(["--onnx", "a.onnx", "--onnx", "b.onnx", "c.onnx"])
    assert args.onnx == [Path("a.onnx"), Path("b.onnx"), Path("c.onnx")]
    assert parser().parse_args(["--models", "resnet", "--models", "vgg"]).models == ["resnet", "vgg"]
    assert parser().parse_args([]).onnx is None


def test_benchmark_refuses_a_file_it_cannot_measure(tmp_path, capsys):
    """A missing or broken `--onnx` file is one line and exit code 2 before anything runs."""
    from regionaudit.bench.run import main

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    out = tmp_path / "bench.json"
    open_dims = tmp_path / "open.onnx"  # an input of dynamic dims: the message names the input, not the file
    nodes = [onnx.helper.make_node("Relu", ["x"], ["y"])]
    graph = onnx.helper.make_graph(nodes, "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", "H", 3])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]), open_dims)
    for path, says in ((tmp_path / "missing.onnx", "missing.onnx: no such file"),
                       (broken, f"{broken}: not a readable ONNX file"),
                       (open_dims, f"{open_dims}: input 'x' has dynamic dims (H,3, batch axis excluded)")):
        with pytest.raises(SystemExit) as exit_:
            main(["--onnx", str(path), "--json", str(out)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1
    # two files of one name: the line says which one it is
    (tmp_path / "good").mkdir()
    good = tmp_path / "good" / "broken.onnx"
    good.write_bytes((ROOT / "sample_models" / "spirals_mlp.onnx").read_bytes())
    with pytest.raises(SystemExit) as exit_:
        main(["--onnx", str(good), str(broken), "--json", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m regionaudit.bench: error: {broken}: not a readable ONNX file") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "good", "open.onnx"]


def test_benchmark_refuses_a_json_output_it_cannot_write_before_measuring(tmp_path, capsys, monkeypatch):
    """A `--json` in a missing folder, onto a folder, or onto an `--onnx` file is one line and exit
    code 2 before anything is measured; the model named is left as it was."""
    from regionaudit.bench.run import Bench, main

    model = tmp_path / "model.onnx"
    model.write_bytes((ROOT / "sample_models" / "spirals_mlp.onnx").read_bytes())
    before = model.read_bytes()
    monkeypatch.setattr(Bench, "density", lambda *a, **k: pytest.fail("measured before the output was checked"))
    for out, says in ((tmp_path / "missing" / "bench.json", "does not exist"),
                      (tmp_path, "it is a folder"),
                      (model, f"--json {model} would overwrite the model {model}")):
        with pytest.raises(SystemExit) as exit_:
            main(["--onnx", str(model), "--pairs", "1", "--max-points", "1", "--repeat", "1", "--cpu-only",
                  "--json", str(out)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_model_that_fails_keeps_the_others_rows(tmp_path, monkeypatch, capsys):
    """A measure's error is reported (its traceback, a FAILED line, `failed` in the JSON, exit 1);
    every other row, the same model's other measure included, is still measured and written."""
    from regionaudit.bench.run import Bench, main

    good, bad = ROOT / "sample_models" / "spirals_mlp.onnx", ROOT / "sample_models" / "digits_mlp.onnx"
    density = Bench.density

    distance = Bench.distance

    def broken(self, spec, device, compare):
        if spec.name == str(bad):
            raise RuntimeError("shape mismatch")
        return density(self, spec, device, compare)

    def broken_distance(self, spec, device):
        if spec.name == str(good):
            raise ValueError("no tangent")
        return distance(self, spec, device)

    monkeypatch.setattr(Bench, "density", broken)
    monkeypatch.setattr(Bench, "distance", broken_distance)
    out = tmp_path / "bench.json"
    with pytest.raises(SystemExit) as exit_:
        main(["--onnx", str(bad), str(good), "--pairs", "2", "--max-points", "2", "--repeat", "1", "--cpu-only",
              "--json", str(out)])
    assert exit_.value.code == 1
    doc = json.loads(out.read_text())
    assert doc["failed"] == [{"model": str(bad), "measure": "density", "device": "cpu", "error": "RuntimeError: shape mismatch"},
                             {"model": str(good), "measure": "distance", "device": "cpu", "error": "ValueError: no tangent"}]
    assert [(r["model"], r["measure"]) for r in doc["rows"]] == [(str(bad), "distance"), (str(good), "density")]
    captured = capsys.readouterr()
    assert f"FAILED {bad} density on cpu: RuntimeError: shape mismatch" in captured.out and "Traceback" in captured.err


def test_onnx_options_are_checked_together(capsys):
    """--onnx with --quick or --models, or its own options without it, is a usage error (2)."""
    from regionaudit.bench.run import main

    model = str(ROOT / "sample_models" / "spirals_mlp.onnx")
    for argv, says in ((["--onnx", model, "--quick"], "--quick and --models pick built-in models"),
                       (["--onnx", model, "--models", "mlp"], "--quick and --models pick built-in models"),
                       (["--quick", "--pairs", "3"], "--pairs applies to the files of --onnx only"),
                       (["--fraction", "0.5"], "--fraction applies to the files of --onnx only")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_threads_and_repeat_below_one_are_usage_errors(capsys):
    """--threads, --repeat and the memory row's sawtooth options take whole numbers >= 1: one line and exit code 2, not torch's
    traceback after the import (--threads -1) or a repeat count that is silently not honoured."""
    from regionaudit.bench.run import main

    model = str(ROOT / "sample_models" / "spirals_mlp.onnx")
    for argv, says in ((["--threads", "-1"], "argument --threads: '-1' is not a whole number >= 1"),
                       (["--threads", "0"], "argument --threads: '0' is not a whole number >= 1"),
                       (["--repeat", "0"], "argument --repeat: '0' is not a whole number >= 1"),
                       (["--sawtooth-depth", "-2"], "argument --sawtooth-depth: '-2' is not a whole number >= 1"),
                       (["--sawtooth-memory", "0"], "argument --sawtooth-memory: '0' is not a whole number >= 1")):
        with pytest.raises(SystemExit) as exit_:
            main(["--onnx", model, "--cpu-only", *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and says in err and "Traceback" not in err


def test_a_hard_link_names_the_same_file(tmp_path):
    """A hard link is the file it links (its device and inode), as a symbolic link is; a copy
    is another file."""
    from regionaudit.bench.models import distinct_files

    model = tmp_path / "m.onnx"
    model.write_bytes((ROOT / "sample_models" / "spirals_mlp.onnx").read_bytes())
    hard, soft, copy = tmp_path / "hard.onnx", tmp_path / "soft.onnx", tmp_path / "copy.onnx"
    os.link(model, hard)
    soft.symlink_to(model)
    copy.write_bytes(model.read_bytes())
    kept, again = distinct_files([model, hard, soft, copy, tmp_path / "missing.onnx"])
    assert kept == [model, copy, tmp_path / "missing.onnx"]
    assert again == [(hard, model), (soft, model)]


def test_a_file_named_twice_is_measured_once(tmp_path, capsys):
    """The same `--onnx` file under two spellings is measured once, under its first, and the
    second is listed as skipped with the reason."""
    from regionaudit.bench.run import main

    model = ROOT / "sample_models" / "spirals_mlp.onnx"
    again = model.parent / "." / model.name
    out = tmp_path / "bench.json"
    doc = main(["--onnx", str(model), str(again), "--pairs", "1", "--max-points", "1", "--repeat", "1",
                "--cpu-only", "--json", str(out)])
    assert [(r["model"], r["measure"]) for r in doc["rows"]] == [(str(model), "density"), (str(model), "distance")]
    assert {"model": str(again), "reason": f"the same file as {model}"} in doc["skipped"]
    assert f"skipped {again}: the same file as {model}" in capsys.readouterr().out
