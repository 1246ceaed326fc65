"""Models exported by torch.onnx, both exporters (TorchScript `dynamo=False` and `dynamo=True`)."""

import pytest
import torch

from regionaudit.importer import import_model

CASES = [(name, exporter) for name in ("mlp", "cnn", "residual", "softmax_mlp") for exporter in ("legacy", "dynamo")]
KINDS = {  # IR node kinds each model must contain
    "mlp": {"matmul", "relu"},
    "cnn": {"conv", "relu", "maxpool", "avgpool", "matmul"},
    "residual": {"conv", "relu", "add", "globalavgpool", "matmul"},
    "softmax_mlp": {"matmul", "relu"},
}


@pytest.mark.parametrize("name,exporter", CASES)
def test_torch_export_imports_and_matches(torch_exports, name, exporter):
    path, module, shape = torch_exports[name, exporter]
    imported = import_model(path)
    net = imported.network
    assert imported.validation["reference"] == "onnxruntime"
    assert imported.validation["max_rel_err"] < 1e-6
    assert net.input_shape == shape
    assert KINDS[name] <= {n.kind for n in net.nodes}
    if exporter == "legacy" and name in ("cnn", "residual"):
        assert "BatchNormalization" in {r["op_type"] for r in imported.nodes}
    # the IR also agrees with torch itself (float32 there, so a looser bound)
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(x)
        if name == "softmax_mlp":
            expected = module[0](x)  # the analysis is on the logits
    got = net.forward(x.double())
    assert torch.allclose(got.float(), expected.reshape(5, -1), rtol=1e-4, atol=1e-5)


def test_residual_slopes_and_softmax_note(torch_exports):
    for exporter in ("legacy", "dynamo"):
        res = import_model(torch_exports["residual", exporter][0]).network
        slopes = sorted({round(float(n.slope), 6) for n in res.nodes if n.kind == "relu"})
        assert slopes == [0.0, 0.1]
        notes = import_model(torch_exports["softmax_mlp", exporter][0]).notes
        assert len(notes) == 1 and notes[0].startswith("final Softmax") and notes[0].endswith("on logits")


def test_units_count_relu_type_elements(torch_exports):
    net = import_model(torch_exports["mlp", "dynamo"][0]).network
    assert net.neurons == 32 and net.maxpool_windows == 0
    cnn = import_model(torch_exports["cnn", "legacy"][0]).network
    assert cnn.neurons == 8 * 12 * 12 + 8 * 4 * 4 and cnn.maxpool_windows == 8 * 6 * 6
