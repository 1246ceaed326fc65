"""Benchmark nets written in torch and exported to ONNX, so that the importer reads them as it
reads a user's file: shapes from model zoos that the conv nets of `models.py` lack (a ResNet stem
with a padded max pool and batch norm, a UNet with a transposed convolution and a skip concat, a
DCGAN-style generator, a DenseNet-style concat stack, nearest upsampling, average pools with
batch norm, LeakyReLU with 5x5 kernels, MobileNet v2's inverted residuals with ReLU6 down to
2x2 images, ShuffleNet v2's channel split and shuffle, ResNet bottlenecks). Seeded weights,
never used to tune the analyses."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from regionaudit.importer import import_model


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))


class ResNetStem(nn.Module):
    """7x7/2 convolution, batch norm, 3x3/2 max pool with padding, a residual block, global pool."""

    input_shape = (3, 64, 64)

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 16, 7, 2, 3), nn.BatchNorm2d(16)
        self.block, self.fc = _Block(16), nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.bn(self.conv(x))), 3, 2, 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.block(x), 1), 1))


class UNet(nn.Module):
    """One level: max pool down, a 2x2/2 transposed convolution up, the skip concatenated."""

    input_shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 16, 3, 1, 1), nn.Conv2d(16, 32, 3, 1, 1)
        self.up, self.c3 = nn.ConvTranspose2d(32, 16, 2, 2), nn.Conv2d(32, 16, 3, 1, 1)
        self.c4, self.fc = nn.Conv2d(16, 2, 1), nn.Linear(2 * 28 * 28, 10)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        u = torch.relu(self.up(torch.relu(self.c2(F.max_pool2d(a, 2)))))
        return self.fc(torch.flatten(self.c4(torch.relu(self.c3(torch.cat([a, u], 1)))), 1))


class Generator(nn.Module):
    """DCGAN-style: a latent vector to 64x4x4, three 4x4/2 transposed convolutions to 1x32x32."""

    input_shape = (16,)

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 64 * 4 * 4)
        self.t1, self.b1 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32)
        self.t2, self.b2 = nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16)
        self.t3, self.head = nn.ConvTranspose2d(16, 1, 4, 2, 1), nn.Linear(32 * 32, 10)

    def forward(self, z):
        x = torch.relu(self.fc(z)).reshape(-1, 64, 4, 4)
        x = torch.relu(self.b2(self.t2(torch.relu(self.b1(self.t1(x))))))
        return self.head(torch.flatten(self.t3(x), 1))


class DenseNet(nn.Module):
    """Each 3x3 convolution reads the concatenation of every feature map before it."""

    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.convs = nn.ModuleList(nn.Conv2d(16 + 12 * i, 12, 3, 1, 1) for i in range(3))
        self.fc = nn.Linear(52 * 16 * 16, 10)

    def forward(self, x):
        x = torch.relu(self.c0(x))
        for conv in self.convs:
            x = torch.cat([x, torch.relu(conv(x))], 1)
        return self.fc(torch.flatten(x, 1))


class Upsample(nn.Module):
    """A strided convolution, nearest upsampling by 2, a convolution."""

    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 16, 3, 2, 1), nn.Conv2d(16, 16, 3, 1, 1)
        self.fc = nn.Linear(16 * 32 * 32, 10)

    def forward(self, x):
        x = F.interpolate(torch.relu(self.c1(x)), scale_factor=2, mode="nearest")
        return self.fc(torch.flatten(torch.relu(self.c2(x)), 1))


class AvgPoolBN(nn.Module):
    """Convolutions with batch norm, each ReLU followed by a 2x2 average pool."""

    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 32, 3, 1, 1), nn.BatchNorm2d(32)
        self.c2, self.b2 = nn.Conv2d(32, 64, 3, 1, 1), nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.relu(self.b1(self.c1(x))), 2)
        return self.fc(torch.flatten(F.avg_pool2d(torch.relu(self.b2(self.c2(x))), 2), 1))


class Leaky(nn.Module):
    """LeakyReLU (slope 0.1) after 5x5 convolutions, then a dense ReLU layer."""

    input_shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 16, 5, 1, 2), nn.Conv2d(16, 32, 5, 2, 2)
        self.fc1, self.fc2 = nn.Linear(32 * 14 * 14, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = F.leaky_relu(self.c2(F.leaky_relu(self.c1(x), 0.1)), 0.1)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class _Inverted(nn.Module):
    """MobileNet v2's block: a 1x1 expansion by 6, a depthwise 3x3, a linear 1x1 projection, all
    with batch norm, ReLU6 between; the input added where the shapes agree."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        mid = 6 * c_in
        self.expand, self.b1 = nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.dw, self.b2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid)
        self.project, self.b3 = nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = F.relu6(self.b2(self.dw(F.relu6(self.b1(self.expand(x))))))
        y = self.b3(self.project(y))
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """Inverted residual blocks down to 2x2 images (where a depthwise 3x3 reads mostly padding),
    a 1x1 convolution to 256 channels, global average pool."""

    input_shape = (3, 64, 64)

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(_Inverted(16, 24, 2), _Inverted(24, 32, 2), _Inverted(32, 48, 2),
                                    _Inverted(48, 48, 1), _Inverted(48, 64, 2))
        self.head, self.b2 = nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = self.blocks(F.relu6(self.bn(self.stem(x))))
        x = F.relu6(self.b2(self.head(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _Shuffle(nn.Module):
    """ShuffleNet v2's unit at stride 1: half the channels pass, the other half go through a 1x1,
    a depthwise 3x3 and a 1x1 convolution; the halves are concatenated and shuffled."""

    def __init__(self, c: int):
        super().__init__()
        h = c // 2
        self.c1, self.b1 = nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h)
        self.dw, self.b2 = nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h)
        self.c2, self.b3 = nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        b = torch.relu(self.b3(self.c2(self.b2(self.dw(torch.relu(self.b1(self.c1(b))))))))
        y = torch.cat([a, b], 1)
        n, c, hgt, wid = y.shape
        return y.view(n, 2, c // 2, hgt, wid).transpose(1, 2).reshape(n, c, hgt, wid)


class ShuffleNet(nn.Module):
    """A strided stem and max pool, two shuffle units at 16x16, a strided convolution, two at
    8x8, a 1x1 convolution to 256 channels, global average pool."""

    input_shape = (3, 64, 64)

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24)
        self.s1 = nn.Sequential(_Shuffle(24), _Shuffle(24))
        self.down, self.b2 = nn.Conv2d(24, 48, 3, 2, 1, bias=False), nn.BatchNorm2d(48)
        self.s2 = nn.Sequential(_Shuffle(48), _Shuffle(48))
        self.head, self.b3 = nn.Conv2d(48, 256, 1, bias=False), nn.BatchNorm2d(256)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        x = self.s1(F.max_pool2d(torch.relu(self.bn(self.stem(x))), 3, 2, 1))
        x = self.s2(torch.relu(self.b2(self.down(x))))
        x = torch.relu(self.b3(self.head(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _Bottleneck(nn.Module):
    """A ResNet bottleneck at stride 1: a 1x1 convolution down to a quarter of the channels, a
    3x3, a 1x1 back up, each with batch norm, ReLU between; the input added before the last ReLU."""

    def __init__(self, c: int):
        super().__init__()
        q = c // 4
        self.reduce, self.b1 = nn.Conv2d(c, q, 1, bias=False), nn.BatchNorm2d(q)
        self.conv, self.b2 = nn.Conv2d(q, q, 3, 1, 1, bias=False), nn.BatchNorm2d(q)
        self.expand, self.b3 = nn.Conv2d(q, c, 1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.b2(self.conv(torch.relu(self.b1(self.reduce(x))))))
        return torch.relu(x + self.b3(self.expand(y)))


class BottleneckNet(nn.Module):
    """A 3x3 stem to 64 channels and three bottleneck blocks at 32x32 (1x1 layers of 16 channels
    in and out, whose products are narrow), global average pool."""

    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        self.blocks = nn.Sequential(_Bottleneck(64), _Bottleneck(64), _Bottleneck(64))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Inception(nn.Module):
    """A 3x3 stem to 32 channels, then an Inception module at 32x32 whose four branches read the
    stem's ReLU: a 1x1 convolution, a 1x1 then a 3x3, a 1x1 then a 5x5, and a 3x3/1 max pool
    (its windows overlap) then a 1x1; the branches concatenated (56 channels), a 4x4 max pool."""

    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()

        def cbr(c_in, c_out, k):
            return nn.Sequential(nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

        self.stem = cbr(3, 32, 3)
        self.one = cbr(32, 16, 1)
        self.three = nn.Sequential(cbr(32, 16, 1), cbr(16, 24, 3))
        self.five = nn.Sequential(cbr(32, 8, 1), cbr(8, 8, 5))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), cbr(32, 8, 1))
        self.fc = nn.Linear(56, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([self.one(x), self.three(x), self.five(x), self.pool(x)], 1)
        return self.fc(F.max_pool2d(x, 4).mean((2, 3)))


def build(module_class: type[nn.Module], seed: int) -> nn.Module:
    """The module with seeded weights, and batch-norm statistics that are not the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = module_class().eval()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
    return module


def loader(module_class: type[nn.Module], seed: int):
    """A ModelSpec's `load`: export the seeded module to ONNX in a temporary folder and import it."""

    def load(dtype: torch.dtype, device: str):
        module = build(module_class, seed)
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices
            path = Path(folder) / f"{module_class.__name__}.onnx"
            torch.onnx.export(module, torch.zeros(1, *module_class.input_shape), str(path), dynamo=False,
                              opset_version=17, input_names=["x"], output_names=["y"])
            return import_model(str(path), dtype=dtype, device=device).network

    return load


# name, module, fraction of each segment, points
NETS = [
    ("resnet-stem-64", ResNetStem, 0.02, 2),
    ("unet-mnist", UNet, 0.05, 2),
    ("dcgan-generator", Generator, 0.5, 2),
    ("densenet-cifar", DenseNet, 0.05, 2),
    ("upsample-cifar", Upsample, 0.05, 2),
    ("avgpool-bn-cifar", AvgPoolBN, 0.03, 2),
    ("leaky-mnist", Leaky, 0.1, 2),
    ("mobilenetv2-64", MobileNetV2, 0.01, 2),
    ("shufflenet-64", ShuffleNet, 0.03, 2),
    ("bottleneck-cifar", BottleneckNet, 0.005, 2),
    ("inception-cifar", Inception, 0.01, 2),
]
