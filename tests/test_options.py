"""One definition of every option: the CLI, audit()'s keywords, settings, the baseline's probe
options and the range checks all come from `Options`."""

from __future__ import annotations

import numpy as np
import pytest

from regionaudit.assemble import settings
from regionaudit.cli import cli, options_from_cli
from regionaudit.errors import BadOption
from regionaudit.gates.baseline import PROBE_OPTIONS, apply_baseline
from regionaudit.options import Options, ineffective, option_flag, option_specs, slice_option_names
from regionaudit.probes import Probes


@pytest.mark.parametrize("command", ["audit", "compare"])
def test_every_option_is_a_cli_option(command):
    flags = {opt for p in cli.commands[command].params for opt in getattr(p, "opts", [])}
    slice_flags = {option_flag(name) for name in slice_option_names()}
    assert {option_flag(name) for name in option_specs()} - slice_flags <= flags
    # the 2-D slice is the audit's alone: compare measures none
    assert slice_flags <= flags if command == "audit" else not slice_flags & flags


def test_probe_options_are_the_fields_marked_probe():
    assert PROBE_OPTIONS == tuple(n for n, s in option_specs().items() if s.probe)
    assert "data_layout" in PROBE_OPTIONS and "device" not in PROBE_OPTIONS and "max_memory" not in PROBE_OPTIONS


@pytest.mark.parametrize(
    "values,message",
    [
        ({"pairs": -1}, "--pairs must be >= 0, got -1"),
        ({"loops": 10**5}, "--loops must be <= 10000"),
        ({"loop_radius": 0.0}, "--loop-radius must be > 0"),
        ({"loop_steps": 2}, "--loop-steps must be >= 3"),
        ({"layout": "nchw"}, "--layout must be one of chw, hwc"),
        ({"dtype": "float16"}, "--dtype must be one of float64, float32"),
        ({"max_knots": 0}, "--max-knots must be >= 1"),
        ({"slice_scale": 0.0}, "--slice-scale must be > 0"),
        ({"max_regions": 0}, "--max-regions must be >= 1"),
        ({"slice_color": "layer"}, "--slice-color must be one of region, class"),
        # NaN passes every comparison and an infinite timeout cannot be armed: both refused by name
        ({"timeout": float("nan")}, "--timeout must be a finite number, got nan"),
        ({"timeout": float("inf")}, "--timeout must be a finite number, got inf"),
        ({"loop_radius": float("nan")}, "--loop-radius must be a finite number"),
        ({"slice_scale": float("nan")}, "--slice-scale must be a finite number"),
        ({"timeout": np.float32("inf")}, "--timeout must be a finite number, got inf"),
        # nor a finite one past the interval timer's range (before: an internal OverflowError)
        ({"timeout": 1e30}, r"--timeout must be <= 100000000, got 1e\+30"),
        # the wrong type, from the API or a baseline's JSON: named, before a range check compares it
        ({"pairs": "abc"}, "--pairs must be an integer, got 'abc'"),
        ({"pairs": 2.5}, "--pairs must be an integer, got 2.5"),
        ({"max_points": True}, "--max-points must be an integer, got True"),
        ({"input_shape": (1, "28")}, "--input-shape must be an integer, got '28'"),
        ({"dtype": 64}, "--dtype must be a string, got 64"),
        # a box of the wrong length (before: an IndexError once the slice read box[3])
        ({"slice_box": (0.0, 1.0, 0.0)}, r"--slice-box must be 4 numbers, got 3: \(0.0, 1.0, 0.0\)"),
        ({"slice_box": [0, 1, 0, 1, 2]}, "--slice-box must be 4 numbers, got 5"),
        # an array where a path goes is named by its shape (before: printed whole, row by row)
        ({"data": np.zeros((300, 1, 8, 8))}, r"^--data must be a path, got ndarray of shape \(300, 1, 8, 8\)$"),
        ({"slice_box": np.zeros(4)}, r"^--slice-box must be a list of numbers, got ndarray of shape \(4,\)$"),
    ],
)
def test_ranges_are_checked_for_the_api_too(values, message):
    with pytest.raises(BadOption, match=message):
        Options(**values)


