"""Refusals name every reason: each offending node, grouped by class, also downstream of an op
without a converter; one line on stderr, the full list in `inspect --json` (exit code 2)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import f32, make_model
from converters.helpers import ok
from onnx import TensorProto, helper

from regionaudit.cli import main
from regionaudit.errors import RejectedModel
from regionaudit.importer import import_model
from regionaudit.importer.refusal import Refusal


def _refusal(tmp_path, nodes, shape=(1, 4), inits=None, opset=13, model=None) -> Refusal:
    model = model or make_model(nodes, list(shape), inits, opset)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(Refusal) as info:
        import_model(path)
    assert "\n" not in str(info.value)
    return info.value


def _classes(refusal: Refusal) -> dict[str, list[str]]:
    return {kind: [p.node for p in members] for kind, members in refusal.by_class().items()}


def test_not_piecewise_linear(tmp_path):
    nodes = [helper.make_node("Sin", ["x"], ["s"], name="sin"), helper.make_node("Exp", ["s"], ["e"], name="exp"),
             helper.make_node("Relu", ["e"], ["y"])]
    r = _refusal(tmp_path, nodes)
    assert _classes(r) == {"not piecewise linear": ["sin", "exp"]}
    assert str(r) == "refused (opset 13): not piecewise linear: Sin 'sin', Exp 'exp'"


def test_discontinuous(tmp_path):
    nodes = [helper.make_node("Floor", ["x"], ["f"], name="floor"), helper.make_node("Sign", ["x"], ["s"], name="sign"),
             helper.make_node("Less", ["x", "z"], ["l"], name="less"),
             helper.make_node("Cast", ["l"], ["lf"], name="to_float", to=TensorProto.FLOAT),
             helper.make_node("Sum", ["f", "s", "lf"], ["y"])]
    r = _refusal(tmp_path, nodes, inits={"z": np.zeros(4, np.float32)})
    assert _classes(r) == {"discontinuous": ["floor", "sign", "less"]}


def test_product_of_data_tensors_is_named_with_the_node(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["x", "r"], ["m"], name="gate"),
             helper.make_node("Div", ["m", "r"], ["y"], name="ratio")]
    r = _refusal(tmp_path, nodes)
    assert _classes(r) == {"product or quotient of two data-dependent tensors": ["gate", "ratio"]}
    assert "Mul 'gate' (product of two data tensors); Div 'ratio' (division by a data tensor)" in str(r)


def test_control_flow(tmp_path):
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "z"], ["c"], name="test"),
             helper.make_node("If", ["c"], ["y"], name="branch", then_branch=branch, else_branch=branch)]
    r = _refusal(tmp_path, nodes, inits={"z": np.float32(0)})
    assert _classes(r) == {"discontinuous": ["test"], "control flow": ["branch"]}


def test_several_inputs_are_listed_with_everything_else(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Tanh", ["s"], ["t"], name="mid"),
         helper.make_node("Relu", ["t"], ["y"])],
        "two", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    r = _refusal(tmp_path, None, model=helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert list(_classes(r)) == ["several inputs", "not piecewise linear"]
    assert "2 inputs ('a', 'b')" in str(r) and "Tanh 'mid'" in str(r)


def test_an_integer_input_beside_the_float_one_is_named_as_another_input(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Gather", ["x", "ids"], ["y"], name="lookup")], "embed",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    r = _refusal(tmp_path, None, model=helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert _classes(r) == {"several inputs": ["embed"], "discontinuous": ["lookup"]}
    assert "2 inputs ('ids', 'x')" in str(r)


def test_nodes_downstream_of_an_op_without_converter_are_judged_too(tmp_path):
    """Adding a converter for the first never only reveals the next refusal."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Hardmax", ["r"], ["h"], name="hm"),  # not piecewise linear
             helper.make_node("Det", ["h"], ["d"], name="det"),  # no converter
             helper.make_node("Mul", ["d", "r"], ["m"], name="mul"),  # downstream: product
             helper.make_node("Round", ["m"], ["q"], name="round"),  # downstream: discontinuous
             helper.make_node("Relu", ["q"], ["y"], name="fine")]  # downstream, fine by itself
    r = _refusal(tmp_path, nodes)
    assert _classes(r) == {
        "not piecewise linear": ["hm"],
        "discontinuous": ["round"],
        "product or quotient of two data-dependent tensors": ["mul"],
        "no converter": ["det"],
    }
    assert "supported ops: " in str(r)


def test_cannot_convert_gives_the_converters_reason(tmp_path):
    nodes = [helper.make_node("Pad", ["x", "p", "v"], ["y"], name="pad", mode="constant")]
    r = _refusal(tmp_path, nodes, inits={"p": np.array([0, 1], np.int64), "v": np.float32(2)})
    assert _classes(r) == {"cannot convert": ["pad"]}
    assert "Pad 'pad' (pads [0, 1] do not fit (1, 4))" in str(r)


