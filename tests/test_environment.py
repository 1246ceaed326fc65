"""The environment in the result, the baseline warning, thread-count invariance and the
approximate-distance label, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from regionaudit.analysis.density import trace_segments
from clirun import run
from regionaudit.environment import describe, differences, environment_warning
from regionaudit.importer import import_model
from regionaudit.probes import random_pairs

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
CNN = SAMPLES / "digits_cnn.onnx"
DIGITS = SAMPLES / "digits_test.npy"


def test_describe_names_versions_device_dtype_threads():
    env = describe("cpu", "float32")
    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"].startswith(torch.__version__.split("+")[0])
    assert env["device"] == "cpu" and env["dtype"] == "float32"
    assert env["threads"] == torch.get_num_threads()
    assert env["numpy"] == np.__version__
    assert differences(env, dict(env)) == []
    assert differences(env, {**env, "threads": env["threads"] + 1}) == [f"threads {env['threads'] + 1} -> {env['threads']}"]
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert differences(env, {**env, "cpu_capability": "AVX2"}) == [f"cpu_capability AVX2 -> {env['cpu_capability']}"]
    assert environment_warning(env, None) is None  # a baseline from before environments were recorded


def test_result_environment_and_baseline_warning(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, np.load(DIGITS)[:8])
    base = tmp_path / "base.json"
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 3, "--max-points", 2, "-q", "--json", base], capsys)
    assert code == 0, err
    env = json.loads(base.read_text())["environment"]
    assert env["device"] == "cpu" and env["dtype"] == "float64" and env["threads"] >= 1
    assert env["onnxruntime"] and env["onnx"] and env["torch"]
    # the same environment: no warning
    code, _, err = run([CNN, "--no-slice", "--data", data, "-q", "--json", tmp_path / "a.json", "--baseline", base], capsys)
    assert code == 0 and "environment" not in err
    # a baseline from another torch build: one warning line, the run still passes
    doc = json.loads(base.read_text())
    doc["environment"]["torch"] = "0.0.1"
    base.write_text(json.dumps(doc))
    code, _, err = run([CNN, "--no-slice", "--data", data, "-q", "--json", tmp_path / "a.json", "--baseline", base], capsys)
    lines = [line for line in err.splitlines() if "environment" in line]
    assert code == 0 and len(lines) == 1
    assert lines[0].startswith("warning:") and f"torch 0.0.1 -> {env['torch']}" in lines[0]


def test_region_counts_identical_at_one_and_two_threads():
    net = import_model(str(SAMPLES / "digits_resnet.onnx")).network
    rows = torch.from_numpy(np.load(DIGITS).astype(np.float64))
    i, j = random_pairs(len(rows), 6, seed=3)
    before = torch.get_num_threads()
    try:
        counts = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            traces = trace_segments(net, rows[i], rows[j])
            counts[threads] = [(tr.regions, tr.knots_per_layer) for tr in traces]
    finally:
        torch.set_num_threads(before)
    assert counts[1] == counts[2]
    assert sum(c[0] for c in counts[1]) > 6


def test_approx_distance_is_labelled(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, np.load(DIGITS)[:8])
    out, card, html = tmp_path / "r.json", tmp_path / "card.md", tmp_path / "r.html"
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 2, "--max-points", 3, "-q", "--distance", "approx",
                        "--distance-directions", 32, "--json", out, "--card", card, "-o", html], capsys)
    assert code == 0, err
    r = json.loads(out.read_text())
    assert r["settings"]["distance"] == "approx" and r["settings"]["distance_directions"] == 32
    assert r["distance"]["method"] == "approx" and r["distance"]["directions"] == 32
    assert r["distance"]["relative_error"] == pytest.approx(0.5571, abs=1e-4)  # √(32 / q) - 1, q the χ²_32 quantile at 0.135 %
    assert any("approximate" in n and "32 seeded Gaussian projections" in n for n in r["notes"])
    assert "approximate: 32 Gaussian projections, ±56 % (3σ)" in card.read_text()
    assert "Approximate distance" in html.read_text()
    # the default (auto) on an 8x8 input is exact
    code, _, err = run([CNN, "--no-slice", "--data", data, "--pairs", 2, "--max-points", 3, "-q", "--json", out], capsys)
    r = json.loads(out.read_text())
    assert code == 0 and r["settings"]["distance"] == "auto" and r["distance"]["method"] == "exact"
    assert r["distance"]["directions"] is None and r["distance"]["relative_error"] is None