@pytest.mark.parametrize("text", ["64,x", "64,", "3,,32", "abc", "3x"])
def test_an_input_shape_with_a_part_that_is_no_number_is_refused(text):
    """"64,x" and "64," are refused, not read as 64."""
    with pytest.raises(BadOption, match="--input-shape must be comma-separated integers like 3,32,32"):
        options_from_cli({"input_shape": text})


def test_numpy_numbers_are_options_too():
    opts = Options(pairs=np.int64(3), slice_scale=np.float64(1.5), input_shape=(np.int32(64),))
    assert opts.pairs == 3 and opts.slice_scale == 1.5


def test_cli_values_are_parsed_once_and_only_given_ones_count():
    opts = options_from_cli({"pairs": 5, "input_shape": "3x8x8", "max_memory": "1M", "keep_knots": False, "seed": None})
    assert opts.pairs == 5 and opts.input_shape == (3, 8, 8) and opts.max_memory == 2**20
    assert opts.given == {"pairs", "input_shape", "max_memory"} and opts.keep_knots is False and opts.seed == 0


def _probes(**kw) -> Probes:
    return Probes(segments=(np.zeros((0, 2)), np.zeros((0, 2))), points=np.zeros((0, 2)), **kw)


def test_settings_follow_the_options_order_with_nulls_where_unused():
    opts = Options(pairs=7, data="d.npy")
    s = settings(opts, "cpu", _probes(hashes={"data": "ab" * 32}, data_rows=9, unused=["max_points"], description="x"))
    recorded = [n for n, spec in option_specs().items() if spec.setting]
    keys = [k for k in s if not k.endswith("_sha256")]
    assert keys[: len(recorded)] == recorded and keys[len(recorded):] == ["data_rows", "synthetic", "probes"]
    assert s["pairs"] == 7 and s["max_points"] is None and s["data_sha256"] == "ab" * 32 and s["points_sha256"] is None
    assert s["loop_radius"] is None and s["layout"] is None  # no loops, files in the model's layout
    assert settings(Options(loops=2), "cpu", _probes())["loop_radius"] == 2.0


def test_slice_settings_are_null_when_the_slice_is_off(tmp_path):
    pts = tmp_path / "p.npy"
    np.save(pts, np.eye(3)[:, :2])
    on = settings(Options(slice_points=str(pts), slice_box=(-1.0, 1.0, -2.0, 2.0)), "cpu", _probes())
    assert on["slice"] is True and on["slice_box"] == [-1.0, 1.0, -2.0, 2.0] and on["max_regions"] == 200_000
    assert on["slice_points"] == str(pts) and len(on["slice_points_sha256"]) == 64  # hashed though no probe read it
    assert "keep_polygons" not in on and "slice_color" not in on  # they change no number
    off = settings(Options(slice=False, slice_points=str(pts), slice_scale=2.0), "cpu", _probes())
    assert off["slice"] is False
    assert [off[k] for k in ("slice_points", "slice_points_sha256", "slice_scale", "slice_box", "max_regions")] == [None] * 5


def test_a_baseline_fills_the_slice_options():
    base = {"settings": {"slice": True, "slice_scale": 0.5, "slice_box": [-1, 1, -2, 2], "max_regions": 30}}
    opts = apply_baseline(Options.from_given({}), base)
    assert (opts.slice, opts.slice_scale, opts.slice_box, opts.max_regions) == (True, 0.5, (-1, 1, -2, 2), 30)
    assert apply_baseline(Options.from_given({"slice": False}), {"settings": {}}).slice is False  # an older baseline
    with pytest.raises(BadOption, match="--max-regions 5 conflicts with the baseline's max_regions 30"):
        apply_baseline(Options.from_given({"max_regions": 5}), base)


def test_a_baseline_fills_what_was_not_given_and_refuses_a_conflict():
    base = {"settings": {"seed": 3, "pairs": 9, "input_shape": [2], "data_layout": "chw", "max_knots": None}}
    opts = apply_baseline(Options.from_given({"max_points": 4}), base)
    assert (opts.seed, opts.pairs, opts.input_shape, opts.max_points, opts.max_knots) == (3, 9, (2,), 4, None)
    assert {"seed", "pairs", "input_shape", "max_points"} <= opts.given
    with pytest.raises(BadOption, match="--seed 1 conflicts with the baseline's seed 3"):
        apply_baseline(Options.from_given({"seed": 1}), base)