def test_a_few_nodes_per_class_then_how_many_more(tmp_path):
    nodes, last = [], "x"
    for i in range(7):
        nodes.append(helper.make_node("Sin", [last], [f"s{i}"], name=f"sin{i}"))
        last = f"s{i}"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    r = _refusal(tmp_path, nodes)
    assert str(r) == "refused (opset 13): not piecewise linear: Sin 'sin0', Sin 'sin1', Sin 'sin2', Sin 'sin3' +3 more"
    assert len(r.to_dict()["reasons"]["not piecewise linear"]) == 7


def test_inspect_json_holds_the_full_refusal_with_exit_code_2(tmp_path, capsys):
    nodes, last = [], "x"
    for i in range(6):
        nodes.append(helper.make_node("Sin", [last], [f"s{i}"], name=f"sin{i}"))
        last = f"s{i}"
    nodes += [helper.make_node("Mul", [last, "x"], ["m"], name="mul"), helper.make_node("Relu", ["m"], ["y"])]
    path = tmp_path / "m.onnx"
    onnx.save(make_model(nodes, [1, 4]), str(path))
    out_json = tmp_path / "refusal.json"
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(path), "--json", str(out_json)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "+2 more" in err
    data = json.loads(out_json.read_text())
    refusal = data["refusal"]
    assert [p["node"] for p in refusal["reasons"]["not piecewise linear"]] == [f"sin{i}" for i in range(6)]
    assert refusal["reasons"]["product or quotient of two data-dependent tensors"] == [
        {"kind": "product or quotient of two data-dependent tensors", "op_type": "Mul", "node": "mul",
         "reason": "product of two data tensors"}]
    assert data["model"]["path"] == str(path) and refusal["opset"] == 13


def test_a_trailing_tanh_is_stripped_and_a_tanh_elsewhere_refused(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Tanh", ["r"], ["t"], name="out_tanh"), helper.make_node("Identity", ["t"], ["y"])]
    path = tmp_path / "gen.onnx"
    onnx.save(make_model(nodes, [1, 3], {"w": f32(3, 4), "b": f32(4)}), str(path))
    imported = import_model(path)
    assert any("final Tanh 'out_tanh' stripped" in n for n in imported.notes)
    assert imported.validation["max_rel_err"] < 1e-6
    nodes = [helper.make_node("Tanh", ["x"], ["t"], name="mid"), helper.make_node("Relu", ["t"], ["y"])]
    assert "not piecewise linear: Tanh 'mid' (only a final Softmax, LogSoftmax, Sigmoid or Tanh is stripped)" in str(
        _refusal(tmp_path, nodes))


def test_float64_model_checked_by_the_reference_evaluator_says_so(tmp_path):
    """float64 input with float32 weights: onnxruntime refuses the mixed types, onnx's reference
    evaluator runs it, and the result's notes say which one checked the import."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, [1, 3], {"w": f32(3, 4), "b": f32(4)}, elem=TensorProto.DOUBLE)  # float32 weights
    path = tmp_path / "f64.onnx"
    onnx.save(model, str(path))
    imported = import_model(path)
    assert imported.validation["reference"] == "onnx.reference"
    assert any("onnxruntime cannot run this model" in n and "onnx.reference" in n for n in imported.notes)


def test_every_unsupported_node_is_named_once_on_one_line(convert):
    nodes = [
        helper.make_node("Tanh", ["x"], ["t"], name="node_3"),
        helper.make_node("Exp", ["t"], ["e"]),  # unnamed: gets op type + output name
        helper.make_node("Relu", ["e"], ["r"]),
        helper.make_node("HardSigmoid", ["r"], ["y"], name="hs"),
    ]
    with pytest.raises(RejectedModel) as info:
        convert(nodes, [1, 4], opset=9)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("refused (opset 9): not piecewise linear: Tanh 'node_3' (only a final Softmax")
    assert "Exp 'Exp_e'" in msg
    assert "HardSigmoid" not in msg  # converted: a kink, fine downstream of the refused nodes


def test_unsupported_nodes_outside_the_analysed_output_do_not_matter(convert):
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Sin", ["x"], ["aux"])]
    imported = convert(nodes, [1, 4], model_kwargs={"outputs": ("y", "aux")})
    ok(imported)
    with pytest.raises(RejectedModel, match="Sin"):
        convert(nodes, [1, 4], model_kwargs={"outputs": ("y", "aux")}, output_name="aux")


def test_inspect_json_message_is_the_line_stderr_shows(tmp_path, capsys):
    """A node name with a newline: stderr prints one line, and `refusal.message` is that line."""
    nodes = [helper.make_node("Sin", ["x"], ["s"], name="two\nlines"), helper.make_node("Relu", ["s"], ["y"])]
    path, out_json = tmp_path / "m.onnx", tmp_path / "refusal.json"
    onnx.save(make_model(nodes, [1, 4]), str(path))
    with pytest.raises(SystemExit):
        main(["inspect", str(path), "--json", str(out_json)])
    [line] = capsys.readouterr().err.strip().splitlines()
    message = json.loads(out_json.read_text())["refusal"]["message"]
    assert "two lines" in message and line == f"regionaudit: error: {message}"
