"""`regionaudit.audit()` as a library call: probes, null semantics and memory budgets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import regionaudit
from regionaudit.errors import BadOption
from regionaudit.options import Options

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
RESNET = SAMPLES / "digits_resnet.onnx"
CNN = SAMPLES / "digits_cnn.onnx"
DIGITS = SAMPLES / "digits_test.npy"


def test_memory_budget_changes_no_count_and_values_only_in_rounding():
    calls: dict[str, list[int]] = {}

    def progress(stage, total):
        calls[stage] = []
        return calls[stage].append

    big = regionaudit.audit(RESNET, data=DIGITS, pairs=4, max_points=3, max_memory=2**30, slice=False)
    small = regionaudit.audit(RESNET, data=DIGITS, pairs=4, max_points=3, max_memory=2**22, progress=progress, slice=False)
    assert calls == {"segments": [1, 1, 1, 1], "points": [1, 1, 1]}  # the small budget really splits the work
    assert [s.regions for s in big.density.segments] == [s.regions for s in small.density.segments]
    assert [s.knots_per_layer for s in big.density.segments] == [s.knots_per_layer for s in small.density.segments]
    np.testing.assert_allclose([s.norm for s in big.deviation.segments], [s.norm for s in small.deviation.segments], rtol=1e-12)
    np.testing.assert_allclose([p.distance for p in big.distance.points], [p.distance for p in small.distance.points], rtol=1e-12)
    assert [p.unit for p in big.distance.points] == [p.unit for p in small.distance.points]


def test_truncated_segments_have_no_deviation():
    full = regionaudit.audit(CNN, data=DIGITS, pairs=5, max_points=0, slice=False)
    cut = regionaudit.audit(CNN, data=DIGITS, pairs=5, max_points=0, max_knots=40, slice=False)
    assert all(s.regions > 41 for s in full.density.segments)
    assert all(s.truncated and s.regions <= 41 for s in cut.density.segments)
    assert all(d.norm is None and d.per_output is None for d in cut.deviation.segments)
    assert cut.deviation.summary is None and cut.deviation.spearman_density is None
    assert any("deviation is undefined" in n for n in cut.notes)
    assert any("lower bounds" in n for n in cut.notes)


def test_explicit_segments_replace_the_pairs(tmp_path):
    rows = np.load(DIGITS)
    np.save(tmp_path / "s.npy", np.stack([rows[:3], rows[3:6]], axis=1))
    r = regionaudit.audit(CNN, data=DIGITS, segments=tmp_path / "s.npy", max_points=2, slice=False)
    assert len(r.density.segments) == 3
    assert r.settings["pairs"] is None and r.settings["max_points"] == 2
    assert r.settings["probes"].startswith("3 segments from") and "pairs" not in r.settings["probes"]


def test_zero_length_segments_are_noted(tmp_path):
    rows = np.load(DIGITS)[:1]
    np.save(tmp_path / "same.npy", np.repeat(rows, 4, axis=0))
    r = regionaudit.audit(CNN, data=tmp_path / "same.npy", pairs=3, max_points=1, slice=False)
    assert [s.regions for s in r.density.segments] == [1, 1, 1]
    assert r.density.per_length is None
    assert any("zero length" in n for n in r.notes)


def test_segments_of_tiny_length_keep_their_length(tmp_path):
    rows = np.load(DIGITS)[:3].astype(np.float64)
    ends = np.stack([np.zeros_like(rows), rows * 1e-300], axis=1)
    np.save(tmp_path / "tiny.npy", ends)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # (densities near 1e300 summarise without numpy's notices)
        r = regionaudit.audit(CNN, segments=tmp_path / "tiny.npy", slice=False, init_reference=0)
    expected = [1e-300 * float(np.sqrt(np.sum(row.astype(np.float64) ** 2))) for row in rows]
    np.testing.assert_allclose([s.length for s in r.density.segments], expected, rtol=1e-12)
    assert [s.regions for s in r.density.segments] == [1, 1, 1]
    np.testing.assert_allclose([s.density for s in r.density.segments], [1 / e for e in expected], rtol=1e-12)
    assert r.density.per_length is not None and not any("zero length" in n for n in r.notes)


def test_loops_from_synthetic_rows_or_points_and_fewer_than_asked(tmp_path):
    r = regionaudit.audit(CNN, pairs=2, max_points=0, loops=3, loop_steps=4, slice=False)
    assert r.settings["synthetic"] is True and len(r.density.paths) == 3
    np.save(tmp_path / "p.npy", np.load(DIGITS)[:2])
    r = regionaudit.audit(CNN, points=tmp_path / "p.npy", loops=3, loop_steps=4, slice=False)
    assert len(r.density.paths) == 2 and any("2 were measured" in n for n in r.notes)
    np.save(tmp_path / "s.npy", np.load(DIGITS)[None, :2])
    with pytest.raises(BadOption, match="--loops needs images"):
        regionaudit.audit(CNN, segments=tmp_path / "s.npy", loops=1, slice=False)


def test_no_units_gives_null_scaled_distance(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("MaxPool", ["m3"], ["p"], kernel_shape=[2]),
         helper.make_node("Reshape", ["m", "s"], ["m3"]), helper.make_node("Flatten", ["p"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([1, 1, 3], np.int64), "s")],
    )
    path = tmp_path / "maxpool_only.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    r = regionaudit.audit(path, pairs=3, max_points=3, slice=False)
    assert r.model.neurons == 0
    assert all(p.scaled is None for p in r.distance.points) and r.distance.scaled_summary is None
    assert any(p.distance is not None for p in r.distance.points)


def test_load_array_head_reads_only_the_first_rows(tmp_path):
    from regionaudit.errors import BadData
    from regionaudit.files import load_array

    rows = np.arange(24, dtype=np.float32).reshape(6, 4)
    rows[4, 1] = np.nan
    np.save(tmp_path / "r.npy", rows)
    head = load_array(tmp_path / "r.npy", head=2)
    assert head.dtype == np.float64 and head.tolist() == rows[:2].tolist()
    with pytest.raises(BadData, match="1 NaN"):
        load_array(tmp_path / "r.npy", head=5)
    with pytest.raises(BadData, match="1 NaN"):
        load_array(tmp_path / "r.npy")


def test_a_float32_audit_says_its_counts_can_differ_from_float64s():
    from regionaudit.assemble import FLOAT32_NOTE

    runs = {dtype: regionaudit.audit(CNN, data=DIGITS, pairs=2, max_points=1, slice=False, init_reference=0, dtype=dtype)
            for dtype in ("float64", "float32")}
    assert FLOAT32_NOTE in runs["float32"].notes
    assert FLOAT32_NOTE not in runs["float64"].notes
    assert runs["float32"].settings["dtype"] == "float32"


@pytest.mark.parametrize("key", ["points", "segments", "slice_points", "labels"])
def test_a_missing_or_folder_probe_file_is_bad_data(tmp_path, key):
    """A probe file is checked before it is hashed: a missing file or a folder is BadData, not
    open()'s FileNotFoundError or IsADirectoryError (an internal error, exit 3, at the command line)."""
    from regionaudit.errors import BadData

    what = key.replace("_", " ")
    extra = {"data": DIGITS} if key == "labels" else {}
    for path, says in ((tmp_path / "nope.npy", "not found"), (tmp_path, "is not a regular file")):
        with pytest.raises(BadData, match=f"^{what} file .* {says}"):
            regionaudit.audit(CNN, **{key: path}, **extra, pairs=2, max_points=1, init_reference=0)


