"""Property: whatever is done to a valid model (bytes, fields, shapes, attributes), the importer
either imports it, checked against onnxruntime, or refuses it with the project's own error: never
another exception, a crash or a hang. Each case runs in a child process (`fuzzcase.Worker`), so a
crash in native code is seen and reported instead of ending the test run.

Derandomised and bounded, so CI runs the same cases every time in well under a minute.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import hostile
from fuzzcase import Worker

EXAMPLES = 300


def _cnn() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "k"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "kb"),
        numpy_helper.from_array(rng.standard_normal((36, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([1, 36], np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "k", "kb"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "flat"], ["f"], name="reshape"),
        helper.make_node("MatMul", ["f", "w"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


BASES = [hostile.valid_mlp(0).SerializeToString(), _cnn().SerializeToString()]
OPS = ["Relu", "Gemm", "MatMul", "Add", "Conv", "MaxPool", "AveragePool", "Reshape", "Identity", "Flatten",
       "Transpose", "Concat", "Slice", "Tanh", "Softmax", "LeakyRelu", "Pad", "Loop", "Custom", ""]
ATTRS = ["transA", "transB", "alpha", "beta", "axis", "perm", "kernel_shape", "pads", "strides", "dilations",
         "group", "auto_pad", "ceil_mode", "allowzero", "value"]
INTS = st.one_of(st.integers(-3, 8), st.sampled_from([0, -1, 2**31, 2**62, 10**9]))


def _names(model: onnx.ModelProto) -> list[str]:
    g = model.graph
    return sorted({*(t.name for t in g.initializer), *(i.name for i in g.input), *(o for n in g.node for o in n.output)})


@st.composite
def field_mutation(draw, model: onnx.ModelProto) -> None:
    g = model.graph
    kind = draw(st.sampled_from(["op", "attr", "input", "output", "dims", "dtype", "raw", "graph_input",
                                 "opset", "ir", "drop_node", "dup_node", "graph_output"]))
    node = g.node[draw(st.integers(0, len(g.node) - 1))] if g.node else None
    if kind == "op" and node is not None:
        node.op_type = draw(st.sampled_from(OPS))
    elif kind == "attr" and node is not None:
        name = draw(st.sampled_from(ATTRS))
        value = draw(st.one_of(INTS, st.floats(allow_nan=True, allow_infinity=True, width=32),
                               st.lists(INTS, min_size=1, max_size=6), st.sampled_from(["SAME_UPPER", "VALID", "\x00"])))
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute(name, value)])
    elif kind == "input" and node is not None:
        names = _names(model) + ["", "nowhere"]
        new = list(node.input)
        op = draw(st.sampled_from(["rename", "drop", "add"]))
        if op == "rename" and new:
            new[draw(st.integers(0, len(new) - 1))] = draw(st.sampled_from(names))
        elif op == "drop" and new:
            new.pop(draw(st.integers(0, len(new) - 1)))
        else:
            new.append(draw(st.sampled_from(names)))
        del node.input[:]
        node.input.extend(new)
    elif kind == "output" and node is not None:
        node.output[0] = draw(st.sampled_from(_names(model) + ["fresh", ""]))
    elif kind in ("dims", "dtype", "raw") and g.initializer:
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        if kind == "dims":
            dims = draw(st.lists(INTS, min_size=0, max_size=5))
            del t.dims[:]
            t.dims.extend(dims)
        elif kind == "dtype":
            t.data_type = draw(st.integers(0, 24))
        else:
            cut = draw(st.integers(0, len(t.raw_data)))
            t.raw_data = t.raw_data[:cut] + draw(st.binary(max_size=16))
    elif kind == "graph_input":
        tt = g.input[0].type.tensor_type
        if draw(st.booleans()):
            tt.elem_type = draw(st.integers(0, 24))
        else:
            dims = draw(st.lists(st.one_of(INTS, st.just("N")), max_size=5))
            tt.ClearField("shape")
            for d in dims:
                dim = tt.shape.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d
    elif kind == "opset":
        model.opset_import[0].version = draw(st.integers(0, 30))
    elif kind == "ir":
        model.ir_version = draw(st.integers(0, 20))
    elif kind == "drop_node" and len(g.node) > 1:
        del g.node[draw(st.integers(0, len(g.node) - 1))]
    elif kind == "dup_node" and node is not None:
        copy = g.node.add()
        copy.CopyFrom(node)
    elif kind == "graph_output":
        g.output[0].name = draw(st.sampled_from(_names(model) + ["nowhere"]))


@st.composite
def mutated_model(draw) -> bytes:
    data = draw(st.sampled_from(BASES))
    model = onnx.ModelProto()
    model.ParseFromString(data)
    for _ in range(draw(st.integers(1, 3))):
        draw(field_mutation(model))
    data = model.SerializeToString()
    if draw(st.booleans()):  # and then the bytes themselves
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["set", "cut", "insert"]))
            pos = draw(st.integers(0, max(0, len(raw) - 1)))
            if op == "set" and raw:
                raw[pos] = draw(st.integers(0, 255))
            elif op == "cut":
                del raw[pos:pos + draw(st.integers(1, 64))]
            else:
                raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        data = bytes(raw)
    return data


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("fuzz"), timeout_s=120)
    yield w
    w.close()


def test_the_unmutated_models_import(worker):
    for data in BASES:
        outcome, detail = worker.run(data)
        assert outcome == "imported", detail


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=mutated_model())
def test_mutated_models_import_or_are_refused(worker, data):
    outcome, detail = worker.run(data)
    assert outcome in ("imported", "refused"), f"{outcome}: {detail}"
