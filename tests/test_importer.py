"""The public entry point: signature rules, records, options, and refusals of broken files."""

import dataclasses
import re

import numpy as np
import onnx
import pytest
import torch
from conftest import f32, make_model
from onnx import TensorProto, helper, numpy_helper

from regionaudit.errors import BadData, BadOption, RejectedModel
from regionaudit.importer import ImportedModel, import_model


def _save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _mlp(input_shape, opset=13, **kw):
    k = input_shape[-1] if isinstance(input_shape[-1], int) else 4
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"], name="bias"),
        helper.make_node("Relu", ["a"], ["y"], name="relu1"),
    ]
    return make_model(nodes, input_shape, {"W": f32(k, 3), "b": f32(3, seed=1)}, opset, **kw)


# --- signature ----------------------------------------------------------------------------------

@pytest.mark.parametrize("declared,probe,graph", [
    (["N", 4], (4,), (1, 4)),
    ([1, 4], (4,), (1, 4)),
    ([4], (4,), (4,)),
    ([1], (1,), (1,)),
    ([3, 4], (3, 4), (3, 4)),
    ([None, 2, 4], (2, 4), (1, 2, 4)),
])
def test_batch_axis_rules(tmp_path, declared, probe, graph):
    imported = import_model(_save(_mlp(declared), tmp_path))
    assert imported.network.input_shape == probe
    assert imported.network.graph_input_shape == graph


def test_dynamic_dims_need_input_shape(tmp_path):
    path = _save(_mlp(["N", "T", 4]), tmp_path)
    with pytest.raises(RejectedModel, match=r"input 'x' has dynamic dims \(T,4, batch axis excluded\); pass --input-shape"):
        import_model(path)
    with pytest.raises(RejectedModel, match=r"--input-shape 5,3 does not fit input 'x' declared as \(T,4\)"):
        import_model(path, input_shape=(5, 3))
    imported = import_model(path, input_shape=(5, 4))
    assert imported.network.input_shape == (5, 4) and imported.network.graph_input_shape == (1, 5, 4)


def test_input_shape_must_fit_fixed_dims(tmp_path):
    path = _save(_mlp([1, 4]), tmp_path)
    assert import_model(path, input_shape=(4,)).network.input_shape == (4,)
    with pytest.raises(RejectedModel, match="does not fit"):
        import_model(path, input_shape=(5,))
    with pytest.raises(RejectedModel, match="does not fit"):
        import_model(path, input_shape=(1, 4))


def test_initializers_listed_as_inputs_are_constants(tmp_path):
    imported = import_model(_save(_mlp([1, 4], opset=9, inputs_too=True), tmp_path))
    assert imported.network.input_name == "x"


def test_two_real_inputs_are_refused_by_name(tmp_path):
    model = _mlp([1, 4])
    model.graph.input.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [1, 4]))
    with pytest.raises(RejectedModel, match="2 inputs \\('x', 'other'\\)"):
        import_model(_save(model, tmp_path))


def test_integer_input_is_refused(tmp_path):
    model = _mlp([1, 4])
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    with pytest.raises(RejectedModel, match="INT64"):
        import_model(_save(model, tmp_path))


def test_output_name_picks_an_output_and_unknown_lists_them(tmp_path):
    model = _mlp([1, 4], outputs=("y", "a"))
    path = _save(model, tmp_path)
    first = import_model(path)
    assert first.network.output_name == "y"
    assert first.notes == ["the graph has 2 outputs (y, a); the analysis is on the first, 'y' (--output-name picks another)"]
    imported = import_model(path, output_name="a")
    assert imported.network.output_name == "a" and imported.network.neurons == 0 and imported.notes == []
    with pytest.raises(RejectedModel, match="outputs are: y, a"):
        import_model(path, output_name="nope")


def test_output_that_ignores_the_input_is_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["c"], ["y"])]
    with pytest.raises(RejectedModel, match="does not depend on the graph input"):
        import_model(_save(make_model(nodes, [1, 2], {"c": f32(2)}), tmp_path))


# --- the result ---------------------------------------------------------------------------------

