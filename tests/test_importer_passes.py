"""Graph-level passes: a MatMul followed by Add/Sub of a constant gets it as its bias, only when exact."""

from conftest import f32
from onnx import helper


def _ok(imported, tol=1e-6):
    v = imported.validation
    assert v["reference"] == "onnxruntime"
    assert v["max_rel_err"] < tol, v


def test_matmul_sub_bias_is_merged(convert):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Sub", ["m", "b"], ["y"])]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3, seed=1)})
    _ok(imported)
    assert [n["op_type"] for n in imported.nodes] == ["Input", "MatMul+Add"]


def test_matmul_add_that_widens_the_product_is_no_bias(convert):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(2, 1, 3, seed=1)})
    _ok(imported)
    assert [n["op_type"] for n in imported.nodes] == ["Input", "MatMul", "Add"]




def test_matmul_add_bias_is_merged(convert):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["b", "m"], ["y"])]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3, seed=1)})
    _ok(imported)
    assert [n["op_type"] for n in imported.nodes] == ["Input", "MatMul+Add"]
    assert imported.nodes[1]["params"] == 15


def test_matmul_add_bias_not_merged_when_product_is_read_twice(convert):
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("Add", ["a", "r"], ["y"]),
    ]
    imported = convert(nodes, [1, 4], {"W": f32(4, 3), "b": f32(3, seed=1)})
    _ok(imported)
    assert "MatMul" in [n["op_type"] for n in imported.nodes]
