"""The benchmark's models: sample models, random MLPs, the CIFAR-size real models, a large conv
net built here, and conv nets of common verification shapes built here. Each spec says how to
load the network and where its probes lie."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from regionaudit import ir
from regionaudit.errors import RegionAuditError
from regionaudit.files import same_file
from regionaudit.importer import import_model

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLES = REPO / "sample_models"
REALMODELS = REPO.parent / "shared" / "realmodels"
# A GPU traces a batch of segments in about the time of one: with the CPU's 4 segments it would time
# its launch latency, not its throughput. The GPU subset measures the CIFAR-size nets on this many.
GPU_PROBES = 32


@dataclass
class ModelSpec:
    name: str
    load: Callable[[torch.dtype, str], ir.Network]
    segments: int = 8  # density: segments between seeded Gaussian (or data) points
    fraction: float = 1.0  # each segment is a -> a + fraction (b - a): large nets take a piece
    points: int = 4  # boundary distance: points
    walk_segments: int = 1  # segments also traced by the reference walk (the first ones)
    data: Path | None = None  # rows to draw probes from; Gaussian rows when None
    scale: float = 1.0  # Gaussian probes' standard deviation
    tags: tuple[str, ...] = ()  # "tiny", "gpu": the subsets that include this model
    gpu_probes: int = 0  # in the GPU subset, this many segments and points (0: as above)

    def available(self) -> str | None:
        """None when the model can be built here, else why it is skipped."""
        return None


@dataclass
class FileSpec(ModelSpec):
    path: Path | None = None

    def available(self):
        return None if self.path and self.path.exists() else f"{self.path} not found"


@dataclass
class UserFileSpec(FileSpec):
    """An ONNX file named on the command line (`--onnx`): measured where it imports."""

    input_shape: tuple[int, ...] | None = None
    checked: bool = field(default=False, repr=False)  # `available` imports the file once
    why: str | None = field(default=None, repr=False)

    def available(self):
        if not self.checked:
            self.why, self.checked = self._check(), True
        return self.why

    def _check(self) -> str | None:
        try:
            import_model(str(self.path), input_shape=self.input_shape)
        except RegionAuditError as exc:
            why = str(exc)  # named by the path as given, as its rows are: two files may share a name
            if why.startswith(str(self.path)):
                return why
            return f"{self.path}{why[len(self.path.name):]}" if why.startswith(f"{self.path.name}:") else f"{self.path}: {why}"
        return None


def _onnx(path: Path, input_shape: tuple[int, ...] | None = None):
    return lambda dtype, device: import_model(str(path), input_shape=input_shape, dtype=dtype, device=device).network


def distinct_files(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """The paths that name different files, each as first given, and (path, the first path) for
    each that names a file again (`x.onnx` and `./x.onnx`, a symbolic or a hard link to it:
    `files.same_file`): measured once. (A missing one is reported when it is read.)"""
    kept: list[Path] = []
    again = []
    for p in paths:
        first = next((q for q in kept if same_file(p, q)), None)
        if first is None:
            kept.append(p)
        else:
            again.append((p, first))
    return kept, again


def user_files(paths: list[Path], pairs: int, points: int, fraction: float,
               input_shape: tuple[int, ...] | None = None) -> list[ModelSpec]:
    """A user's ONNX files as benchmark models, each named by its path as given: `pairs` segments
    between seeded Gaussian points, each cut to `fraction` of its length (the first also traced by
    the reference walk), and `points` points."""
    return [UserFileSpec(str(p), _onnx(Path(p), input_shape), segments=pairs, fraction=fraction, points=points,
                         path=Path(p), input_shape=input_shape) for p in paths]


# ----------------------------------------------------------------------------------------------
# networks built here (He-normal weights, small biases), float64 on CPU until converted


class _Builder:
    def __init__(self, input_shape: tuple[int, ...], seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.nodes: list[ir.Node] = [ir.Input("input", (), tuple(input_shape))]

    def _add(self, node: ir.Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _randn(self, *shape, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen, dtype=torch.float64) * std

    def dense(self, x: int, n_out: int) -> int:
        (n_in,) = self.nodes[x].shape
        w = self._randn(n_in, n_out, std=math.sqrt(2.0 / n_in))
        return self._add(ir.MatMul(f"Gemm_{len(self.nodes)}", (x,), (n_out,), weight=w, bias=self._randn(n_out, std=0.1)))

    def conv(self, x: int, c_out: int, k: int, stride: int, groups: int = 1) -> int:
        c_in, h, w = self.nodes[x].shape
        pad = k // 2
        weight = self._randn(c_out, c_in // groups, k, k, std=math.sqrt(2.0 / (c_in // groups * k * k)))
        shape = (c_out, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        return self._add(
            ir.Conv(
                f"Conv_{len(self.nodes)}", (x,), shape, weight=weight, bias=self._randn(c_out, std=0.1),
                strides=(stride, stride), pads=(pad,) * 4, dilations=(1, 1), groups=groups,
            )
        )

    def relu(self, x: int) -> int:
        zero = torch.tensor(0.0, dtype=torch.float64)
        return self._add(ir.LeakyRelu(f"Relu_{len(self.nodes)}", (x,), self.nodes[x].shape, slope=zero))

    def maxpool(self, x: int) -> int:
        c, h, w = self.nodes[x].shape
        out = F.max_pool2d(torch.zeros(1, c, h, w), 2, 2).shape[1:]
        return self._add(
            ir.MaxPool(f"MaxPool_{len(self.nodes)}", (x,), tuple(out), kernel=(2, 2), strides=(2, 2), pads=(0,) * 4, dilations=(1, 1))
        )

    def add(self, x: int, y: int) -> int:
        """A residual sum x + y of two outputs of one shape."""
        return self._add(ir.Sum(f"Add_{len(self.nodes)}", (x, y), self.nodes[x].shape))

    def flatten(self, x: int) -> int:
        return self._add(ir.Reshape(f"Flatten_{len(self.nodes)}", (x,), (math.prod(self.nodes[x].shape),)))

    def network(self, out: int, dtype: torch.dtype, device: str) -> ir.Network:
        shape = self.nodes[0].shape
        net = ir.Network(nodes=self.nodes, input_shape=shape, graph_input_shape=shape, output=out, input_name="input")
        return net.to(dtype, device)


def random_mlp(width: int, depth: int = 3, in_dim: int = 784, n_out: int = 10, seed: int = 0):
    def load(dtype, device):
        g = _Builder((in_dim,), seed)
        x = 0
        for _ in range(depth):
            x = g.relu(g.dense(x, width))
        return g.network(g.dense(x, n_out), dtype, device)

    return load


def sawtooth(depth: int):
    """Telgarsky's sawtooth on [0, 1]: `depth` tent maps of 2 units each, 2**depth regions along
    the segment 0 -> 1, with knots exactly at k / 2**depth; a huge count at a tiny cost per knot."""

    def load(dtype, device):
        g = _Builder((1,), 0)
        first = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
        tent = torch.tensor([[2.0, 2.0], [-4.0, -4.0]], dtype=torch.float64)
        shift = torch.tensor([0.0, -0.5], dtype=torch.float64)
        x = g._add(ir.MatMul("Gemm_0", (0,), (2,), weight=first, bias=shift))
        for k in range(1, depth):
            x = g._add(ir.MatMul(f"Gemm_{k}", (g.relu(x),), (2,), weight=tent, bias=shift))
        out = g._add(ir.MatMul("Gemm_out", (g.relu(x),), (1,), weight=tent[:, :1].clone()))
        return g.network(out, dtype, device)

    return load


def vgg_64(seed: int = 0):
    """A VGG-style conv net at 3x64x64 with 155k ReLU units (and 2 MaxPool layers)."""

    def load(dtype, device):
        g = _Builder((3, 64, 64), seed)
        x = g.relu(g.conv(0, 16, 3, 1))  # 16x64x64: 65k units
        x = g.relu(g.conv(x, 16, 3, 1))  # 65k
        x = g.maxpool(x)  # 16x32x32
        x = g.relu(g.conv(x, 16, 3, 1))  # 16k
        x = g.relu(g.conv(x, 32, 3, 2))  # 32x16x16: 8k
        x = g.maxpool(x)
        x = g.relu(g.dense(g.flatten(x), 128))
        return g.network(g.dense(x, 10), dtype, device)

    return load


def _convnet(input_shape: tuple[int, ...], seed: int, layers: list[tuple]) -> Callable:
    """A conv net from a layer list: ("conv", C_out, k, stride), ("dw", stride) (a depthwise 3x3
    convolution), ("pool",), ("dense", n) and ("res", C) (a residual block of two 3x3
    convolutions); each conv and dense but the last is followed by a ReLU, and the net ends in 10
    outputs."""

    def load(dtype, device):
        g = _Builder(input_shape, seed)

        def flat(x: int) -> int:  # a dense layer reads a vector
            return x if len(g.nodes[x].shape) == 1 else g.flatten(x)

        x = 0
        for layer in layers:
            if layer[0] == "conv":
                x = g.relu(g.conv(x, *layer[1:]))
            elif layer[0] == "dw":
                channels = g.nodes[x].shape[0]
                x = g.relu(g.conv(x, channels, 3, layer[1], groups=channels))
            elif layer[0] == "pool":
                x = g.maxpool(x)
            elif layer[0] == "res":
                y = g.conv(g.relu(g.conv(x, layer[1], 3, 1)), layer[1], 3, 1)
                x = g.relu(g.add(y, x))
            else:
                x = g.relu(g.dense(flat(x), layer[1]))
        return g.network(g.dense(flat(x), 10), dtype, device)

    return load


def other_convnets() -> list[ModelSpec]:
    """Conv nets of the shapes common in verification benchmarks, built here with seeded weights
    and never used to tune the analyses: they show how the measures do beyond the nets above,
    the small-channel and the depthwise one included (few multiply-adds per activation)."""
    mnist, cifar = (1, 28, 28), (3, 32, 32)
    nets = [
        ("convsmall-mnist", mnist, [("conv", 16, 4, 2), ("conv", 32, 4, 2), ("dense", 100)], 1.0, 2),
        ("convbig-cifar", cifar, [("conv", 32, 3, 1), ("conv", 32, 4, 2), ("conv", 64, 3, 1), ("conv", 64, 4, 2),
                                  ("dense", 512), ("dense", 512)], 0.01, 1),
        ("maxpool-mnist-32-64", mnist, [("conv", 32, 3, 1), ("pool",), ("conv", 64, 3, 1), ("pool",), ("dense", 128)], 0.03, 2),
        ("vgg-cifar-32-64", cifar, [("conv", 32, 3, 1), ("conv", 32, 3, 1), ("pool",), ("conv", 64, 3, 1),
                                    ("conv", 64, 3, 1), ("pool",), ("dense", 256)], 0.005, 1),
        ("resnet-cifar-32", cifar, [("conv", 32, 3, 2), ("res", 32), ("res", 32), ("dense", 100)], 0.03, 2),
        ("maxpool-mnist-8", mnist, [("conv", 8, 3, 1), ("pool",), ("conv", 8, 3, 1), ("pool",)], 0.5, 2),
        ("mobilenet-cifar", cifar, [("conv", 32, 3, 2), ("dw", 1), ("conv", 64, 1, 1), ("dw", 2), ("conv", 128, 1, 1),
                                    ("dw", 1), ("conv", 128, 1, 1)], 0.03, 2),
    ]
    return [
        ModelSpec(name, _convnet(shape, seed, layers), segments=4, fraction=frac, points=points, tags=("other",))
        for seed, (name, shape, layers, frac, points) in enumerate(nets, start=1)
    ]


def exported_nets() -> list[ModelSpec]:
    """The nets of `exported.py`, read through the ONNX importer."""
    from regionaudit.bench import exported

    return [
        ModelSpec(name, exported.loader(module, seed), segments=4, fraction=frac, points=points, tags=("exported",))
        for seed, (name, module, frac, points) in enumerate(exported.NETS, start=11)
    ]


def all_models() -> list[ModelSpec]:
    specs: list[ModelSpec] = [
        FileSpec("spirals_mlp", _onnx(SAMPLES / "spirals_mlp.onnx"), path=SAMPLES / "spirals_mlp.onnx",
                 data=SAMPLES / "spirals_test.npy", segments=32, points=32, walk_segments=4, tags=("tiny",)),
        FileSpec("digits_mlp", _onnx(SAMPLES / "digits_mlp.onnx"), path=SAMPLES / "digits_mlp.onnx",
                 data=SAMPLES / "digits_test_flat.npy", segments=32, points=16, walk_segments=4),
        FileSpec("digits_cnn", _onnx(SAMPLES / "digits_cnn.onnx"), path=SAMPLES / "digits_cnn.onnx",
                 data=SAMPLES / "digits_test.npy", segments=32, points=16, walk_segments=2),
        FileSpec("digits_resnet", _onnx(SAMPLES / "digits_resnet.onnx"), path=SAMPLES / "digits_resnet.onnx",
                 data=SAMPLES / "digits_test.npy", segments=32, points=16, walk_segments=2),
    ]
    for width, frac in ((64, 1.0), (256, 1.0), (1024, 0.5), (4096, 0.05)):
        specs.append(ModelSpec(f"mlp784-{width}x3", random_mlp(width), segments=4, fraction=frac, points=2))
    for name in ("cifar10_resnet_2b", "oval21_cifar_base_kw", "marabou_cifar10_small"):
        path = REALMODELS / f"{name}.onnx"
        specs.append(FileSpec(name, _onnx(path), path=path, segments=4, points=4, tags=("gpu",), gpu_probes=GPU_PROBES))
    for name in ("verivital_convnet_avgpool", "verivital_convnet_maxpool"):  # one 23k-unit ReLU layer
        path = REALMODELS / f"{name}.onnx"
        specs.append(FileSpec(name, _onnx(path), path=path, segments=4, fraction=0.25, points=4))
    specs.append(ModelSpec("vgg64-155k", vgg_64(), segments=2, fraction=0.01, points=1, tags=("gpu",)))
    return specs + other_convnets() + exported_nets()


def probes(spec: ModelSpec, input_shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Segment starts and ends (S, *shape) and points (P, *shape), float64, from the seed."""
    rng = np.random.default_rng(seed)
    need = max(2 * spec.segments, spec.points)
    if spec.data is not None:
        rows = np.load(spec.data, allow_pickle=False).astype(np.float64).reshape(-1, *input_shape)
        rows = rows[rng.permutation(len(rows))[:need]]
    else:
        rows = rng.standard_normal((need, *input_shape)) * spec.scale
    a, b = rows[: spec.segments], rows[spec.segments : 2 * spec.segments]
    b = a + spec.fraction * (b - a)
    return torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(rows[: spec.points])
