"""Every third-party model in ../shared/realmodels imports and matches onnxruntime, or is refused."""

import csv

import pytest

from regionaudit.bench.models import REALMODELS  # ../shared/realmodels beside the checkout
from regionaudit.errors import RejectedModel
from regionaudit.importer import import_model

REASONS = {  # what a refusal must name, by file
    "eran_ffnn_sigmoid_6x200.onnx": "not piecewise linear: Sigmoid .* \\+2 more",
    "marabou_tanh_test.onnx": "not piecewise linear: Tanh 'model/model/fc_1/Tanh', Tanh 'model/model/fc_2/Tanh'",
    "marabou_multi_input_add.onnx": "2 inputs .*'X1', 'X2'",
}


def _rows():
    manifest = REALMODELS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


ROWS = _rows()
ABSENT = "../shared/realmodels not present (third-party models are not shipped)"


def _expecting(expect: str) -> list:
    """The manifest's rows that expect `expect`; one skipped case naming the folder where it is absent."""
    if not ROWS:
        return [pytest.param(None, id="no-realmodels", marks=pytest.mark.skip(reason=ABSENT))]
    return [pytest.param(r, id=r["file"]) for r in ROWS if r["expect"] == expect]


def _model(name: str):
    path = REALMODELS / name
    if not path.is_file():
        pytest.skip(f"{name} not present in ../shared/realmodels (third-party models are not shipped)")
    return path


@pytest.mark.parametrize("row", _expecting("ok"))
def test_ok_models_import_and_match_onnxruntime(row):
    imported = import_model(REALMODELS / row["file"])
    net = imported.network
    assert imported.validation["reference"] == "onnxruntime"
    assert imported.validation["max_rel_err"] < 1e-5
    assert sum(1 for n in net.nodes if n.kind == "relu") == int(row["relu_nodes"])
    assert 0 < imported.params <= int(row["params"])  # the manifest also counts integer shape tensors
    assert imported.opset == int(row["opset"])
    assert len(imported.nodes) == len(net.nodes)
    declared = [d for d in row["inputs"].split(":")[-2].split("x")]
    assert len(net.graph_input_shape) == len(declared)


@pytest.mark.parametrize("row", _expecting("reject"))
def test_reject_models_are_refused_with_the_reason(row):
    with pytest.raises(RejectedModel, match=REASONS[row["file"]]) as info:
        import_model(REALMODELS / row["file"])
    assert "\n" not in str(info.value)


def test_softmax_last_layer_note():
    imported = import_model(_model("marabou_softmax_last_layer.onnx"))
    assert any("final Softmax" in n and "stripped" in n for n in imported.notes)


def test_second_output_can_be_chosen():
    path = _model("marabou_one_input_two_branches.onnx")
    first = import_model(path)
    second = import_model(path, output_name="add1")
    assert first.network.output_name == "Y" and second.network.output_name == "add1"
    assert second.network.input_shape == (2, 6) == second.network.graph_input_shape
    assert second.validation["max_rel_err"] < 1e-5
