"""Elementwise ops, BatchNormalization, kinks, pass-through ops, trailing Softmax and refusals."""

import numpy as np
import pytest
from conftest import NEWEST_OPSET, f32
from onnx import TensorProto, helper

from regionaudit.errors import RejectedModel

OPSETS = [7, 11, 13, NEWEST_OPSET]


def _ok(imported):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < 1e-6, v


# c / x is not linear: it is tested as a refusal, not here
LINEAR_SIDES = [(op, first) for op in ["Add", "Sub", "Mul", "Div"] for first in [False, True] if not (op == "Div" and first)]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("op,const_first", LINEAR_SIDES)
@pytest.mark.parametrize("c_shape", [(), (3, 1, 1), (1, 4, 5), (2, 1, 3, 4, 5)])
def test_binary_ops_with_a_constant(convert, opset, op, const_first, c_shape):
    c = f32(*c_shape, seed=3) if c_shape else np.float32(1.7)
    inputs = ["c", "x"] if const_first else ["x", "c"]
    nodes = [helper.make_node(op, inputs, ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    imported = convert(nodes, [1, 3, 4, 5], {"c": np.abs(c) + 0.5 if op == "Div" else c}, opset)
    _ok(imported)


@pytest.mark.parametrize("opset", OPSETS)
def test_data_plus_minus_data_and_neg(convert, opset):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Neg", ["x"], ["n"]),
        helper.make_node("Sub", ["r", "n"], ["s"]),
        helper.make_node("Add", ["s", "r"], ["a"]),
        helper.make_node("Sum", ["a", "x", "c"], ["y"]),
    ]
    imported = convert(nodes, [1, 6], {"c": f32(1, 6)}, opset)
    _ok(imported)
    assert [n["kind"] for n in imported.nodes].count("add") == 3


@pytest.mark.parametrize("op,inputs,why", [
    ("Mul", ["x", "r"], "product of two data tensors"),
    ("Div", ["c", "x"], "division by a data tensor"),
    ("Div", ["x", "z"], "holds zeros"),
])
def test_nonlinear_binary_ops_are_rejected(convert, op, inputs, why):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, inputs, ["y"])]
    with pytest.raises(RejectedModel, match=why):
        convert(nodes, [1, 3], {"c": f32(3), "z": np.array([1, 0, 2], np.float32)})


@pytest.mark.parametrize("opset", [7, 9, 14, NEWEST_OPSET])
@pytest.mark.parametrize("shape", [[1, 3, 4, 5], [1, 3], [1, 3, 7]])
def test_batch_normalization(convert, opset, shape):
    rng = np.random.default_rng(1)
    inits = {"s": f32(3, seed=1), "b": f32(3, seed=2), "m": f32(3, seed=3),
             "v": rng.uniform(0.5, 2, 3).astype(np.float32)}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    imported = convert([node], shape, inits, opset)
    _ok(imported)
    scale = imported.network.nodes[-1]
    assert scale.kind == "scale" and tuple(scale.mul.shape) == (3, *([1] * (len(shape) - 2)))


def test_batch_normalization_spatial_zero_opset_7(convert):
    rng = np.random.default_rng(1)
    inits = {"s": f32(3, 4, seed=1), "b": f32(3, 4, seed=2), "m": f32(3, 4, seed=3),
             "v": rng.uniform(0.5, 2, (3, 4)).astype(np.float32)}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0)
    imported = convert([node], [1, 3, 4], inits, 7)
    # onnxruntime has no spatial=0 kernel; the reference evaluator is the fallback
    assert imported.validation["max_rel_err"] < 1e-6


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("slope_shape", [(1,), (3, 1, 1), (3, 4, 5), (5,)])
def test_prelu_constant_slope(convert, opset, slope_shape):
    node = helper.make_node("PRelu", ["x", "a"], ["y"])
    imported = convert([node], [1, 3, 4, 5], {"a": f32(*slope_shape, seed=4)}, opset)
    _ok(imported)
    relu = imported.network.nodes[-1]
    assert relu.kind == "relu" and tuple(relu.slope.shape) == (1, 3, 4, 5)
    assert imported.network.neurons == 60


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("alpha", [None, 0.2, -0.5])
def test_leaky_relu(convert, opset, alpha):
    kw = {} if alpha is None else {"alpha": alpha}
    imported = convert([helper.make_node("LeakyRelu", ["x"], ["y"], **kw)], [1, 7], opset=opset)
    _ok(imported)
    assert float(imported.network.nodes[-1].slope) == pytest.approx(0.01 if alpha is None else alpha)


@pytest.mark.parametrize("opset", OPSETS)
def test_identity_dropout_cast(convert, opset):
    if opset < 12:
        dropout = helper.make_node("Dropout", ["i"], ["d"], ratio=0.3)
        inits = {}
    else:
        dropout = helper.make_node("Dropout", ["i", "ratio"], ["d"])
        inits = {"ratio": np.array(0.3, np.float32)}
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        dropout,
        helper.make_node("Cast", ["d"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    imported = convert(nodes, [1, 5], inits, opset)
    _ok(imported)
    assert [n["kind"] for n in imported.nodes] == ["input", "relu"]


def test_cast_to_int_is_rejected(convert):
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT)]
    with pytest.raises(RejectedModel, match="non-float type"):
        convert(nodes, [1, 5])


@pytest.mark.parametrize("opset", [7, 13, NEWEST_OPSET])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Sigmoid"])
def test_final_squasher_is_stripped(convert, opset, op):
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["logits"]),
        helper.make_node(op, ["logits"], ["p"], name="final"),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Identity", ["f"], ["y"]),
    ]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3)}, opset)
    _ok(imported)
    assert imported.notes == [f"final {op} 'final' stripped: the analysis is on logits"]
    assert imported.network.notes == imported.notes


def test_sigmoid_mid_graph_is_rejected(convert):
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], name="mid"), helper.make_node("Relu", ["s"], ["y"])]
    with pytest.raises(RejectedModel, match="not piecewise linear: Sigmoid 'mid'"):
        convert(nodes, [1, 4])


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
    _ok(imported)
    with pytest.raises(RejectedModel, match="Sin"):
        convert(nodes, [1, 4], model_kwargs={"outputs": ("y", "aux")}, output_name="aux")