def test_imported_model_fields_and_node_records(tmp_path):
    model = _mlp(["N", 4])
    model.doc_string = "a tiny MLP"
    model.producer_version = "1.0"
    path = _save(model, tmp_path)
    imported = import_model(path)
    assert isinstance(imported, ImportedModel) and dataclasses.is_dataclass(imported)
    assert imported.path == str(path)
    assert len(imported.sha256) == 64
    assert imported.params == 4 * 3 + 3
    assert imported.opset == 13
    assert imported.producer == "regionaudit-tests 1.0"
    assert imported.doc_string == "a tiny MLP"
    assert imported.notes == [] and imported.network.notes is imported.notes
    assert set(imported.validation) == {"max_abs_err", "max_rel_err", "samples", "reference", "dtype"}
    assert imported.validation["dtype"] == "float64"
    assert imported.validation["samples"] == 8
    assert [r["kind"] for r in imported.nodes] == ["input", "matmul", "relu"]
    rec = imported.nodes[2]
    assert rec == {"id": 2, "name": "relu1", "kind": "relu", "op_type": "Relu", "inputs": [1], "shape": [1, 3],
                   "units": 3, "params": 0, "macs": 3, "detail": ""}
    assert imported.nodes[1]["params"] == 15 and imported.nodes[1]["macs"] == 12
    assert imported.nodes[1]["op_type"] == "MatMul+Add" and imported.nodes[1]["detail"] == "4x3"


@pytest.mark.parametrize("op,c", [("Div", 2.5), ("Sub", 0.5), ("Mul", -2.0), ("Add", -0.25)])
def test_a_scalar_constant_is_a_tensor_that_every_analysis_reads(tmp_path, op, c):
    """x op c with a 0-d constant (input normalisation: (x - mean) / std), then a ReLU: its
    boundaries are the planes x_i = -add/mul, so the distance from x is min |x_i + add/mul| and a
    segment crosses one knot per coordinate that changes side."""
    from regionaudit.analysis.density import trace_segments
    from regionaudit.analysis.distance import boundary_distances

    nodes = [helper.make_node(op, ["x", "c"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    path = _save(make_model(nodes, [1, 6], {"c": np.array(c, np.float32)}), tmp_path)
    network = import_model(path).network
    scale = network.nodes[1]
    assert all(v is None or isinstance(v, torch.Tensor) for v in (scale.mul, scale.add))
    mul = {"Div": 1 / np.float32(c), "Mul": np.float32(c)}.get(op, 1.0)
    add = {"Sub": -np.float32(c), "Add": np.float32(c)}.get(op, 0.0)
    plane = -float(add) / float(mul)
    x = torch.tensor([[0.9, -0.3, 1.4, 0.2, -1.1, 0.6]], dtype=torch.float64)
    (nearest,) = boundary_distances(network, x)
    assert nearest.distance == pytest.approx(float((x - plane).abs().min()), rel=1e-12)
    b = torch.tensor([[-0.7, 0.55, -0.2, -1.3, 0.45, -1.6]], dtype=torch.float64)
    (trace,) = trace_segments(network, x, b)
    crossed = int(((x - plane) * (b - plane) < 0).sum())
    assert crossed >= 3 and trace.knots == crossed


def test_unnamed_nodes_get_stable_names(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    path = _save(make_model(nodes, [1, 3]), tmp_path)
    names = [n.name for n in import_model(path).network.nodes]
    assert names == ["x", "Relu_r", "Relu_y"] == [n.name for n in import_model(path).network.nodes]


def test_duplicate_node_names_are_made_unique(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="act"), helper.make_node("Relu", ["r"], ["y"], name="act")]
    names = [n.name for n in import_model(_save(make_model(nodes, [1, 3]), tmp_path)).network.nodes]
    assert names == ["x", "act", "act#2"]


def test_check_inputs_are_compared_too(tmp_path):
    path = _save(_mlp([1, 4]), tmp_path)
    imported = import_model(path, check_inputs=np.ones((3, 4)))
    assert imported.validation["samples"] == 11
    with pytest.raises(BadData, match="do not fit"):
        import_model(path, check_inputs=np.ones((3, 5)))


def test_seed_changes_the_random_check_inputs(tmp_path):
    """The same seed checks the same inputs (the same float32 rounding errors); another seed, others."""
    path = _save(_mlp([1, 4]), tmp_path)
    a, b = import_model(path, seed=0), import_model(path, seed=0)
    assert a.validation == b.validation
    assert import_model(path, seed=1).validation["max_abs_err"] != a.validation["max_abs_err"]


def test_dtype_and_device(tmp_path):
    path = _save(_mlp([1, 4]), tmp_path)
    imported = import_model(path, dtype=torch.float32, device="auto")
    net = imported.network
    assert net.dtype == torch.float32 and net.nodes[1].weight.dtype == torch.float32
    assert net.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert imported.validation["dtype"] == "float32" and imported.validation["max_rel_err"] < 1e-5
    if not torch.cuda.is_available():
        with pytest.raises(BadOption, match="CUDA"):
            import_model(path, device="cuda")
    with pytest.raises(BadOption):
        import_model(path, device="tpu-ish")


def test_float64_model_checked_with_reference_evaluator(tmp_path):
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, [1, 1, 5, 5], {"W": w}, elem=TensorProto.DOUBLE)
    imported = import_model(_save(model, tmp_path))
    assert imported.validation["max_rel_err"] < 1e-12
    assert imported.validation["reference"] in ("onnxruntime", "onnx.reference")


def test_validation_failure_is_refused(tmp_path, monkeypatch):
    from regionaudit.importer import check

    path = _save(_mlp([1, 4]), tmp_path)
    monkeypatch.setattr(check, "MAX_REL_ERR", -1.0)
    with pytest.raises(RejectedModel, match="disagrees with onnxruntime: max relative error"):
        import_model(path)


# --- broken files -------------------------------------------------------------------------------

def _one_line_refusal(path, match):
    with pytest.raises(RejectedModel, match=match) as info:
        import_model(path)
    assert "\n" not in str(info.value)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _one_line_refusal(path, "not a readable ONNX file|not an ONNX model")


def test_text_file(tmp_path):
    path = tmp_path / "readme.onnx"
    path.write_text("this is not a model\n")
    _one_line_refusal(path, "not a readable ONNX file|not an ONNX model")


def test_missing_file(tmp_path):
    _one_line_refusal(tmp_path / "nope.onnx", "no such file")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9, 0.99])
