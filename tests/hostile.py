"""Hostile and broken ONNX files, built with onnx.helper, for the robustness tests.

`build_all(folder)` writes every case into `folder` and returns {name: (path, expected)}: the
expected text is a fragment of the one-line refusal, or None where the file is valid and must
import. Run as a script to make a folder of them to try by hand:

    python tests/hostile.py FOLDER
    for f in FOLDER/*.onnx; do regionaudit inspect "$f"; done
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = 13


def weights(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal(8).astype(np.float32),
            rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32))


def mlp_parts(seed: int = 0):
    """Nodes, initializers, input and output of a valid 4-8-3 ReLU MLP."""
    w1, b1, w2, b2 = weights(seed)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2"),
    ]
    inp = helper.make_tensor_value_info("x", F, [1, 4])
    out = helper.make_tensor_value_info("y", F, [1, 3])
    return nodes, inits, [inp], [out]


def model_of(nodes, inits, inputs, outputs, opset=OPSET, **kw) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)


def valid_mlp(seed: int = 0) -> onnx.ModelProto:
    return model_of(*mlp_parts(seed))


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


# ----------------------------------------------------------------------------------------------
# broken graphs


def dangling_input(folder):
    nodes, inits, i, o = mlp_parts()
    nodes[1].input[0] = "nowhere"
    return _save(model_of(nodes, inits, i, o), folder / "dangling_input.onnx"), "'nowhere'"


def missing_required_input(folder):
    nodes, inits, i, o = mlp_parts()
    del nodes[2].input[1:]  # Gemm with its A alone
    return _save(model_of(nodes, inits, i, o), folder / "missing_required_input.onnx"), "fc2"


def empty_required_input(folder):
    nodes, inits, i, o = mlp_parts()
    nodes[2].input[1] = ""
    return _save(model_of(nodes, inits, i, o), folder / "empty_required_input.onnx"), "fc2"


def missing_initializer(folder):
    nodes, inits, i, o = mlp_parts()
    return _save(model_of(nodes, inits[1:], i, o), folder / "missing_initializer.onnx"), "'w1'"


def cycle(folder):
    nodes, inits, i, o = mlp_parts()
    nodes[0].input[0] = "y"  # fc1 reads fc2's output
    return _save(model_of(nodes, inits, i, o), folder / "cycle.onnx"), "cycle"


def duplicate_node_output(folder):
    nodes, inits, i, o = mlp_parts()
    nodes.insert(2, helper.make_node("Relu", ["h"], ["r"], name="relu_again"))
    return _save(model_of(nodes, inits, i, o), folder / "duplicate_node_output.onnx"), "'r'"


def duplicate_graph_output(folder):
    nodes, inits, i, o = mlp_parts()
    return _save(model_of(nodes, inits, i, o + o), folder / "duplicate_graph_output.onnx"), "'y'"


def duplicate_initializer(folder):
    nodes, inits, i, o = mlp_parts()
    extra = numpy_helper.from_array(np.zeros((4, 8), np.float32), "w1")
    return _save(model_of(nodes, inits + [extra], i, o), folder / "duplicate_initializer.onnx"), "'w1'"


def output_overwrites_initializer(folder):
    nodes, inits, i, o = mlp_parts()
    nodes[1].output[0] = "b2"
    nodes[2].input[0] = "b2"
    return _save(model_of(nodes, inits, i, o), folder / "output_overwrites_initializer.onnx"), "'b2'"


def zero_dim_input(folder):
    nodes, inits, _, o = mlp_parts()
    inp = helper.make_tensor_value_info("x", F, [1, 0])
    return _save(model_of(nodes, inits, [inp], o), folder / "zero_dim_input.onnx"), "x"


def negative_dim_input(folder):
    nodes, inits, _, o = mlp_parts()
    inp = helper.make_tensor_value_info("x", F, [1, -4])
    return _save(model_of(nodes, inits, [inp], o), folder / "negative_dim_input.onnx"), "x"


def zero_size_weight(folder):
    nodes, inits, i, o = mlp_parts()
    inits[0] = numpy_helper.from_array(np.zeros((4, 0), np.float32), "w1")
    return _save(model_of(nodes, inits, i, o), folder / "zero_size_weight.onnx"), "fc1"


def negative_dim_weight(folder):
    nodes, inits, i, o = mlp_parts()
    inits[0].dims[1] = -8
    return _save(model_of(nodes, inits, i, o), folder / "negative_dim_weight.onnx"), "'w1'"


def shape_disagrees_with_weights(folder):
    nodes, inits, _, o = mlp_parts()
    inp = helper.make_tensor_value_info("x", F, [1, 5])
    return _save(model_of(nodes, inits, [inp], o), folder / "shape_disagrees_with_weights.onnx"), "fc1"


def dims_disagree_with_data(folder):
    nodes, inits, i, o = mlp_parts()
    inits[0].dims[1] = 9  # 36 declared, 32 stored
    return _save(model_of(nodes, inits, i, o), folder / "dims_disagree_with_data.onnx"), "'w1'"


def int_tensor_short_data(folder):
    nodes, inits, i, o = mlp_parts()
    bad = numpy_helper.from_array(np.arange(6, dtype=np.int64), "shape_like")
    bad.dims[0] = 9  # 9 declared, 6 stored
    return _save(model_of(nodes, inits + [bad], i, o), folder / "int_tensor_short_data.onnx"), "'shape_like'"


def int_weights(folder):
    nodes, inits, i, o = mlp_parts()
    inits[0] = numpy_helper.from_array(np.ones((4, 8), np.int64), "w1")
    return _save(model_of(nodes, inits, i, o), folder / "int_weights.onnx"), "fc1"


def float16_model(folder):
    """Valid: a float16 network imports and matches onnxruntime."""
    w1, b1, w2, b2 = weights()
    inits = [numpy_helper.from_array(a.astype(np.float16), n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes, _, _, _ = mlp_parts()
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 3])
    return _save(model_of(nodes, inits, [inp], [out]), folder / "float16_model.onnx"), None


def custom_domain(folder):
    nodes, inits, i, o = mlp_parts()
    nodes[1] = helper.make_node("FancyRelu", ["h"], ["r"], name="fancy", domain="com.example")
    model = model_of(nodes, inits, i, o)
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return _save(model, folder / "custom_domain.onnx"), "com.example"


def local_function(folder):
    """Valid: a local function (Relu then Identity) is inlined, then imports."""
    body = [helper.make_node("Relu", ["a"], ["t"]), helper.make_node("Identity", ["t"], ["b"])]
    fn = helper.make_function("local", "MyRelu", ["a"], ["b"], body, [helper.make_opsetid("", OPSET)])
    nodes, inits, i, o = mlp_parts()
    nodes[1] = helper.make_node("MyRelu", ["h"], ["r"], name="myrelu", domain="local")
    graph = helper.make_graph(nodes, "g", i, o, inits)
    model = helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)])
    return _save(model, folder / "local_function.onnx"), None


def recursive_function(folder):
    body = [helper.make_node("Loopy", ["a"], ["b"], domain="local")]
    fn = helper.make_function("local", "Loopy", ["a"], ["b"], body, [helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)])
    nodes, inits, i, o = mlp_parts()
    nodes[1] = helper.make_node("Loopy", ["h"], ["r"], name="loopy", domain="local")
    graph = helper.make_graph(nodes, "g", i, o, inits)
    model = helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)])
    return _save(model, folder / "recursive_function.onnx"), "Loopy"


def _branch(name: str, op: str) -> onnx.GraphProto:
    return helper.make_graph([helper.make_node(op, ["h"], [f"{name}_out"])], name, [],
                             [helper.make_tensor_value_info(f"{name}_out", F, [1, 8])])


def control_if(folder):
    nodes, inits, i, o = mlp_parts()
    cond = numpy_helper.from_array(np.array(True), "cond")
    nodes[1] = helper.make_node("If", ["cond"], ["r"], name="branch",
                                then_branch=_branch("then", "Relu"), else_branch=_branch("else", "Identity"))
    return _save(model_of(nodes, inits + [cond], i, o), folder / "control_if.onnx"), "If"


def control_loop(folder):
    nodes, inits, i, o = mlp_parts()
    body = helper.make_graph(
        [helper.make_node("Relu", ["v_in"], ["v_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
        "body",
        [helper.make_tensor_value_info("it", TensorProto.INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", F, [1, 8])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", F, [1, 8])],
    )
    trip = numpy_helper.from_array(np.array(10**12, np.int64), "trip")
    nodes[1] = helper.make_node("Loop", ["trip", "", "h"], ["r"], name="loop", body=body)
    return _save(model_of(nodes, inits + [trip], i, o), folder / "control_loop.onnx"), "Loop"


def control_loop_on_constants(folder):
    """A Loop whose inputs are all constants (foldable in principle) must not run 1e12 times."""
    nodes, inits, i, o = mlp_parts()
    body = helper.make_graph(
        [helper.make_node("Identity", ["v_in"], ["v_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
        "body",
        [helper.make_tensor_value_info("it", TensorProto.INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", F, [8])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", F, [8])],
    )
    trip = numpy_helper.from_array(np.array(10**12, np.int64), "trip")
    nodes[2].input[2] = "b_loop"
    nodes.insert(2, helper.make_node("Loop", ["trip", "", "b1"], ["b_loop_8"], name="loop", body=body))
    nodes.insert(3, helper.make_node("Slice", ["b_loop_8", "s0", "s3"], ["b_loop"], name="cut"))
    inits += [trip, numpy_helper.from_array(np.array([0], np.int64), "s0"), numpy_helper.from_array(np.array([3], np.int64), "s3")]
    return _save(model_of(nodes, inits, i, o), folder / "control_loop_on_constants.onnx"), "Loop"


def control_scan(folder):
    nodes, inits, i, o = mlp_parts()
    body = helper.make_graph(
        [helper.make_node("Relu", ["s_in"], ["s_out"]), helper.make_node("Identity", ["s_in"], ["e_out"])],
        "body",
        [helper.make_tensor_value_info("s_in", F, [1, 8])],
        [helper.make_tensor_value_info("s_out", F, [1, 8]), helper.make_tensor_value_info("e_out", F, [1, 8])],
    )
    nodes[1] = helper.make_node("Scan", ["h"], ["r", "scanned"], name="scan", body=body, num_scan_inputs=0)
    return _save(model_of(nodes, inits, i, o), folder / "control_scan.onnx"), "Scan"


def deep_chain(folder, depth: int = 3000):
    """Valid: thousands of nodes one after another (Relu then Identity, repeated) import."""
    nodes, inits, i, o = mlp_parts()
    chain = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h0"], name="fc1")]
    for k in range(depth):
        op = "Relu" if k % 2 == 0 else "Identity"
        chain.append(helper.make_node(op, [f"h{k}"], [f"h{k + 1}"], name=f"n{k}"))
    chain.append(helper.make_node("Gemm", [f"h{depth}", "w2", "b2"], ["y"], name="fc2"))
    return _save(model_of(chain, inits, i, o), folder / "deep_chain.onnx"), None


def constant_output(folder):
    nodes, inits, i, _ = mlp_parts()
    out = helper.make_tensor_value_info("b2", F, [3])
    return _save(model_of(nodes, inits, i, [out]), folder / "constant_output.onnx"), "does not depend"


def output_is_input(folder):
    nodes, inits, i, _ = mlp_parts()
    out = helper.make_tensor_value_info("x", F, [1, 4])
    return _save(model_of(nodes, inits, i, [out]), folder / "output_is_input.onnx"), None


def huge_constant_of_shape(folder):
    nodes, inits, i, o = mlp_parts()
    shape = numpy_helper.from_array(np.array([10**6, 10**6], np.int64), "big_shape")
    nodes.insert(0, helper.make_node("ConstantOfShape", ["big_shape"], ["big"], name="bomb"))
    nodes.insert(1, helper.make_node("ReduceSum", ["big"], ["bigsum"], name="sum", keepdims=0))
    nodes[-1].input[2] = "b2plus"
    nodes.append(helper.make_node("Add", ["b2", "bigsum"], ["b2plus"], name="add"))
    nodes = nodes[:-2] + [nodes[-1], nodes[-2]]
    return _save(model_of(nodes, inits + [shape], i, o), folder / "huge_constant_of_shape.onnx"), "bomb"


def huge_declared_layer(folder):
    nodes, inits, _, o = mlp_parts()
    inp = helper.make_tensor_value_info("x", F, [1, 3 * 10**9])
    return _save(model_of(nodes, inits, [inp], o), folder / "huge_declared_layer.onnx"), "too large"


def nan_weights(folder):
    nodes, inits, i, o = mlp_parts()
    w = numpy_helper.to_array(inits[0]).copy()
    w[0, 0] = np.nan
    inits[0] = numpy_helper.from_array(w, "w1")
    return _save(model_of(nodes, inits, i, o), folder / "nan_weights.onnx"), "NaN"


def string_weights(folder):
    nodes, inits, i, o = mlp_parts()
    inits[0] = helper.make_tensor("w1", TensorProto.STRING, [1], [b"boom"])
    return _save(model_of(nodes, inits, i, o), folder / "string_weights.onnx"), "fc1' (B (input 1) holds string values"


def unknown_input_type(folder):
    model = valid_mlp()
    model.graph.input[0].type.tensor_type.elem_type = 99
    return _save(model, folder / "unknown_input_type.onnx"), "99"


def string_tensor_without_strings(folder):
    nodes, inits, i, o = mlp_parts()
    inits[3].data_type = TensorProto.STRING  # its float bytes stay in raw_data
    return _save(model_of(nodes, inits, i, o), folder / "string_tensor_without_strings.onnx"), "'b2'"


def no_opset(folder):
    model = valid_mlp()
    del model.opset_import[:]
    return _save(model, folder / "no_opset.onnx"), "opset"


def future_ir(folder):
    model = valid_mlp()
    model.ir_version = 999
    return _save(model, folder / "future_ir.onnx"), "IR version"


def truncated(folder):
    raw = valid_mlp().SerializeToString()
    p = folder / "truncated.onnx"
    p.write_bytes(raw[: len(raw) // 2])
    return p, "corrupt"


def random_bytes(folder):
    p = folder / "random_bytes.onnx"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p, "ONNX"


def empty_file(folder):
    p = folder / "empty.onnx"
    p.write_bytes(b"")
    return p, "ONNX"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, written by hand (protobuf refuses to build these)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deep_nested_subgraphs(folder, depth: int = 300):
    """If nodes nested deeper than protobuf's recursion limit: bytes built by hand."""
    graph = _branch("b0", "Relu").SerializeToString()
    for _ in range(depth):
        attr = _field(1, b"then_branch") + _varint(20 << 3) + _varint(onnx.AttributeProto.GRAPH) + _field(6, graph)
        node = _field(1, b"cond") + _field(2, b"r") + _field(4, b"If") + _field(5, attr)
        graph = _field(1, node) + _field(2, b"deep")
    model = valid_mlp().SerializeToString() + _field(7, graph)  # a second graph field merges into the first
    p = folder / "deep_nested_subgraphs.onnx"
    p.write_bytes(model)
    return p, "ONNX"


