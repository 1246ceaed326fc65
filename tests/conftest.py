"""Session-scoped torch exports for the importer tests: made once, shared by every test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn


ROOT = Path(__file__).resolve().parents[1]
START_DIR = Path.cwd()


def _hypothesis_home_outside_the_checkout() -> None:
    """hypothesis keeps a `.hypothesis` folder in the folder pytest starts in (written while the
    fuzz tests are collected, before any test's own folder exists); give it a temporary one."""
    from hypothesis.configuration import set_hypothesis_home_dir

    home = tempfile.mkdtemp(prefix="regionaudit-hypothesis-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    set_hypothesis_home_dir(home)


_hypothesis_home_outside_the_checkout()


def folder_entries(folder: Path) -> set[str]:
    """Names in `folder`, ignored files (reports, caches) included: git's view would hide them."""
    try:
        return {e.name for e in os.scandir(folder)}
    except FileNotFoundError:
        return set()


def left_behind(before: dict[Path, set[str]]) -> list[str]:
    return sorted(str(folder / name) for folder, names in before.items() for name in folder_entries(folder) - names)


@pytest.fixture(autouse=True)
def own_working_dir(tmp_path, monkeypatch):
    """Every test runs in its own empty folder, so none reads or writes the folder pytest was
    started in or the repository root; a test that leaves a file there fails."""
    watched = {ROOT, ROOT / "tests", ROOT / "sample_models", START_DIR}
    before = {folder: folder_entries(folder) for folder in watched}
    monkeypatch.chdir(tmp_path)
    yield
    new = left_behind(before)
    if new:
        pytest.fail(f"the test left files outside its tmp_path: {new}", pytrace=False)


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def random_bn(c, shift=0.5):
    """BatchNorm2d in eval use with non-trivial statistics, so it is more than the identity."""
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-shift, shift)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-shift, shift)
    return bn


def _cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), random_bn(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3), random_bn(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 5),
    )


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), random_bn(8), nn.LeakyReLU(0.1))
        self.block = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, groups=2), random_bn(8), nn.LeakyReLU(0.1), nn.Conv2d(8, 8, 3, padding=1)
        )
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), random_bn(16), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))

    def forward(self, x):
        h = self.stem(x)
        h = torch.relu(h + self.block(h))
        return self.head(self.down(h))


def _softmax_mlp():
    return nn.Sequential(_mlp(), nn.Softmax(dim=1))


TORCH_MODELS = {
    "mlp": (_mlp, (6,)),
    "cnn": (_cnn, (3, 12, 12)),
    "residual": (_Residual, (3, 10, 10)),
    "softmax_mlp": (_softmax_mlp, (6,)),
}


def export_with_batch_axis(module: torch.nn.Module, input_shape, path) -> None:
    """`module` written by torch's TorchScript exporter with a batch axis, as many users' files are
    written (its deprecation notices silenced: they are about torch, not the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.randn(1, *input_shape), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "b"}})


@pytest.fixture(scope="session")
def torch_exports(tmp_path_factory):
    """{(name, exporter): (path, torch module, input shape)} for both torch.onnx exporters."""
    folder = tmp_path_factory.mktemp("torch_exports")
    out = {}
    for name, (make, shape) in TORCH_MODELS.items():
        torch.manual_seed(0)
        model = make().eval()
        x = torch.randn(1, *shape)
        for exporter in ("legacy", "dynamo"):
            path = folder / f"{name}_{exporter}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if exporter == "legacy":
                    # PRESERVE keeps BatchNormalization apart from the Conv before it
                    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                                      dynamic_axes={"x": {0: "batch"}}, training=torch.onnx.TrainingMode.PRESERVE)
                else:
                    torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
            out[name, exporter] = (path, model, shape)
    return out


# --- hand-built ONNX graphs -----------------------------------------------------------------

NEWEST_OPSET = onnx.defs.onnx_opset_version()


def make_model(nodes, input_shape, inits=None, opset=13, elem=onnx.TensorProto.FLOAT, outputs=("y",),
               inputs_too=False):
    """A one-input model from onnx.helper nodes; `inits` maps names to numpy arrays."""
    inits = inits or {}
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    inputs = [helper.make_tensor_value_info("x", elem, input_shape)]
    if inputs_too:  # older exporters also list initializers as graph inputs
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in tensors]
    graph = helper.make_graph(nodes, "case", inputs, [helper.make_tensor_value_info(o, elem, None) for o in outputs],
                              initializer=tensors)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="regionaudit-tests")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


@pytest.fixture
def convert(tmp_path):
    """convert(nodes, input_shape, inits, opset, **import_kwargs) -> ImportedModel, checked vs ORT."""
    from regionaudit.importer import import_model

    def run(nodes, input_shape, inits=None, opset=13, model_kwargs=None, **kwargs):
        model = make_model(nodes, input_shape, inits, opset, **(model_kwargs or {}))
        path = tmp_path / f"case_{len(list(tmp_path.iterdir()))}.onnx"
        onnx.save(model, str(path))
        return import_model(path, **kwargs)

    return run


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