def test_truncated_protobuf(tmp_path, fraction):
    raw = _mlp([1, 4]).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _one_line_refusal(path, "truncated or corrupt|not an ONNX model|never defined|no outputs|empty")


def test_empty_graph(tmp_path):
    graph = helper.make_graph([], "empty", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])])
    _one_line_refusal(_save(helper.make_model(graph), tmp_path), "empty")


def test_unsupported_op_mid_graph(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Erf", ["r"], ["e"], name="erf"),
             helper.make_node("Relu", ["e"], ["y"])]
    _one_line_refusal(_save(make_model(nodes, [1, 3]), tmp_path), "refused \\(opset 13\\): not piecewise linear: Erf 'erf'")


def test_undefined_tensor(tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    _one_line_refusal(_save(make_model(nodes, [1, 3]), tmp_path), "tensor 'ghost' used by node 'add' is never defined")


@pytest.mark.parametrize("node,opset,unknown", [
    (helper.make_node("Squeeze", ["r"], ["y"], axes=[0]), 13, "axes"),  # axes became an input in 13
    (helper.make_node("ReduceSum", ["r"], ["y"], axes=[1]), 13, "axes"),
    (helper.make_node("Clip", ["r"], ["y"], max=0.5), 11, "max"),  # min / max became inputs in 11
    (helper.make_node("LeakyRelu", ["r"], ["y"], alpha=0.1, beta=0.5), 13, "beta"),  # no such attribute
])
def test_an_attribute_the_op_does_not_take_in_its_opset_is_refused(tmp_path, node, opset, unknown):
    """onnxruntime refuses such a node; so does the import, naming it and the attribute, rather
    than reading the attribute (or ignoring it) as another opset would."""
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), node], [1, 3], opset=opset)
    _one_line_refusal(_save(model, tmp_path), f"'{node.op_type}_y' .* has attribute '{unknown}'")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_weights(tmp_path, bad):
    model = _mlp([1, 4])
    w = numpy_helper.to_array(model.graph.initializer[0]).copy()
    w[1, 1] = bad
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "W"))
    _one_line_refusal(_save(model, tmp_path), "tensor 'W' holds NaN or infinite values")