# ----------------------------------------------------------------------------------------------
# external data


def _external(folder: Path, name: str, location: str, offset: int = 0, length: int | None = None) -> Path:
    nodes, inits, i, o = mlp_parts()
    t = inits[0]
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    t.ClearField("float_data")
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        t.external_data.add(key=k, value=v)
    return _save(model_of(nodes, inits, i, o), folder / name)


def external_absolute(folder):
    return _external(folder, "external_absolute.onnx", "/etc/passwd"), "/etc/passwd"


def external_dotdot(folder):
    return _external(folder, "external_dotdot.onnx", "../../etc/passwd"), "../../etc/passwd"


def external_symlink_out(folder):
    link = folder / "weights_link.bin"
    if not link.exists():
        link.symlink_to("/etc/passwd")
    return _external(folder, "external_symlink_out.onnx", "weights_link.bin"), "weights_link.bin"


def external_missing(folder):
    return _external(folder, "external_missing.onnx", "no_such_weights.bin"), "no_such_weights.bin"


def external_short(folder):
    (folder / "short_weights.bin").write_bytes(b"\0" * 40)  # 4x8 floats need 128 bytes
    return _external(folder, "external_short.onnx", "short_weights.bin"), "short_weights.bin"


def external_folder(folder):
    (folder / "a_folder.bin").mkdir(exist_ok=True)
    return _external(folder, "external_folder.onnx", "a_folder.bin"), "a_folder.bin"


