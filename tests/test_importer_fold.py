"""Constant folding at import: Constant nodes and the Shape -> Gather -> Concat -> Reshape subgraphs
exporters write are folded, leaving only the data path."""

import numpy as np
import onnx
import pytest
import torch
from conftest import NEWEST_OPSET, f32, make_model
from converters.helpers import I64, ok
from onnx import helper, numpy_helper

from regionaudit.importer import import_model


@pytest.mark.parametrize("opset", [11, 13, NEWEST_OPSET])
def test_shape_subgraph_folds_into_reshape(convert, opset):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch's legacy exporter writes flatten."""
    unsq = (helper.make_node("Unsqueeze", ["b", "zero_axes"], ["b1"]) if opset >= 13
            else helper.make_node("Unsqueeze", ["b"], ["b1"], axes=[0]))
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["b"], axis=0),
        unsq,
        helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["f"]),
        helper.make_node("ConstantOfShape", ["target_len"], ["ones"],
                         value=helper.make_tensor("v", 1, [1], [1.0])),
        helper.make_node("Mul", ["f", "ones"], ["y"]),
    ]
    inits = {"idx": np.array(0, I64), "zero_axes": np.array([0], I64), "minus1": np.array([-1], I64),
             "target_len": np.array([24], I64)}
    imported = convert(nodes, ["N", 2, 3, 4], inits, opset)
    ok(imported)
    assert imported.network.output_shape == (1, 24)
    assert [n["kind"] for n in imported.nodes] == ["input", "relu", "reshape", "scale"]


def test_constant_nodes_fold(convert):
    nodes = [
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", 1, [3], [1.0, 2.0, 3.0])),
        helper.make_node("Constant", [], ["two"], value_float=2.0),
        helper.make_node("Mul", ["c", "two"], ["c2"]),
        helper.make_node("Sub", ["x", "c2"], ["y"]),
    ]
    imported = convert(nodes, [1, 3], opset=13)
    ok(imported)
    assert [n["kind"] for n in imported.nodes] == ["input", "scale"]


def _sparse(dense: np.ndarray, name: str, coordinates: bool) -> onnx.SparseTensorProto:
    """dense's nonzeros as a SparseTensorProto, indexed flat or by one row of coordinates each."""
    at = np.nonzero(dense.reshape(-1))[0]
    index = np.stack(np.unravel_index(at, dense.shape), 1) if coordinates else at
    values = numpy_helper.from_array(dense.reshape(-1)[at], name)
    return helper.make_sparse_tensor(values, numpy_helper.from_array(index.astype(I64), name + "_i"), dense.shape)


@pytest.mark.parametrize("coordinates", [False, True])
def test_sparse_constants_are_read_dense(tmp_path, coordinates):
    """A Constant's sparse_value and a sparse initializer are weights like any other: the import
    agrees with onnxruntime, which reads them itself (before, both were refused, the Constant with
    a message blaming its MatMul for a product of two data tensors)."""
    w = np.where(np.arange(12).reshape(4, 3) % 3 == 0, 0.0, f32(4, 3, seed=4)).astype(np.float32)
    v = np.where(np.arange(3) == 1, 0.0, f32(3, seed=5)).astype(np.float32)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Constant", [], ["w"], sparse_value=_sparse(w, "w", coordinates)),
        helper.make_node("MatMul", ["r", "w"], ["h"]),
        helper.make_node("Add", ["h", "v"], ["y"]),
    ]
    model = make_model(nodes, [1, 4], opset=13)
    model.graph.sparse_initializer.append(_sparse(v, "v", coordinates))
    path = tmp_path / "sparse.onnx"
    onnx.save(model, str(path))
    imported = import_model(path)
    ok(imported, "matmul")
    net = imported.network
    x = torch.tensor([[0.5, -1.0, 2.0, 3.0]], dtype=net.dtype)
    assert torch.allclose(net.forward(x), torch.from_numpy(np.maximum(x.numpy(), 0) @ w + v).to(net.dtype), rtol=1e-6)
