"""The test network factory agrees with torch's own layers (so the analysis tests test real nets)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import netfactory as nf
from regionaudit.analysis.density import trace_segments
from regionaudit.analysis.distance import boundary_distances


def test_mlp_matches_torch():
    net = nf.mlp(3, in_dim=4, widths=(6, 5), n_out=2, slope=0.1)
    x = torch.randn(7, 4, dtype=torch.float64)
    fc = [n for n in net.nodes if n.kind == "matmul"]
    h = x
    for layer in fc[:-1]:
        h = F.leaky_relu(h @ layer.weight + layer.bias, 0.1)
    y = h @ fc[-1].weight + fc[-1].bias
    assert torch.allclose(net.forward(x), y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("pool, seed", [("max", 4), ("avg", 5)])
def test_cnn_matches_torch(pool, seed):
    net = nf.cnn(seed, pool)
    x = torch.randn(5, *net.input_shape, dtype=torch.float64)
    conv = [n for n in net.nodes if n.kind == "conv"]
    fc = [n for n in net.nodes if n.kind == "matmul"][0]
    if pool == "max":
        first, second = (lambda h: F.max_pool2d(h, 3, 2, 1, ceil_mode=True)), (lambda h: F.max_pool2d(h, 2, 1))
    else:
        first, second = (lambda h: F.avg_pool2d(h, 2, 2, 1, count_include_pad=False)), (lambda h: F.avg_pool2d(h, 2, 1))
    h = first(F.relu(F.conv2d(x, conv[0].weight, conv[0].bias, padding=1)))
    h = second(F.leaky_relu(F.conv2d(h, conv[1].weight, conv[1].bias), 0.1))
    y = h.flatten(1) @ fc.weight + fc.bias
    assert torch.allclose(net.forward(x), y, atol=1e-12, rtol=0)


def test_single_flat_probe_and_empty_inputs():
    net = nf.make("cnn_avg", 0)
    x = torch.randn(1, *net.input_shape, dtype=torch.float64)
    # one flat probe (1-D) goes through Network.forward as one probe (fixed in ir/network.py)
    assert torch.equal(net.forward(x.reshape(-1)), net.forward(x))
    empty = torch.zeros(0, *net.input_shape, dtype=torch.float64)
    assert trace_segments(net, empty, empty) == []
    assert boundary_distances(net, empty) == []