def test_an_imported_model_is_refused_options_it_was_not_imported_with():
    """audit(import_model(path), dtype="float32") would run in float64 while its settings and
    environment said float32: options the model was not imported with are refused."""
    import torch

    from regionaudit.importer import import_model

    imported = import_model(CNN)
    for asked in ({"dtype": "float32"}, {"input_shape": (64,)}, {"output_name": "probs"}):
        name = next(iter(asked))
        with pytest.raises(BadOption, match=f"^{name} .* was asked, but the model given was imported with"):
            regionaudit.audit(imported, pairs=1, max_points=1, slice=False, init_reference=0, **asked)
    single = import_model(CNN, dtype=torch.float32)
    r = regionaudit.audit(single, data=DIGITS, pairs=2, max_points=1, slice=False, init_reference=0, dtype="float32",
                          input_shape=[1, 8, 8], output_name="logits")
    direct = regionaudit.audit(CNN, data=DIGITS, pairs=2, max_points=1, slice=False, init_reference=0, dtype="float32")
    assert r.settings["dtype"] == r.environment["dtype"] == "float32"
    assert [s.regions for s in r.density.segments] == [s.regions for s in direct.density.segments]
    assert r.distance.points[0].distance == direct.distance.points[0].distance


def test_keyword_options_without_effect_are_said_and_noted_as_the_cli_notes_them(tmp_path, capsys):
    """audit() with keyword arguments notes "--pairs 5 has no effect" and the like, and says them
    through `warn`, as the command line notes them in its JSON."""
    from clirun import run

    rows = np.load(DIGITS)
    np.save(tmp_path / "s.npy", np.stack([rows[:2], rows[2:4]], axis=1))
    said: list[str] = []
    r = regionaudit.audit(CNN, segments=tmp_path / "s.npy", pairs=5, loop_steps=8, max_points=None, slice=False,
                          init_reference=0, warn=said.append)
    expected = ["--pairs 5 has no effect: --segments gives the segments.", "--loop-steps 8 has no effect without --loops."]
    assert said == expected and r.notes[-2:] == expected
    code, _, _ = run([CNN, "--segments", tmp_path / "s.npy", "--pairs", 5, "--loop-steps", 8, "--no-slice",
                      "--init-reference", 0, "--json", tmp_path / "r.json", "--quiet"], capsys)
    assert code == 0 and json.loads((tmp_path / "r.json").read_text())["notes"] == r.notes
    # options given as an Options object are the caller's to explain (the CLI does)
    quiet = regionaudit.audit(CNN, options=Options(segments=tmp_path / "s.npy", pairs=5, slice=False, init_reference=0))
    assert not any("has no effect" in n for n in quiet.notes)


