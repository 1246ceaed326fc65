"""Models torch writes with the piecewise-linear ops beyond ReLU, from both exporters: they import,
match onnxruntime, and their region counts equal the reference walk's. Exported once per module."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.walk import walk_segment
from regionaudit.importer import import_model


class MobileNetish(nn.Module):
    """Inverted residual with ReLU6: expand, depthwise, project, skip; then a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6())
        self.block = nn.Sequential(
            nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        h = self.stem(x)
        return self.head(h + self.block(h))


class Generator(nn.Module):
    """DCGAN-style: latent -> ConvTranspose stack with BatchNorm and LeakyReLU -> Tanh image."""

    def __init__(self, nz=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, 8, 4, 1, 0, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(4, 1, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


class UNetish(nn.Module):
    """Down with MaxPool, up with bilinear Resize, skip joined by Concat; nearest upsampling too."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.mid = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
        self.up_nearest = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        e = self.enc(x)
        m = self.mid(F.max_pool2d(e, 2))
        up = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=False)
        d = self.dec(torch.cat([e, up], dim=1))
        return d + self.up_nearest(F.avg_pool2d(d, 2))


class StridedMax(nn.Module):
    """Hardtanh, strided slices and torch.maximum of two branches."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(6, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h = torch.maximum(self.a(x), self.b(x))
        h = torch.cat([F.hardtanh(h[:, ::2]), F.relu6(3 * h[:, 1::2])], dim=1)
        return self.out(h)


class Assorted(nn.Module):
    """Reflect and replicate padding, Hardsigmoid, PixelShuffle, abs, clamp, amax, torch.min,
    index lists, nearest resize to a size, align_corners bilinear, einsum, repeat / expand and
    torch.where with a constant mask."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3)
        self.w = nn.Parameter(torch.randn(4, 3))
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        x = F.pad(F.pad(x, (1, 1, 1, 1), mode="reflect"), (1, 0, 0, 1), mode="replicate")
        x = self.shuffle(F.hardsigmoid(self.conv(x)) * 2 - 1).abs()
        x = torch.clamp(x - 0.2, min=0)
        x = torch.cat([x.amax(dim=1, keepdim=True), torch.min(x[:, :1], x[:, 1:2]), x[:, [1, 0]]], 1)
        x = F.interpolate(F.interpolate(x, size=(9, 7), mode="nearest"), scale_factor=2, mode="bilinear",
                          align_corners=True)
        x = torch.einsum("bi,ij->bj", x.mean(dim=(2, 3)), self.w)
        x = x.repeat(1, 2) + x.expand(x.shape[0], 3).repeat(1, 2)
        return torch.where(torch.tensor([True, False, True, False, True, False]), x, -x)


MODELS = {
    "mobilenet_relu6": (MobileNetish, (2, 6, 6)),
    "dcgan_generator": (Generator, (4, 1, 1)),
    "unet_resize_concat": (UNetish, (1, 8, 8)),
    "strided_maximum_hardtanh": (StridedMax, (6,)),
    "assorted": (Assorted, (2, 6, 6)),
}
EXPORTERS = ("legacy", "dynamo")


def _randomise_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torch_piecewise")
    out = {}
    for name, (make, shape) in MODELS.items():
        torch.manual_seed(0)
        model = make().eval()
        _randomise_bn(model)
        x = torch.randn(1, *shape)
        for exporter in EXPORTERS:
            path = folder / f"{name}_{exporter}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if exporter == "legacy":
                    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                                      dynamic_axes={"x": {0: "batch"}})
                else:
                    torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
            out[name, exporter] = (path, model, shape)
    return out


CASES = [(m, e) for m in MODELS for e in EXPORTERS]


@pytest.fixture(scope="module")
def imported(exports):
    return {key: import_model(path) for key, (path, _, _) in exports.items()}


@pytest.mark.parametrize("name,exporter", CASES)
def test_imports_and_matches_onnxruntime_and_torch(exports, imported, name, exporter):
    _, model, shape = exports[name, exporter]
    imp = imported[name, exporter]
    assert imp.validation["reference"] == "onnxruntime"
    assert imp.validation["max_rel_err"] < 1e-5, imp.validation
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = model(x).reshape(5, -1).double()
    if name == "dcgan_generator":  # the final Tanh is stripped: compare before it
        assert any("final Tanh" in n and "stripped" in n for n in imp.notes)
        want = torch.atanh(want.clamp(-1 + 1e-7, 1 - 1e-7))
        assert float((imp.network.forward(x.double()) - want).abs().max()) < 1e-3
    else:
        assert float((imp.network.forward(x.double()) - want).abs().max()) < 1e-4


KINKS = {  # IR kink kinds each model must have
    "mobilenet_relu6": {"clip"},
    "dcgan_generator": {"relu"},
    "unet_resize_concat": {"relu", "maxpool"},
    "strided_maximum_hardtanh": {"clip", "max"},
    "assorted": {"clip", "relu", "max"},
}
AFFINE = {
    "dcgan_generator": {"convtranspose"},
    "unet_resize_concat": {"resample", "concat"},
    "strided_maximum_hardtanh": {"take", "stack"},
    "assorted": {"take", "resample", "einsum", "stack"},
}


@pytest.mark.parametrize("name,exporter", CASES)
def test_ir_has_the_new_node_kinds(imported, name, exporter):
    kinds = {n.kind for n in imported[name, exporter].network.nodes}
    assert KINKS[name] <= kinds, kinds
    assert AFFINE.get(name, set()) <= kinds, kinds


@pytest.mark.parametrize("name,exporter", CASES)
def test_region_counts_equal_the_walk(imported, name, exporter):
    net = imported[name, exporter].network
    g = torch.Generator().manual_seed(11)
    a = torch.randn(2, *net.input_shape, dtype=torch.float64, generator=g)
    b = a + 0.5 * torch.randn(2, *net.input_shape, dtype=torch.float64, generator=g)  # short: the walk is slow
    traces = trace_segments(net, a, b)
    for s, d in enumerate(traces):
        w = walk_segment(net, a[s], b[s])
        assert d.regions == w.regions
        assert d.knots_per_layer == w.knots_per_layer
        assert float((d.t - w.t).abs().max()) < 1e-9
    assert sum(d.knots for d in traces) > 0


def test_both_exporters_give_the_same_region_counts(imported):
    for name in MODELS:
        nets = [imported[name, e].network for e in EXPORTERS]
        g = torch.Generator().manual_seed(5)
        a = torch.randn(3, *nets[0].input_shape, dtype=torch.float64, generator=g)
        b = torch.randn(3, *nets[0].input_shape, dtype=torch.float64, generator=g)
        counts = [[t.regions for t in trace_segments(net, a, b)] for net in nets]
        assert counts[0] == counts[1], name


@pytest.mark.parametrize("opset", [9, 10])
def test_older_opsets_upsample_and_resize_10(tmp_path, opset):
    """The legacy exporter writes Upsample (opset 9) and Resize-10 for interpolation, and Clip with
    attributes for ReLU6 before opset 11."""
    for name in ("unet_resize_concat", "mobilenet_relu6"):
        make, shape = MODELS[name]
        torch.manual_seed(0)
        model = make().eval()
        path = tmp_path / f"{name}_{opset}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.randn(1, *shape),), str(path), dynamo=False, opset_version=opset,
                              input_names=["x"], dynamic_axes={"x": {0: "batch"}})
        imp = import_model(path)
        assert imp.opset == opset
        assert imp.validation["reference"] == "onnxruntime" and imp.validation["max_rel_err"] < 1e-5
        net = imp.network
        assert KINKS[name] | AFFINE.get(name, set()) <= {n.kind for n in net.nodes}
        g = torch.Generator().manual_seed(1)
        a = torch.randn(1, *net.input_shape, dtype=torch.float64, generator=g)
        b = torch.randn(1, *net.input_shape, dtype=torch.float64, generator=g)
        assert trace_segments(net, a, b)[0].regions == walk_segment(net, a[0], b[0]).regions > 1