@pytest.mark.parametrize("chose", ["exact", "approx"])
def test_a_distance_method_that_a_baselines_auto_chose_agrees_with_it(chose):
    """`--distance auto` decides by the input size alone, so a baseline taken with it measured what
    its recorded method says: asking for that method by name measures the same, the other one
    conflicts."""
    base = {"settings": {"distance": "auto", "distance_directions": 256}, "distance": {"method": chose}}
    assert apply_baseline(Options.from_given({"distance": chose}), base).distance == chose
    assert apply_baseline(Options.from_given({}), base).distance == "auto"
    other = "approx" if chose == "exact" else "exact"
    with pytest.raises(BadOption, match=f"--distance {other} conflicts with the baseline's distance auto"):
        apply_baseline(Options.from_given({"distance": other}), base)
    with pytest.raises(BadOption, match=f"--distance {chose} conflicts with the baseline's distance auto"):
        apply_baseline(Options.from_given({"distance": chose}), {"settings": base["settings"]})  # (no method recorded)


def test_labels_with_segments_and_directions_with_exact_distances_are_said():
    from regionaudit.options import LABELS_WITHOUT_PAIRS

    assert ineffective(Options.from_given({"labels": "y.npy", "segments": "s.npy", "data": "d.npy"})) == [LABELS_WITHOUT_PAIRS]
    # without --data, --labels is refused (`--labels needs --data`): no note that contradicts it first
    assert ineffective(Options.from_given({"labels": "y.npy", "segments": "s.npy"})) == []
    said = ineffective(Options.from_given({"distance": "exact", "distance_directions": 8}))
    assert said == ["--distance-directions 8 has no effect with --distance exact (it sets the approximate method's projections)."]
    auto = Options.from_given({"distance_directions": 8})
    assert ineffective(auto, exact_distance=False) == [] and ineffective(Options.from_given({"distance": "approx", "distance_directions": 8})) == []
    assert ineffective(auto, exact_distance=True)[0].startswith("--distance-directions 8 has no effect here: --distance auto")


def test_options_a_baseline_filled_in_are_not_said_but_count_as_given():
    """Loops and data from a baseline are given: --loop-radius typed beside them has an effect;
    the baseline's own values are never said to have none."""
    opts = Options.from_given({"loops": 2, "data": "d.npy", "loop_radius": 2.0, "data_layout": "chw", "pairs": 3,
                               "segments": "s.npy"})
    typed = frozenset({"loop_radius", "data_layout"})
    assert ineffective(opts, typed=typed) == []
    assert ineffective(opts) == ["--pairs 3 has no effect: --segments gives the segments."]
    assert ineffective(Options.from_given({"loop_radius": 2.0})) == ["--loop-radius 2.0 has no effect without --loops."]


def test_an_option_without_effect_is_said():
    said = ineffective(Options.from_given({"pairs": 3, "segments": "s.npy", "loop_steps": 8}))
    assert said == ["--pairs 3 has no effect: --segments gives the segments.", "--loop-steps 8 has no effect without --loops."]
    assert ineffective(Options.from_given({"pairs": 3, "data": "d.npy"})) == []
    said = ineffective(Options.from_given({"slice": False, "slice_scale": 2.0, "max_regions": 10}))
    assert said == ["--slice-scale has no effect with --no-slice.", "--max-regions has no effect with --no-slice."]
    assert ineffective(Options.from_given({"slice_scale": 2.0, "max_regions": 10})) == []
    assert ineffective(Options.from_given({"slice_scale": 2.0}), input_size=64) == []
    # a 2-D input is sliced in its own plane, over the data's range: no circumradius to scale
    assert ineffective(Options.from_given({"slice_scale": 2.0}), input_size=2) == [
        "--slice-scale 2 has no effect: a model with a 2-D input is sliced in its input plane, over the data's range "
        "(or --slice-box)."]