def test_a_keyword_timeout_stops_the_call_and_leaves_no_alarm_behind():
    """audit(timeout=...) stops the call as --timeout stops the command line, and leaves no alarm set."""
    import signal

    from regionaudit.errors import TimeLimit

    handler = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TimeLimit, match="took longer than --timeout 0.5 s"):
        regionaudit.audit(CNN, pairs=3000, max_points=0, slice=False, init_reference=0, timeout=0.5)  # (~15 s)
    assert signal.getsignal(signal.SIGALRM) == handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    done = regionaudit.audit(CNN, pairs=2, max_points=1, slice=False, init_reference=0, timeout=600)
    assert len(done.density.segments) == 2 and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_timeout_in_options_stops_the_call_too():
    """Options(timeout=...) passed as `options` stops the call as the keyword does."""
    import signal

    from regionaudit.errors import TimeLimit

    with pytest.raises(TimeLimit, match="took longer than --timeout 0.5 s"):
        regionaudit.audit(CNN, options=Options(pairs=3000, max_points=0, slice=False, init_reference=0, timeout=0.5))
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_limit_inside_another_adds_none_or_gives_the_outer_one_back():
    """Inside a limit that ends sooner (the command line's) an inner one adds no timer; inside a
    later one it runs its own and then puts the outer one back with what is left of it."""
    import signal
    import time

    from regionaudit.errors import TimeLimit
    from regionaudit.limits import time_limit

    with time_limit(100):
        with time_limit(200):
            assert 99 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100  # the outer one, untouched
        with pytest.raises(TimeLimit, match="--timeout 0.2 s"):
            with time_limit(0.2):
                time.sleep(5)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 99 < left < 100  # given back, less the time the inner one ran
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_misspelt_keyword_option_is_a_bad_option_naming_the_closest():
    """A notebook user's typo gets the project's error with the option meant, before any import,
    not Python's TypeError from the dataclass."""
    with pytest.raises(BadOption, match=r"unknown option 'pair': did you mean 'pairs'\?"):
        regionaudit.audit("no-such-model.onnx", pair=3)
    with pytest.raises(BadOption, match=r"unknown option 'given'"):  # (Options' own bookkeeping is no option)
        regionaudit.audit("no-such-model.onnx", given=frozenset())


def test_numpy_numbers_as_keyword_options_are_recorded_as_json_numbers():
    """pairs=np.int64(2) or slice_scale=np.float32(1.5) (values taken from arrays) run the audit and its
    JSON records them as plain numbers; a numpy boolean is a switch like True and False."""
    r = regionaudit.audit(CNN, data=DIGITS, pairs=np.int64(2), max_points=np.int32(1), seed=np.uint8(3),
                          slice_scale=np.float32(1.5), max_regions=np.int64(50), init_reference=np.int64(0),
                          keep_knots=np.bool_(True))
    s = json.loads(r.to_json())["settings"]
    assert (s["pairs"], s["max_points"], s["seed"], s["slice_scale"], s["max_regions"]) == (2, 1, 3, 1.5, 50)
    assert type(r.settings["pairs"]) is int and type(r.settings["slice_scale"]) is float
    assert len(r.density.segments) == 2 and r.density.segments[0].knots is not None
    off = regionaudit.audit(CNN, data=DIGITS, pairs=1, max_points=1, init_reference=0, slice=np.bool_(False))
    assert off.slice is None and off.settings["slice"] is False