def external_unknown_key(folder):
    """Valid: an external-data entry with a key the spec does not define, which onnx ignores (and
    warned of on stderr, beside the tool's own lines)."""
    w1 = weights()[0]
    (folder / "key_weights.bin").write_bytes(w1.tobytes())
    path = _external(folder, "external_unknown_key.onnx", "key_weights.bin")
    model = onnx.load(str(path), load_external_data=False)
    model.graph.initializer[0].external_data.add(key="foo", value="bar")
    return _save(model, path), None


def external_ok(folder):
    """Valid: weights in a file next to the model."""
    w1 = weights()[0]
    (folder / "good_weights.bin").write_bytes(w1.tobytes())
    return _external(folder, "external_ok.onnx", "good_weights.bin"), None


CASES = [
    dangling_input, missing_required_input, empty_required_input, missing_initializer, cycle, duplicate_node_output, duplicate_graph_output,
    duplicate_initializer, output_overwrites_initializer, zero_dim_input, negative_dim_input,
    zero_size_weight, negative_dim_weight, shape_disagrees_with_weights, dims_disagree_with_data,
    int_weights, int_tensor_short_data, float16_model, custom_domain, local_function, recursive_function, control_if,
    control_loop, control_loop_on_constants, control_scan, deep_chain, constant_output,
    output_is_input, huge_constant_of_shape, huge_declared_layer, nan_weights, string_weights,
    unknown_input_type, string_tensor_without_strings, no_opset, future_ir, truncated, random_bytes, empty_file, deep_nested_subgraphs,
    external_absolute, external_dotdot, external_symlink_out, external_missing, external_short,
    external_folder, external_unknown_key, external_ok,
]


def build_all(folder: Path) -> dict[str, tuple[Path, str | None]]:
    folder.mkdir(parents=True, exist_ok=True)
    return {make.__name__: make(folder) for make in CASES}


if __name__ == "__main__":
    for name, (path, expected) in build_all(Path(sys.argv[1])).items():
        print(f"{path}\t{'valid' if expected is None else 'refused: ' + expected}")
