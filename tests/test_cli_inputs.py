"""Input arrays through the CLI: layouts are declared, never guessed; odd data is named."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import ROOT, make_model
from clirun import run

MLP = ROOT / "sample_models" / "digits_mlp.onnx"
DIGITS = ROOT / "sample_models" / "digits_test.npy"
SHAPE = (3, 6, 6)  # a small colour-image model: channels first


def image_model(folder: Path, channels_last: bool = False) -> Path:
    """Conv 3->4 (3x3), ReLU, Gemm to 3 outputs; with `channels_last` the graph takes (6, 6, 3)
    images and transposes them first, as Keras exports do."""
    rng = np.random.default_rng(0)
    inits = {
        "w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "g": rng.standard_normal((4 * 4 * 4, 3)).astype(np.float32),
        "gb": rng.standard_normal(3).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["xc", "w", "b"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "g", "gb"], ["y"]),
    ]
    if channels_last:
        nodes.insert(0, helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2]))
        shape = [1, 6, 6, 3]
    else:
        nodes[0].input[0] = "x"
        shape = [1, *SHAPE]
    path = folder / ("hwc.onnx" if channels_last else "chw.onnx")
    onnx.save(make_model(nodes, shape, inits), str(path))
    return path


def images(n: int = 12, seed: int = 1) -> np.ndarray:
    """Channels-first float images (n, 3, 6, 6) in [0, 1]."""
    return np.random.default_rng(seed).uniform(0, 1, (n, *SHAPE))


def hwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -3, -1))


def audit_json(model, capsys, tmp_path, name, *args) -> dict:
    out = tmp_path / f"{name}.json"
    code, _, err = run([model, "--no-slice", *args, "--pairs", 5, "--max-points", 4, "--json", out, "-q"], capsys)
    assert code == 0, err
    return json.loads(out.read_text())


def measured(r: dict) -> dict:
    """The numbers of a result, without settings, notes and timing."""
    return {k: r[k] for k in ("density", "deviation", "distance")}


def test_channels_last_data_is_refused_naming_both_shapes(tmp_path, capsys):
    model = image_model(tmp_path)
    np.save(tmp_path / "nhwc.npy", hwc(images(10)))
    out = tmp_path / "never.json"
    code, _, err = run([model, "--no-slice", "--data", tmp_path / "nhwc.npy", "--json", out], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "(10, 6, 6, 3)" in err and "(N, 3, 6, 6)" in err and "--data-layout hwc" in err
    assert not out.exists()


def test_rows_of_the_right_size_but_another_shape_are_refused(tmp_path, capsys):
    model = image_model(tmp_path)
    np.save(tmp_path / "odd.npy", images(10).reshape(10, 6, 18))
    code, _, err = run([model, "--no-slice", "--data", tmp_path / "odd.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "(10, 6, 18)" in err and "(N, 3, 6, 6)" in err and "(N, 108)" in err
    assert "--data-layout hwc" not in err  # it does not look channels-last


def test_data_layout_hwc_is_transposed_to_the_model(tmp_path, capsys):
    model = image_model(tmp_path)
    x = images()
    np.save(tmp_path / "nchw.npy", x)
    np.save(tmp_path / "nhwc.npy", hwc(x))
    np.save(tmp_path / "flat_hwc.npy", hwc(x).reshape(len(x), -1))
    ref = audit_json(model, capsys, tmp_path, "chw", "--data", tmp_path / "nchw.npy")
    got = audit_json(model, capsys, tmp_path, "hwc", "--data", tmp_path / "nhwc.npy", "--data-layout", "hwc")
    flat = audit_json(model, capsys, tmp_path, "flat", "--data", tmp_path / "flat_hwc.npy", "--data-layout", "hwc")
    assert measured(got) == measured(ref) == measured(flat)
    assert ref["settings"]["data_layout"] == "chw" and got["settings"]["data_layout"] == "hwc"
    assert got["settings"]["layout"] == "chw"  # the model's layout matters once data is transposed
    assert any("read row-major as hwc images of shape (6, 6, 3)" in n for n in flat["notes"])
    # a row-major reshape of the channels-last rows, as earlier versions did, measures other numbers
    np.save(tmp_path / "scrambled.npy", hwc(x).reshape(x.shape))
    scrambled = audit_json(model, capsys, tmp_path, "scrambled", "--data", tmp_path / "scrambled.npy")
    assert measured(scrambled) != measured(ref)


def test_points_and_segments_follow_the_data_layout(tmp_path, capsys):
    model = image_model(tmp_path)
    x = images(8)
    seg = np.stack([x[:4], x[4:]], axis=1)
    np.save(tmp_path / "p.npy", x)
    np.save(tmp_path / "s.npy", seg)
    np.save(tmp_path / "p_hwc.npy", hwc(x))
    np.save(tmp_path / "s_hwc.npy", hwc(seg))
    ref = audit_json(model, capsys, tmp_path, "chw", "--points", tmp_path / "p.npy", "--segments", tmp_path / "s.npy")
    got = audit_json(model, capsys, tmp_path, "hwc", "--points", tmp_path / "p_hwc.npy",
                     "--segments", tmp_path / "s_hwc.npy", "--data-layout", "hwc")
    assert measured(got) == measured(ref)
    assert len(got["density"]["segments"]) == 4 and len(got["distance"]["points"]) == 8
    code, _, err = run([model, "--no-slice", "--segments", tmp_path / "s_hwc.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "(4, 2, 6, 6, 3)" in err and "--data-layout hwc" in err


def test_channels_first_data_for_a_channels_last_model(tmp_path, capsys):
    model = image_model(tmp_path, channels_last=True)
    x = images()
    np.save(tmp_path / "nchw.npy", x)
    np.save(tmp_path / "nhwc.npy", hwc(x))
    ref = audit_json(model, capsys, tmp_path, "own", "--data", tmp_path / "nhwc.npy")
    got = audit_json(model, capsys, tmp_path, "moved", "--data", tmp_path / "nchw.npy", "--layout", "hwc",
                     "--data-layout", "chw")
    assert measured(got) == measured(ref)
    assert got["settings"]["layout"] == "hwc" and got["settings"]["data_layout"] == "chw"


def test_baseline_reuses_the_data_layout(tmp_path, capsys):
    model = image_model(tmp_path)
    np.save(tmp_path / "nhwc.npy", hwc(images()))
    base = audit_json(model, capsys, tmp_path, "base", "--data", tmp_path / "nhwc.npy", "--data-layout", "hwc")
    again = audit_json(model, capsys, tmp_path, "again", "--baseline", tmp_path / "base.json")
    assert again["settings"]["data_layout"] == "hwc" and measured(again) == measured(base)
    code, _, err = run([model, "--no-slice", "--baseline", tmp_path / "base.json", "--data-layout", "chw", "--json",
                        tmp_path / "x.json"], capsys)
    assert code == 2 and "--data-layout chw conflicts with the baseline's data_layout hwc" in err


def test_image_rows_for_a_flat_model_are_flattened_with_a_note(tmp_path, capsys):
    rows = np.load(DIGITS)[:10]
    np.save(tmp_path / "img.npy", rows)
    np.save(tmp_path / "flat.npy", rows.reshape(10, 64))
    img = audit_json(MLP, capsys, tmp_path, "img", "--data", tmp_path / "img.npy")
    flat = audit_json(MLP, capsys, tmp_path, "flat", "--data", tmp_path / "flat.npy")
    assert measured(img) == measured(flat)
    assert any("data rows of shape (1, 8, 8) were flattened row-major" in n for n in img["notes"])
    assert not any("flattened" in n for n in flat["notes"])


def test_data_layout_on_flat_rows_is_a_usage_error(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.load(DIGITS)[:10].reshape(10, 64))
    code, _, err = run([MLP, "--no-slice", "--data", tmp_path / "flat.npy", "--data-layout", "hwc", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "--data-layout hwc describes image arrays (height, width, channels)" in err
    code, _, err = run([MLP, "--no-slice", "--data", tmp_path / "flat.npy", "--layout", "hwc", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and "--layout hwc describes a model whose input is one image (height, width, channels); " \
        "this model's input shape is (64,)" in err


@pytest.mark.parametrize(
    "kind, make, words",
    [
        ("uint8", lambda x: (x * 255).round().astype(np.uint8), "integer values (uint8, "),
        ("large", lambda x: x * 1000.0, "values as large as |x| = "),
        ("constant", lambda x: np.concatenate([x, np.full((2, *x.shape[1:]), 0.25)]), "2 of 14 rows that are one constant value"),
    ],
)
def test_suspicious_data_is_named_and_still_analysed(tmp_path, capsys, kind, make, words):
    model = image_model(tmp_path)
    np.save(tmp_path / f"{kind}.npy", make(images()))
    out, report = tmp_path / "r.json", tmp_path / "r.html"
    code, _, err = run([model, "--no-slice", "--data", tmp_path / f"{kind}.npy", "--pairs", 5, "--max-points", 4, "--json", out,
                        "-o", report, "-q"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("regionaudit: warning:")]
    assert len(warnings) == 1 and words in warnings[0] and "analysed as given" in warnings[0]
    r = json.loads(out.read_text())
    assert sum(words in n for n in r["notes"]) == 1
    assert len(r["density"]["segments"]) == 5
    assert words in html.unescape(report.read_text())  # the report's notes carry it too


def test_compare_warns_about_its_data_once(tmp_path, capsys):
    """Both models read the same data: its warning is said once, and each result keeps it."""
    model = image_model(tmp_path)
    np.save(tmp_path / "u8.npy", (images() * 255).round().astype(np.uint8))
    out = tmp_path / "c.json"
    code, _, err = run(["compare", model, model, "--data", tmp_path / "u8.npy", "--pairs", 5, "--max-points", 4, "-q",
                        "--json", out], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("regionaudit: warning:")]
    assert len(warnings) == 1 and "integer values (uint8, " in warnings[0]
    doc = json.loads(out.read_text())
    assert all(sum("integer values (uint8, " in n for n in doc[side]["notes"]) == 1 for side in ("a", "b"))


def test_ordinary_data_gets_no_warning(tmp_path, capsys):
    model = image_model(tmp_path)
    np.save(tmp_path / "ok.npy", images())
    code, _, err = run([model, "--no-slice", "--data", tmp_path / "ok.npy", "--pairs", 3, "--max-points", 2, "--json",
                        tmp_path / "r.json", "-q"], capsys)
    assert code == 0 and "warning" not in err


def test_a_csv_data_file_is_named_as_such(tmp_path, capsys):
    csv = tmp_path / "rows.csv"
    np.savetxt(csv, np.load(DIGITS)[:5].reshape(5, 64), delimiter=",")
    code, _, err = run([MLP, "--no-slice", "--data", csv, "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is a .csv file, not .npy or .npz" in err and "numpy.save" in err and "pickle" not in err


def _truncated(path):
    np.save(path, np.load(DIGITS)[:20])
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("make,message", [
    (_truncated, "is damaged or truncated"),
    (lambda path: path.write_bytes(b""), "is empty"),
    (lambda path: path.write_bytes(b"hello, world"), "is damaged or not written by numpy"),
    (lambda path: np.savez(path.with_suffix(".npz")), "is an .npz file that holds no array"),
    (lambda path: np.save(path, np.array(["a", "b"] * 20)), "numbers are needed (a float or integer array)"),
])
def test_a_broken_data_file_is_named_for_what_is_wrong(tmp_path, capsys, make, message):
    """A truncated .npy, and an empty or foreign file named .npy, are refused as what they are (not
    read as pickled objects, nor called "a .npy file, not .npy or .npz")."""
    path = tmp_path / "d.npy"
    make(path)
    path = path if path.exists() else path.with_suffix(".npz")
    code, _, err = run([MLP, "--no-slice", "--data", path, "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.json").exists()


def test_a_flat_input_names_its_shape_once_and_a_device_is_no_data_file(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.zeros((5, 63)))
    code, _, err = run([MLP, "--no-slice", "--points", tmp_path / "p.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and err.strip().endswith("the model's input shape (64,) needs (N, 64)")  # not "(N, 64) or (N, 64)"
    if Path(os.devnull).exists() and not Path(os.devnull).is_file():
        code, _, err = run([MLP, "--no-slice", "--data", os.devnull, "--json", tmp_path / "x.json"], capsys)
        assert code == 2 and "is not a regular file" in err and "not found" not in err


def test_labels_beyond_exact_integers_are_refused(tmp_path, capsys):
    """1e30 as a class index: before, a numpy cast warning and garbage classes with exit 0."""
    np.save(tmp_path / "y.npy", np.full(40, 1e30))
    np.save(tmp_path / "x.npy", np.load(DIGITS)[:40])
    code, _, err = run([MLP, "--no-slice", "--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--pairs", 3,
                        "--max-points", 2, "--json", tmp_path / "r.json"], capsys)
    assert code == 2 and err.strip().splitlines() == ["regionaudit: error: labels must be class indices; found 1e+30, beyond 2^53"]


CNN = ROOT / "sample_models" / "digits_cnn.onnx"
FLAT = ROOT / "sample_models" / "digits_test_flat.npy"


def test_compare_a_flat_model_with_an_image_model_on_the_same_points(tmp_path, capsys):
    np.save(tmp_path / "img.npy", np.load(DIGITS)[:12])
    np.save(tmp_path / "flat.npy", np.load(FLAT)[:12])
    common = ["--pairs", 5, "--max-points", 4, "-q"]  # as audit_json uses
    results = {}
    for name in ("img", "flat"):
        out = tmp_path / f"c_{name}.json"
        code, _, err = run(["compare", CNN, MLP, "--data", tmp_path / f"{name}.npy", *common, "--json", out], capsys)
        assert code == 0, err
        assert "regionaudit: note:" in err and "same points" in err
        results[name] = json.loads(out.read_text())
    c = results["img"]
    assert len(c["paired"]["density"]["differences"]) == 5
    assert any("same points" in n for n in c["a"]["notes"]) and any("same points" in n for n in c["b"]["notes"])
    # each side equals a plain audit of that model on the same rows
    alone_cnn = audit_json(CNN, capsys, tmp_path, "cnn", "--data", tmp_path / "img.npy")
    alone_mlp = audit_json(MLP, capsys, tmp_path, "mlp", "--data", tmp_path / "flat.npy")
    for side, alone in (("a", alone_cnn), ("b", alone_mlp)):
        for res in results.values():
            assert [s["regions"] for s in res[side]["density"]["segments"]] == [s["regions"] for s in alone["density"]["segments"]]
            assert [p["distance"] for p in res[side]["distance"]["points"]] == [p["distance"] for p in alone["distance"]["points"]]


def test_compare_still_refuses_two_image_shapes(tmp_path, capsys):
    chw, hwc_model = image_model(tmp_path), image_model(tmp_path, channels_last=True)
    code, _, err = run(["compare", chw, hwc_model, "--json", tmp_path / "c.json"], capsys)
    assert code == 2 and "cannot compare" in err and "(3, 6, 6)" in err and "(6, 6, 3)" in err and "scramble" in err
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(
    "args, note",
    [
        (["--segments", "s.npy", "--max-points", 7], "--max-points 7 has no effect: --segments alone gives no data rows for points."),
        (["--segments", "s.npy", "--pairs", 9], "--pairs 9 has no effect: --segments gives the segments."),
        (["--data", "x.npy", "--points", "p.npy", "--max-points", 2], "--max-points 2 has no effect: --points gives the points."),
        (["--points", "p.npy", "--pairs", 4], "--pairs 4 has no effect: --points alone gives no data rows to pair."),
        (["--data", "x.npy", "--loop-radius", 3], "--loop-radius 3.0 has no effect without --loops."),
        (["--data", "x.npy", "--loop-steps", 8], "--loop-steps 8 has no effect without --loops."),
        (["--data", "x.npy", "--layout", "hwc", "--data-layout", "hwc"], "--layout hwc has no effect: there are no --loops"),
        (["--data-layout", "hwc"], "--data-layout hwc has no effect: no --data, --points or --segments file was given."),
    ],
)
def test_an_option_without_effect_is_said(tmp_path, capsys, args, note):
    model = image_model(tmp_path)
    x = images(8)
    np.save(tmp_path / "x.npy", x)  # the model's own shape, whichever layout the options name
    np.save(tmp_path / "p.npy", x[:3])
    np.save(tmp_path / "s.npy", np.stack([x[:2], x[2:4]], axis=1))
    argv = [tmp_path / a if isinstance(a, str) and a.endswith(".npy") else a for a in args]
    out = tmp_path / "r.json"
    code, _, err = run([model, "--no-slice", *argv, "--json", out, "-q"], capsys)
    assert code == 0, err
    assert f"regionaudit: note: {note}" in err
    notes = json.loads(out.read_text())["notes"]
    assert sum(n.startswith(note) for n in notes) == 1


def test_options_that_matter_get_no_such_note(tmp_path, capsys):
    model = image_model(tmp_path)
    np.save(tmp_path / "x.npy", images(8))
    code, _, err = run([model, "--no-slice", "--data", tmp_path / "x.npy", "--pairs", 3, "--max-points", 2, "--data-layout", "chw",
                        "--json", tmp_path / "r.json", "-q"], capsys)
    assert code == 0 and "has no effect" not in err
    assert not any("has no effect" in n for n in json.loads((tmp_path / "r.json").read_text())["notes"])


def test_two_coordinate_points_are_not_called_constant(tmp_path, capsys):
    spirals = ROOT / "sample_models" / "spirals_mlp.onnx"
    np.save(tmp_path / "pts.npy", np.array([[0.5, 0.5], [0.25, -0.25], [0.0, 0.0], [1.0, 0.5]]))
    code, _, err = run([spirals, "--no-slice", "--data", tmp_path / "pts.npy", "--pairs", 3, "--max-points", 2, "--json",
                        tmp_path / "r.json", "-q"], capsys)
    assert code == 0 and "warning" not in err


def test_an_object_array_is_refused_as_such(tmp_path, capsys):
    """Object arrays need pickle, which is never used: said so, whether the file is read whole
    (--points) or memory-mapped for its first rows (--data), not as a damaged file."""
    arr = np.empty(3, dtype=object)
    arr[:] = [1, "a", None]
    np.save(tmp_path / "obj.npy", arr, allow_pickle=True)
    for option in ("--data", "--points"):
        code, _, err = run([MLP, "--no-slice", option, tmp_path / "obj.npy", "--json", tmp_path / "x.json"], capsys)
        assert code == 2 and "cannot be read without pickle (object arrays are refused)" in err, err
    assert not (tmp_path / "x.json").exists()


def test_a_missing_points_file_is_one_line_with_exit_2(tmp_path, capsys):
    code, _, err = run([MLP, "--no-slice", "--points", tmp_path / "nope.npy", "--json", tmp_path / "x.json"], capsys)
    assert code == 2 and err.strip().splitlines() == [f"regionaudit: error: points file {tmp_path / 'nope.npy'} not found"], err
    assert not (tmp_path / "x.json").exists()
