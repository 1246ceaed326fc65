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


def _shortcut_block(convert, shortcut_channels: int):
    """conv, ReLU, then a block whose shortcut convolution (reading the first ReLU) is written
    after the other branch's ReLU and convolution, as exporters write ResNets."""
    c = shortcut_channels
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2"], ["b"], pads=[1, 1, 1, 1], strides=[2, 2], name="main1"),
        helper.make_node("Relu", ["b"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "W3"], ["c"], pads=[1, 1, 1, 1], name="main2"),
        helper.make_node("Conv", ["r1", "Ws"], ["s"], strides=[2, 2], name="shortcut"),
        helper.make_node("Add", ["c", "s"], ["y"], name="add"),
    ]
    inits = {"W1": f32(4, 2, 3, 3), "W2": f32(c, 4, 3, 3, seed=1), "W3": f32(c, c, 3, 3, seed=2), "Ws": f32(c, 4, 1, 1, seed=3)}
    imported = convert(nodes, [1, 2, 8, 8], inits)
    _ok(imported)
    return [n["name"] for n in imported.nodes]


def test_a_shortcut_convolution_runs_before_the_next_relu(convert):
    """It reads 4 x 8 x 8 values and writes 4 x 4 x 4: run where its input is there, it runs at
    the knots before relu2's; the kink nodes keep their order."""
    names = _shortcut_block(convert, 4)
    assert names.index("shortcut") < names.index("relu2")
    assert names.index("relu1") < names.index("main1") < names.index("relu2") < names.index("main2") < names.index("add")


def test_a_node_that_enlarges_its_input_keeps_the_graph_order(convert):
    """With 32 channels the shortcut writes 512 values from 256: it stays after relu2 (its
    larger output would be carried through that insertion instead of its input)."""
    names = _shortcut_block(convert, 32)
    assert names.index("relu2") < names.index("main2") < names.index("shortcut") < names.index("add")


def test_a_channels_last_flatten_before_a_dense_layer_is_folded_into_its_weight(convert):
    """Transpose to channels-last, flatten, MatMul (as Keras exports a convolution's dense head):
    the weight's rows are permuted instead, and the network computes what onnxruntime does."""
    nodes = [
        helper.make_node("Conv", ["x", "Wc"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ]
    import numpy as np

    inits = {"Wc": f32(3, 2, 3, 3), "shape": np.array([1, -1], dtype=np.int64), "W": f32(3 * 4 * 5, 7, seed=2), "b": f32(7, seed=3)}
    imported = convert(nodes, [1, 2, 4, 5], inits)
    _ok(imported)
    assert [n["op_type"] for n in imported.nodes] == ["Input", "Conv", "Relu", "Transpose+Reshape", "MatMul+Add"]


def test_a_transpose_that_a_reshape_does_not_flatten_stays(convert):
    """A Reshape that splits the transposed axes differently reads the transposed order: kept."""
    import numpy as np

    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "W"], ["y"]),
    ]
    imported = convert(nodes, [1, 4, 6], {"shape": np.array([1, 3, 8], dtype=np.int64), "W": f32(8, 5)})
    _ok(imported)
    assert [n["op_type"] for n in imported.nodes] == ["Input", "Transpose", "Reshape", "MatMul"]