def test_absurd_tensor_size(tmp_path):
    model = _mlp([1, 4])
    huge = onnx.TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[2**16, 2**16])
    model.graph.initializer.append(huge)
    _one_line_refusal(_save(model, tmp_path), "huge.*elements|parameters")


def test_absurd_input_shape(tmp_path):
    _one_line_refusal(_save(_mlp([1, 2**16, 2**16, 4]), tmp_path), "too large")


def test_old_opset_is_refused(tmp_path):
    _one_line_refusal(_save(_mlp([1, 4], opset=6), tmp_path), "opset 6 is older than 7")


def test_a_name_that_is_not_utf8_is_refused_as_damage(tmp_path):
    """A flipped byte in a tensor name: protobuf hands it back as bytes, which read as the
    tensor 'b'\\x91...'' being never defined."""
    model = _mlp([1, 4])
    model.graph.initializer[0].name = model.graph.node[0].input[1] = "weights_here"
    path = tmp_path / "damaged.onnx"
    path.write_bytes(model.SerializeToString().replace(b"weights_here", b"\x91eights_here"))
    _one_line_refusal(path, "the name '\ufffdeights_here' is not valid UTF-8 text")


@pytest.mark.parametrize("field,what", [("op_type", "op type"), ("domain", "domain"), ("producer_name", "producer name")])
def test_any_text_that_is_not_utf8_is_refused_as_damage(tmp_path, field, what):
    """Not only names: an op type, a domain or the producer with a flipped byte failed inside
    onnx's schema lookup or the producer line (an internal error, exit 3)."""
    model = _mlp([1, 4])
    model.producer_name = "PRODX"
    if field == "domain":
        model.graph.node[-1].domain = "ai.onnx"
        text = b"ai.onnx"
    else:
        text = b"PRODX" if field == "producer_name" else model.graph.node[-1].op_type.encode()
    data = model.SerializeToString()
    assert data.count(text) >= 1
    damaged = text[:-1] + b"\xff"
    path = tmp_path / "damaged.onnx"
    path.write_bytes(data.replace(text, damaged))
    _one_line_refusal(path, re.escape(f"the {what} '{damaged.decode('utf-8', errors='replace')}' is not valid UTF-8 text (the file is damaged)"))


def test_an_opset_newer_than_onnx_knows_is_refused(tmp_path):
    """Opset 99 does not exist: before, it imported with today's op definitions."""
    model = _mlp([1, 4])
    model.opset_import[0].version = 99
    _one_line_refusal(_save(model, tmp_path), f"opset 99 is newer than {onnx.defs.onnx_opset_version()}")


def _external(tmp_path, location):
    model = _mlp([1, 4])
    w = model.graph.initializer[0]
    data = numpy_helper.to_array(w).tobytes()
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in {"location": location, "offset": "0", "length": str(len(data))}.items():
        w.external_data.append(onnx.StringStringEntryProto(key=k, value=v))
    return model, data


def test_external_data_inside_the_folder_loads(tmp_path):
    model, data = _external(tmp_path, "weights.bin")
    (tmp_path / "weights.bin").write_bytes(data)
    assert import_model(_save(model, tmp_path)).params == 15


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin", "/etc/passwd"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    inner = tmp_path / "models"
    inner.mkdir()
    model, data = _external(tmp_path, location)
    (tmp_path / "secret.bin").write_bytes(data)
    _one_line_refusal(_save(model, inner), "points outside the model's folder")


def test_external_data_missing_file(tmp_path):
    model, _ = _external(tmp_path, "weights.bin")
    _one_line_refusal(_save(model, tmp_path), "is missing")