def test_a_keyword_option_given_as_none_takes_its_default():
    """audit(max_points=None, seed=None, dtype=None) is the audit without them, as the command
    line without those options: 100 points (not every data row), seed 0, float64."""
    plain = regionaudit.audit(CNN, data=DIGITS, pairs=2, slice=False, init_reference=0)
    nones = regionaudit.audit(CNN, data=DIGITS, pairs=2, slice=False, init_reference=0, max_points=None, seed=None,
                              dtype=None, device=None, loops=None, max_regions=None)
    assert len(nones.distance.points) == len(plain.distance.points) == 100
    assert nones.settings == plain.settings and nones.settings["seed"] == 0 and nones.settings["dtype"] == "float64"
    assert [s.regions for s in nones.density.segments] == [s.regions for s in plain.density.segments]
    assert len(regionaudit.audit(CNN, data=DIGITS, pairs=None, max_points=1, slice=False, init_reference=0).density.segments) == 100


def test_a_model_that_is_not_a_path_is_a_bad_option():
    """audit(onnx.load(path)) or audit(model_bytes) is refused with the project's error saying what
    to pass, not an OSError from reading the model's text as a file name."""
    import onnx

    with pytest.raises(BadOption, match=r"not ModelProto: save it with onnx\.save\(\) and pass the file's path"):
        regionaudit.audit(onnx.load(CNN), pairs=1, max_points=1, slice=False, init_reference=0)
    with pytest.raises(BadOption, match="must be the path of an .onnx file .* not bytes$"):
        regionaudit.audit(CNN.read_bytes(), pairs=1, max_points=1, slice=False, init_reference=0)
    assert len(regionaudit.audit(str(CNN), pairs=1, max_points=1, slice=False, init_reference=0).density.segments) == 1


def test_from_dict_of_what_is_not_an_audit_result_is_bad_data(tmp_path):
    """AuditResult.from_dict reads back an audit's JSON; a comparison's JSON, a partial dict or a
    path given instead is the project's BadData naming the problem, not a KeyError or TypeError."""
    from regionaudit.errors import BadData
    from regionaudit.result import CompareResult

    r = regionaudit.audit(CNN, data=DIGITS, pairs=2, max_points=1, slice=False, init_reference=0)
    d = json.loads(r.to_json())
    assert regionaudit.AuditResult.from_dict(d).to_dict() == d
    with pytest.raises(BadData, match="not a complete regionaudit result JSON: key 'density' is missing"):
        regionaudit.AuditResult.from_dict({"model": d["model"]})
    with pytest.raises(BadData, match=r"AuditResult.from_dict reads the dict of its JSON \(json.load\), not str"):
        regionaudit.AuditResult.from_dict(str(tmp_path / "r.json"))
    with pytest.raises(BadData, match="key 'a' is missing"):
        CompareResult.from_dict(d)
    d["density"]["segments"] = [3]
    with pytest.raises(BadData, match="not a valid regionaudit result JSON"):
        regionaudit.AuditResult.from_dict(d)


def test_sizes_shapes_and_seconds_as_the_command_line_writes_them():
    """max_memory="4M", input_shape="64" and timeout="600" are read as --max-memory 4M,
    --input-shape 64 and --timeout 600 read them; a size that is no size is refused by name."""
    r = regionaudit.audit(SAMPLES / "digits_mlp.onnx", data=DIGITS, pairs=2, max_points=1, slice=False, init_reference=0,
                          max_memory="4M", input_shape="64", timeout="600")
    assert r.settings["input_shape"] == [64] and len(r.density.segments) == 2
    opts = Options(max_memory="4M", max_file_size="1G", input_shape="3x8x8", timeout="2.5")
    assert (opts.max_memory, opts.max_file_size, opts.input_shape, opts.timeout) == (4 * 2**20, 2**30, (3, 8, 8), 2.5)
    with pytest.raises(BadOption, match="--max-memory must look like 512M or 2G, got 'lots'"):
        regionaudit.audit(CNN, max_memory="lots")


def test_a_network_runs_on_numpy_rows_as_on_tensors():
    """`Network.forward` takes a numpy array of probes, or one flat probe, as it takes a tensor;
    the outputs equal onnxruntime's."""
    import onnxruntime as ort
    import torch

    from regionaudit.importer import import_model

    model = SAMPLES / "digits_cnn.onnx"
    net = import_model(str(model)).network
    rows = np.load(SAMPLES / "digits_test.npy")[:5]  # float32, (5, 1, 8, 8)
    got = net.forward(rows)
    assert torch.equal(got, net.forward(torch.from_numpy(rows)))
    one = net.forward(rows[0].reshape(-1))  # (one probe: torch's convolution, sums in another order)
    assert one.shape == (1, 10) and torch.allclose(one, got[:1], rtol=1e-12, atol=1e-12)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: rows})[0]
    assert np.allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
