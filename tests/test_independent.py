"""Region counts and boundary distances against a reference that never touches regionaudit's IR.

The reference runs the exported ONNX graph itself in float64 (initializers converted to double):
onnxruntime where it has double kernels for every op, else onnx's reference evaluator with each
MaxPool run by a one-node onnxruntime session and each AveragePool as a matrix read off
onnxruntime's kernel (onnxruntime has no double Conv or AveragePool). The input of every kink node
(Relu, LeakyRelu, PRelu, MaxPool, GlobalMaxPool) becomes an extra graph output; the activation
pattern at a point is the signs of the pre-activations and the winner of each pooling window
(windows read off onnxruntime's MaxPool kernel on one-hot inputs).

Along a segment the pattern is compared between neighbouring points of a grid, and every interval
whose end patterns differ is bisected until it is shorter than `TOL`. An interval whose ends share
a pattern holds no knot (an activation region is convex, so the segment cannot leave it and come
back), so the intervals left are the knots, one each unless two knots are closer than `GAP`.
Values within ZERO_REL of the largest |value| at their point count as zero (or tied): a difference
of two equal functions computed along different paths is rounding noise of either sign."""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from torch import nn

from conftest import random_bn

from regionaudit import audit
from regionaudit.analysis.density import min_memory, trace_segments
from regionaudit.analysis.distance import boundary_distances
from regionaudit.importer import import_model

TOL = 1e-9  # width in t below which a bisected interval counts as one knot
GAP = 1e-7  # changes closer than this in t are one knot (a unit crosses the ±ZERO_REL band in steps)
GRID = 16  # intervals of the first grid along each segment


# ----------------------------------------------------------------------------------------------
# models: small, seeded, every layout and op the brief names


def _bn(c):
    return random_bn(c, shift=0.3)


class ResidualBN(nn.Module):
    """BatchNorm left apart from the convs (eval mode), a grouped conv, a skip Add, a strided head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), _bn(6), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(6, 6, 3, padding=1, groups=2), _bn(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), _bn(6)
        )
        self.head = nn.Sequential(nn.Conv2d(6, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(36, 3))

    def forward(self, x):
        h = self.stem(x)
        return self.head(torch.relu(h + self.block(h)))


class Convs(nn.Module):
    """Dilated grouped conv, strided grouped conv, LeakyReLU(0.1), MaxPool k3 s2 p1 and k2 s1 ceil."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=2, dilation=2, groups=3), nn.LeakyReLU(0.1),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2), nn.LeakyReLU(0.1),
            nn.MaxPool2d(2, stride=1, ceil_mode=True), nn.Flatten(), nn.Linear(8 * 2 * 2, 4),
        )

    def forward(self, x):
        return self.f(x)


class Pools(nn.Module):
    """Padded average pooling with count_include_pad False, then True."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.a1 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.a2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
        self.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        h = self.a1(torch.relu(self.c1(x)))
        h = self.a2(torch.relu(self.c2(h)))
        return self.fc(torch.relu(h).flatten(1))


class Branches(nn.Module):
    """Two branches (one through an overlapping padded MaxPool) joined by a channel Concat."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(2, 3, 1), nn.ReLU(), nn.MaxPool2d(3, 1, 1))
        self.head = nn.Sequential(nn.Conv2d(6, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(36, 3))

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], dim=1))


class ChannelsLast(nn.Module):
    """A per-pixel MLP on a channels-last input (N, H, W, C), then permute to NCHW and a conv."""

    def __init__(self):
        super().__init__()
        self.pix = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 4))
        self.conv = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        h = self.pix(x).permute(0, 3, 1, 2)
        return self.fc(torch.relu(self.conv(torch.relu(h))).flatten(1))


class Column(nn.Module):
    """An MNIST-style MLP whose input is a column (N, 20, 1), flattened first."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3)
        )

    def forward(self, x):
        return self.f(x)


class ViewPRelu(nn.Module):
    """`x.view(x.size(0), -1)` (a Shape subgraph in the legacy export) and PReLU slopes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, stride=2)
        self.act = nn.PReLU(4)
        self.fc1 = nn.Linear(4 * 4 * 4, 10)
        self.act2 = nn.PReLU()
        self.fc2 = nn.Linear(10, 3)
        with torch.no_grad():  # slopes of both signs, none of them the default 0.25
            self.act.weight.uniform_(-0.5, 0.5)
            self.act2.weight.fill_(-0.3)

    def forward(self, x):
        h = self.act(self.conv(x))
        return self.fc2(self.act2(self.fc1(h.view(h.size(0), -1))))


class ZeroBias(nn.Module):
    """No biases anywhere: units that see only zeros are identically zero."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(1, 4, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, bias=False), nn.ReLU(), nn.Flatten(),
            nn.Linear(4 * 2 * 2, 6, bias=False), nn.ReLU(), nn.Linear(6, 2, bias=False),
        )

    def forward(self, x):
        return self.f(x)


class PoolMLP(nn.Module):
    """MaxPool on the input, then LeakyReLU and ReLU layers: every op has a float64 ORT kernel."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride=1)
        self.f = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 12), nn.LeakyReLU(0.1), nn.Linear(12, 8),
                               nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.f(self.pool(x))


def _fixed(weight: np.ndarray) -> nn.Linear:
    """A bias-free linear map with the given (out, in) weight, e.g. a 0/1 selection."""
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(weight))
    return lin


class Lattice(nn.Module):
    """A two-level lattice net: max over groups of the min over affine functions, min and max
    written with ReLUs (min(a, b) = a - relu(a - b)). Where two branches end on the same function,
    their difference is zero in theory but rounding noise of either sign in floating point."""

    GROUPS = ((0, 1, 2), (1, 2, 3), (2, 4, 5), (1, 3, 5))

    def __init__(self):
        super().__init__()
        self.fn = nn.Linear(2, 6)
        eye = np.eye(6, dtype=np.float32)
        self.pick = nn.ModuleList(_fixed(eye[[g[k] for g in self.GROUPS]]) for k in range(3))
        self.out = nn.ModuleList(_fixed(np.eye(4, dtype=np.float32)[[k]]) for k in range(4))

    def forward(self, x):
        f = self.fn(x)
        m = self.pick[0](f)
        for pick in self.pick[1:]:
            m = m - torch.relu(m - pick(f))
        y = self.out[0](m)
        for out in self.out[1:]:
            y = y + torch.relu(out(m) - y)
        return y


# name -> (module, input shape without batch, exporters, segment length for some 30 knots);
# "dynamo-raw" is dynamo=True without onnxscript's optimizer, which keeps BatchNormalization and
# the Shape subgraphs; "legacy-static" has a fixed batch of 1 (input [1, 20, 1])
MODELS = {
    "residual_bn": (ResidualBN, (2, 8, 8), ("legacy", "dynamo-raw"), 1.2),
    "convs": (Convs, (3, 12, 12), ("legacy", "dynamo"), 1.2),
    "pools": (Pools, (2, 9, 9), ("legacy", "dynamo"), 3.0),
    "branches": (Branches, (2, 7, 7), ("legacy", "dynamo"), 2.0),
    "channels_last": (ChannelsLast, (5, 5, 3), ("legacy", "dynamo"), 4.0),
    "column": (Column, (20, 1), ("legacy-static", "dynamo"), 10.0),
    "view_prelu": (ViewPRelu, (2, 9, 9), ("legacy", "dynamo-raw"), 12.0),
    "zero_bias": (ZeroBias, (1, 10, 10), ("legacy", "dynamo"), 2.5),
    "pool_mlp": (PoolMLP, (2, 5, 5), ("legacy",), 8.0),
    "lattice": (Lattice, (2,), ("legacy", "dynamo"), 6.0),
}
CASES = [(name, exp) for name, (_, _, exporters, _) in MODELS.items() for exp in exporters]


def _export(name: str, exporter: str, path) -> None:
    make, shape, _, _ = MODELS[name]
    torch.manual_seed(sum(map(ord, name)))
    model = make().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter.startswith("legacy"):
            dynamic = {} if exporter == "legacy-static" else {"x": {0: "batch"}}
            torch.onnx.export(model, (torch.randn(1, *shape),), str(path), dynamo=False, input_names=["x"],
                              dynamic_axes=dynamic, training=torch.onnx.TrainingMode.PRESERVE)
        else:  # an example batch of 2: a batch of 1 would be specialised to a constant
            torch.onnx.export(model, (torch.randn(2, *shape),), str(path), dynamo=True, verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},),
                              optimize=exporter != "dynamo-raw")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported(name, exporter) -> path of the ONNX file, exported on first use."""
    folder = tmp_path_factory.mktemp("independent")
    cache: dict[tuple[str, str], str] = {}

    def get(name: str, exporter: str) -> str:
        if (name, exporter) not in cache:
            path = folder / f"{name}_{exporter}.onnx"
            _export(name, exporter, path)
            cache[name, exporter] = str(path)
        return cache[name, exporter]

    return get


# ----------------------------------------------------------------------------------------------
# the reference: the ONNX graph in float64, kink inputs and MaxPool winners exposed

KINK_OPS = ("Relu", "LeakyRelu", "PRelu")
ZERO_REL = 1e-12  # values within this fraction of the largest |value| at their point are rounding noise


def to_double(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph computing in float64: float initializers, constants, casts and types."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float64), a.t.name))
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.DOUBLE
        if node.op_type == "Constant" and node.attribute[0].name in ("value_float", "value_floats"):
            a = node.attribute[0]
            value = np.array(a.f if a.name == "value_float" else list(a.floats), dtype=np.float64)
            del node.attribute[:]
            node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(value)))
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.DOUBLE
    return m


def _one_node_session(onnx_node: onnx.NodeProto, elem: int) -> ort.InferenceSession:
    """onnxruntime running one node (same op and attributes) on input X to output Y."""
    node = onnx.NodeProto()
    node.CopyFrom(onnx_node)
    del node.input[:], node.output[:]
    node.input.append("X")
    node.output.append("Y")
    graph = helper.make_graph([node], node.op_type, [helper.make_tensor_value_info("X", elem, None)],
                              [helper.make_tensor_value_info("Y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _one_hots(session: ort.InferenceSession, shape: tuple[int, ...]) -> np.ndarray:
    """(n_in, n_out) float32: the node applied to every one-hot input of one sample's shape."""
    n = math.prod(shape)
    return session.run(None, {"X": np.eye(n, dtype=np.float32).reshape(n, *shape)})[0].reshape(n, -1)


class MaxPool(OpRun):
    """MaxPool for onnx's reference evaluator, run by onnxruntime in float64 (its loops are in C++)."""

    op_domain = ""

    def __init__(self, onnx_node, run_params, schema=None):
        super().__init__(onnx_node, run_params, schema)
        self.session = _one_node_session(onnx_node, TensorProto.DOUBLE)

    def _run(self, x, **_attributes):
        return (self.session.run(None, {"X": x})[0],)


class AveragePool(OpRun):
    """AveragePool for onnx's reference evaluator (whose loops are slow): it is linear, so it runs
    as x @ P in float64, with P read off onnxruntime's float32 kernel applied to one-hot inputs.
    There each window holding the one is 1/count rounded to float32, which gives count exactly."""

    op_domain = ""

    def __init__(self, onnx_node, run_params, schema=None):
        super().__init__(onnx_node, run_params, schema)
        self.session = _one_node_session(onnx_node, TensorProto.FLOAT)
        self.matrices: dict[tuple[int, ...], tuple[np.ndarray, tuple[int, ...]]] = {}

    def _run(self, x, **_attributes):
        key = x.shape[1:]
        if key not in self.matrices:
            y = _one_hots(self.session, key)
            count = np.round(1.0 / np.where(y != 0, y, 1.0).astype(np.float64))
            out_shape = self.session.run(None, {"X": np.zeros((1, *key), np.float32)})[0].shape[1:]
            self.matrices[key] = (np.where(y != 0, 1.0 / count, 0.0), out_shape)
        matrix, out_shape = self.matrices[key]
        return ((x.reshape(len(x), -1) @ matrix).reshape(len(x), *out_shape),)


def _ancestors(graph: onnx.GraphProto, tensor: str) -> set[int]:
    """Indices of the nodes `tensor` depends on."""
    producer = {out: k for k, node in enumerate(graph.node) for out in node.output if out}
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        k = producer.get(stack.pop())
        if k is not None and k not in seen:
            seen.add(k)
            stack.extend(graph.node[k].input)
    return seen


class Reference:
    """The activation pattern of an ONNX model at points, computed from the graph alone.

    Kinks are the nodes the first graph output depends on. An input of rank >= 2 whose first dim is
    dynamic or 1 has a batch axis (points batched when it is dynamic, else run one by one); any
    other input is one point as declared. A pattern holds the sign of every ReLU-type unit's input
    and the first (lowest input index) winner of every pooling window; values within
    ZERO_REL of the largest |value| at the point (input, kink inputs, output) count as zero or as
    tied, since a difference of two equal functions computed along different paths comes out as
    rounding noise of either sign.
    """

    def __init__(self, path: str):
        model = to_double(onnx.load(path))
        g = model.graph
        self.output = g.output[0].name
        needed = _ancestors(g, self.output)
        self.kinks: list[tuple[str, str, str]] = []  # (node name, "sign" | "argmax", input tensor)
        self.pools: dict[str, onnx.NodeProto] = {}  # MaxPool and GlobalMaxPool nodes by name
        self._members: dict[str, np.ndarray] = {}
        for k, node in enumerate(g.node):
            name = node.name or f"{node.op_type}_{node.output[0]}"
            if k in needed and node.op_type in KINK_OPS:
                self.kinks.append((name, "sign", node.input[0]))
            elif k in needed and node.op_type in ("MaxPool", "GlobalMaxPool"):
                self.kinks.append((name, "argmax", node.input[0]))
                self.pools[name] = node
        del g.value_info[:]
        self.names = list(dict.fromkeys([self.output, *(t for _, _, t in self.kinks)]))
        for tensor in self.names[1:]:
            g.output.append(onnx.ValueInfoProto(name=tensor))
        constants = {t.name for t in g.initializer}
        inp = next(i for i in g.input if i.name not in constants)
        self.input_name = inp.name
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        self.has_batch = len(dims) >= 2 and dims[0] in (None, 1)
        self.batched = self.has_batch and dims[0] is None
        try:
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            self.runtime = "onnxruntime"
            self._run = lambda x: session.run(self.names, {self.input_name: x})
        except Exception:  # no double kernel for some op (Conv, AveragePool)
            evaluator = ReferenceEvaluator(model, new_ops=[MaxPool, AveragePool])
            self.runtime = "onnx.reference"
            self._run = lambda x: evaluator.run(self.names, {self.input_name: x})

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The output and the kink inputs by name at points x (P, *point shape)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.batched:
            chunks = [self._run(x[i : i + 512]) for i in range(0, len(x), 512)]
        elif self.has_batch:
            chunks = [self._run(x[i : i + 1]) for i in range(len(x))]
        else:
            chunks = [[v[None] for v in self._run(xi)] for xi in x]
        return {name: np.concatenate([c[k] for c in chunks]) for k, name in enumerate(self.names)}

    def members(self, pool: str, shape: tuple[int, ...]) -> np.ndarray:
        """(windows, k) int: the input elements (flat, ascending) of each window of a pooling node,
        from onnxruntime's kernel on one-hot inputs (a window holding the one gives 1); -1 pads."""
        if pool not in self._members:
            holds = _one_hots(_one_node_session(self.pools[pool], TensorProto.FLOAT), shape) > 0.5
            k = int(holds.sum(0).max())
            rows = [np.flatnonzero(col) for col in holds.T]
            self._members[pool] = np.array([np.pad(r, (0, k - len(r)), constant_values=-1) for r in rows])
        return self._members[pool]

    def pre_activations(self, x: np.ndarray) -> np.ndarray:
        """(P, n): every ReLU-type unit's input, kink node after kink node (pools left out)."""
        outs = self.run(x)
        return np.concatenate([outs[t].reshape(len(x), -1) for _, kind, t in self.kinks if kind == "sign"], axis=1)

    def patterns(self, x: np.ndarray) -> np.ndarray:
        """(P, n) int64: the sign of each pre-activation (0 within rounding of zero), and the winner
        of each pooling window."""
        outs = self.run(x)
        scale = np.max([np.abs(v.reshape(len(x), -1)).max(1) for v in [x, *outs.values()]], axis=0)
        floor = ZERO_REL * scale[:, None]
        cols = []
        for name, kind, tensor in self.kinks:
            v = outs[tensor].reshape(len(x), -1)
            if kind == "sign":
                cols.append((np.sign(v) * (np.abs(v) > floor)).astype(np.int64))
                continue
            members = self.members(name, outs[tensor].shape[1:])
            vals = np.where(members >= 0, v[:, members], -np.inf)  # (P, windows, k)
            near = vals >= vals.max(-1, keepdims=True) - floor[:, :, None]
            cols.append(np.take_along_axis(members[None], near.argmax(-1)[..., None], -1)[..., 0])
        return np.concatenate(cols, axis=1)


def reference_knots(ref: Reference, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Per segment a[s] -> b[s]: the knots, as (K, 2) bounds of the intervals where the pattern
    changes. Changes closer than GAP are one knot, and only if the patterns before and after them
    differ: a pattern seen in a sliver is no region (a unit touching zero, several units at zero at
    once, a unit inside the ±ZERO_REL band on its way across). Changes at t = 0 or 1 are none (an
    endpoint on a boundary, e.g. x = 0 in a net with zero biases)."""
    n = len(a)
    a2, d2 = a.reshape(n, -1), (b - a).reshape(n, -1)

    def pats(seg, t):
        return ref.patterns((a2[seg] + t[:, None] * d2[seg]).reshape(len(seg), *a.shape[1:]))

    grid = np.linspace(0.0, 1.0, GRID + 1)
    seg = np.repeat(np.arange(n), GRID + 1)
    p = pats(seg, np.tile(grid, n)).reshape(n, GRID + 1, -1)
    seg = np.repeat(np.arange(n), GRID)
    t0, t1 = np.tile(grid[:-1], n), np.tile(grid[1:], n)
    p0, p1 = p[:, :-1].reshape(n * GRID, -1), p[:, 1:].reshape(n * GRID, -1)
    differ = (p0 != p1).any(1)
    seg, t0, t1, p0, p1 = seg[differ], t0[differ], t1[differ], p0[differ], p1[differ]
    final: list[list[tuple]] = [[] for _ in range(n)]  # (t0, t1, pattern before, pattern after)
    while len(seg):
        done = t1 - t0 < TOL
        for k in np.flatnonzero(done):
            final[seg[k]].append((t0[k], t1[k], p0[k], p1[k]))
        seg, t0, t1, p0, p1 = seg[~done], t0[~done], t1[~done], p0[~done], p1[~done]
        if not len(seg):
            break
        tm = (t0 + t1) / 2
        pm = pats(seg, tm)
        left, right = (p0 != pm).any(1), (pm != p1).any(1)
        seg = np.concatenate([seg[left], seg[right]])
        t0, t1 = np.concatenate([t0[left], tm[right]]), np.concatenate([tm[left], t1[right]])
        p0, p1 = np.concatenate([p0[left], pm[right]]), np.concatenate([pm[left], p1[right]])
    knots = []
    for intervals in final:
        groups: list[list[tuple]] = []
        for iv in sorted(intervals, key=lambda iv: iv[0]):
            if groups and iv[0] - groups[-1][-1][1] < GAP:
                groups[-1].append(iv)
            else:
                groups.append([iv])
        knots.append(np.array([
            (g[0][0], g[-1][1]) for g in groups if g[0][0] > 0 and g[-1][1] < 1 and (g[0][2] != g[-1][3]).any()
        ]).reshape(-1, 2))
    return knots


def assert_same_knots(ours: list[float], ref: np.ndarray, what: str) -> None:
    """Same count, and each of our interior knots at the reference's (within GAP: a tie or a zero
    up to ±ZERO_REL moves a change in the reference by ZERO_REL over the rate of approach)."""
    interior = np.array(ours[1:-1])
    assert len(interior) == len(ref), f"{what}: regionaudit {len(interior) + 1} regions, reference {len(ref) + 1}"
    outside = (interior < ref[:, 0] - GAP) | (interior > ref[:, 1] + GAP)
    assert not outside.any(), f"{what}: knots {interior[outside]} outside {ref[outside]}"


def random_segments(name: str, n: int, seed: int) -> np.ndarray:
    """(n, 2, *shape) float64: a seeded Gaussian start, the end at the model's length away."""
    _, shape, _, length = MODELS[name]
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, math.prod(shape)))
    u = rng.standard_normal((n, math.prod(shape)))
    b = a + length * u / np.linalg.norm(u, axis=1, keepdims=True)
    return np.stack([a, b], axis=1).reshape(n, 2, *shape)


# ----------------------------------------------------------------------------------------------
# region counts


@pytest.mark.parametrize("name,exporter", CASES)
def test_regions_equal_independent_reference(exported, tmp_path, name, exporter):
    path = exported(name, exporter)
    shape = MODELS[name][1]
    segs = random_segments(name, 4, seed=len(name) + 7 * len(exporter))
    seg_file = tmp_path / "segments.npy"
    np.save(seg_file, segs)
    result = audit(path, segments=seg_file, keep_knots=True, slice=False)
    assert tuple(result.model.input_shape) == shape
    ref = Reference(path)
    # the float64 graph is the function the IR computes (not merely close, as float32 would be)
    net = import_model(path).network
    x = segs.reshape(-1, *shape)
    direct = ref.run(x)[ref.output].reshape(len(x), -1)
    assert np.abs(net.forward(torch.from_numpy(x)).numpy() - direct).max() < 1e-10 * max(1.0, np.abs(direct).max())
    expected = reference_knots(ref, segs[:, 0], segs[:, 1])
    for s, (seg, knots) in enumerate(zip(result.density.segments, expected)):
        assert_same_knots(seg.knots, knots, f"{name}/{exporter} segment {s}")
    assert sum(len(k) for k in expected) >= 8, "the segments should cross boundaries"
    kink_names = {n for n, _, _ in ref.kinks}
    assert set(result.density.knots_per_layer) == kink_names


def test_segment_through_a_block_of_zeros(exported):
    """Two images that share a block of exact zeros: units that see only it stay at zero."""
    for exporter in ("legacy", "dynamo"):
        path = exported("zero_bias", exporter)
        segs = random_segments("zero_bias", 4, seed=3)
        segs[:, :, :, :6, :] = 0.0  # rows 0..5 of both images
        segs[2, :, :, :, 5:] = 0.0  # and a whole half of one pair
        net = import_model(path).network
        traces = trace_segments(net, torch.from_numpy(segs[:, 0]), torch.from_numpy(segs[:, 1]))
        ref = Reference(path)
        expected = reference_knots(ref, segs[:, 0], segs[:, 1])
        for s, (tr, knots) in enumerate(zip(traces, expected)):
            assert_same_knots(tr.t.tolist(), knots, f"zero block, {exporter} segment {s}")
        # the reference sees the identically zero units as zero, and they never changed sign
        assert (ref.pre_activations(segs[:, 0]) == 0).any()


@pytest.mark.parametrize("name,n", [("convs", 6), ("residual_bn", 12), ("lattice", 40)])
def test_split_segments_equal_reference(exported, name, n):
    """Small memory budgets split segments into sub-segments; their knots join exactly."""
    path = exported(name, "legacy")
    segs = random_segments(name, n, seed=5)
    a, b = torch.from_numpy(segs[:, 0]), torch.from_numpy(segs[:, 1])
    net = import_model(path).network
    expected = reference_knots(Reference(path), segs[:, 0], segs[:, 1])
    smallest = min_memory(net)  # below it one pass cannot fit: refused
    for budget in (smallest, max(smallest, 20_000)):
        for s, (tr, knots) in enumerate(zip(trace_segments(net, a, b, max_memory=budget), expected)):
            assert_same_knots(tr.t.tolist(), knots, f"{name} split ({budget} bytes) segment {s}")


def test_lattice_rounding_noise_is_no_knot(exported):
    """Units that are zero in theory but ±1e-16 in practice (a lattice net's min/max banks) change
    no sign: their noise used to put knots anywhere between two knots."""
    for exporter in MODELS["lattice"][2]:
        path = exported("lattice", exporter)
        segs = random_segments("lattice", 40, seed=7)
        ref = Reference(path)
        z = ref.pre_activations(segs.reshape(-1, 2))
        assert ((z != 0) & (np.abs(z) < 1e-13)).any(), "the net should compute rounding noise"
        net = import_model(path).network
        traces = trace_segments(net, torch.from_numpy(segs[:, 0]), torch.from_numpy(segs[:, 1]))
        for s, (tr, knots) in enumerate(zip(traces, reference_knots(ref, segs[:, 0], segs[:, 1]))):
            assert_same_knots(tr.t.tolist(), knots, f"lattice/{exporter} segment {s}")


def _graph(nodes, inits: dict, shape, elem=TensorProto.FLOAT, opset: int = 13) -> onnx.ModelProto:
    """A hand-built model, input x (N, *shape) and output y, the way tf2onnx and friends write them."""
    dtype = np.float64 if elem == TensorProto.DOUBLE else np.float32
    tensors = [numpy_helper.from_array(v if v.dtype.kind == "i" else v.astype(dtype), k) for k, v in inits.items()]
    graph = helper.make_graph(nodes, "case", [helper.make_tensor_value_info("x", elem, ["N", *shape])],
                              [helper.make_tensor_value_info("y", elem, None)], initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _hand_built() -> dict[str, tuple[onnx.ModelProto, tuple[int, ...]]]:
    rng = np.random.default_rng(11)

    def w(*shape):
        return rng.standard_normal(shape) * math.sqrt(2.0 / math.prod(shape[1:] or (4,)))

    n = helper.make_node
    return {
        # NHWC input, Transposes around SAME_UPPER strided conv and pool, Reshape to a constant shape
        "nhwc_same": (_graph([
            n("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
            n("Conv", ["xt", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3]),
            n("Relu", ["c1"], ["r1"]),
            n("MaxPool", ["r1"], ["p1"], auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2]),
            n("Transpose", ["p1"], ["pt"], perm=[0, 2, 3, 1]),
            n("Reshape", ["pt", "shape"], ["f"]),
            n("MatMul", ["f", "w2"], ["m2"]), n("Add", ["m2", "b2"], ["a2"]), n("Relu", ["a2"], ["r2"]),
            n("MatMul", ["r2", "w3"], ["y"]),
        ], {"w1": w(4, 3, 3, 3), "b1": w(4), "shape": np.array([-1, 36]), "w2": w(36, 10), "b2": w(10),
            "w3": w(10, 3)}, (11, 11, 3)), 3.0),
        # asymmetric conv pads, LeakyReLU, SAME_LOWER pool, dilated ceil-mode pool with pads, Gemm transB
        "odd_pools": (_graph([
            n("Conv", ["x", "w1", "b1"], ["c1"], pads=[0, 1, 2, 0], kernel_shape=[3, 3]),
            n("LeakyRelu", ["c1"], ["r1"], alpha=0.2),
            n("MaxPool", ["r1"], ["p1"], auto_pad="SAME_LOWER", kernel_shape=[2, 3], strides=[2, 2]),
            n("MaxPool", ["p1"], ["p2"], kernel_shape=[2, 2], dilations=[2, 1], pads=[1, 0, 0, 1], ceil_mode=1),
            n("Flatten", ["p2"], ["f"]),
            n("Gemm", ["f", "w2", "b2"], ["y"], transB=1),
        ], {"w1": w(3, 2, 3, 3), "b1": w(3), "w2": w(3, 27), "b2": w(3)}, (2, 8, 7)), 3.0),
        # input normalisation by constants, zero Pad, grouped conv, ceil-mode AveragePool, GlobalMaxPool
        "normalised": (_graph([
            n("Sub", ["x", "mean"], ["s"]), n("Div", ["s", "std"], ["d"]),
            n("Pad", ["d", "pads"], ["pd"]),
            n("Conv", ["pd", "w1", "b1"], ["c1"], kernel_shape=[3, 3], group=2),
            n("Relu", ["c1"], ["r1"]),
            n("AveragePool", ["r1"], ["a1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
              count_include_pad=1),
            n("GlobalMaxPool", ["a1"], ["g1"]),
            n("Flatten", ["g1"], ["f"]),
            n("Gemm", ["f", "w2", "b2"], ["y"]),
        ], {"mean": np.array([0.1, -0.2]).reshape(1, 2, 1, 1), "std": np.array([0.5, 2.0]).reshape(1, 2, 1, 1),
            "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1]), "w1": w(4, 1, 3, 3), "b1": w(4), "w2": w(4, 3), "b2": w(3)},
            (2, 7, 6)), 3.0),
        # float64 throughout (onnxruntime has double kernels for these ops), PRelu per unit
        "float64_prelu": (_graph([
            n("Gemm", ["x", "w1", "b1"], ["h1"]), n("PRelu", ["h1", "slope"], ["r1"]),
            n("Gemm", ["r1", "w2", "b2"], ["h2"]), n("Relu", ["h2"], ["r2"]),
            n("Gemm", ["r2", "w3", "b3"], ["y"]),
        ], {"w1": w(6, 16), "b1": w(16), "slope": w(16), "w2": w(16, 12), "b2": w(12), "w3": w(12, 2), "b3": w(2)},
            (6,), elem=TensorProto.DOUBLE), 6.0),
        # two MaxPool candidates equal in theory, one computed as ((h0+h1) + (h0-h1)) / 2: a tie up to
        # rounding, which is no knot
        "noisy_tie": (_graph([
            n("MatMul", ["x", "w1"], ["a"]), n("Relu", ["a"], ["h"]),
            n("MatMul", ["h", "sum_diff"], ["sd"]), n("MatMul", ["sd", "half"], ["c2"]),
            n("MatMul", ["h", "first"], ["c1"]), n("Concat", ["c1", "c2"], ["cc"], axis=1),
            n("Reshape", ["cc", "shape"], ["r"]), n("MaxPool", ["r"], ["mp"], kernel_shape=[1, 2]),
            n("Flatten", ["mp"], ["f"]), n("MatMul", ["h", "w2"], ["o"]), n("Add", ["o", "f"], ["y"]),
        ], {"w1": rng.standard_normal((4, 6)), "sum_diff": np.vstack([[[1.0, 1.0], [1.0, -1.0]], np.zeros((4, 2))]),
            "half": np.full((2, 1), 0.5), "first": np.eye(6, 1), "shape": np.array([-1, 1, 1, 2]),
            "w2": rng.standard_normal((6, 3))}, (4,), elem=TensorProto.DOUBLE), 8.0),
    }


@pytest.mark.parametrize("name", ["nhwc_same", "odd_pools", "normalised", "float64_prelu", "noisy_tie"])
def test_hand_built_graphs_equal_reference(tmp_path, name):
    model, length = _hand_built()[name]
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(model, path)
    net = import_model(path).network
    rng = np.random.default_rng(13)
    n = 300 if name == "noisy_tie" else 4
    a = rng.standard_normal((n, *net.input_shape))
    u = rng.standard_normal((n, *net.input_shape))
    b = a + length * u / np.linalg.norm(u.reshape(n, -1), axis=1).reshape(-1, *[1] * u.ndim)[:, 0]
    traces = trace_segments(net, torch.from_numpy(a), torch.from_numpy(b))
    expected = reference_knots(Reference(path), a, b)
    for s, (tr, knots) in enumerate(zip(traces, expected)):
        assert_same_knots(tr.t.tolist(), knots, f"{name} segment {s}")
    assert sum(len(k) for k in expected) >= 8


@pytest.mark.parametrize("name", ["zero_bias", "convs"])
def test_degenerate_segments(exported, name):
    """Segments through the origin, from it, to it, and of length zero: at x = 0 a net without
    biases has every unit at zero (one knot where they all cross at once, none at an endpoint),
    and a net with biases has its pooling windows tied."""
    path = exported(name, "legacy")
    a, b = random_segments(name, 1, seed=17)[0]
    a = (b - a) / 2  # as long as the other segments: some 30 knots from -a to a
    zero = np.zeros_like(a)
    A, B = np.stack([a, zero, a, a]), np.stack([-a, a, zero, a])
    net = import_model(path).network
    traces = trace_segments(net, torch.from_numpy(A), torch.from_numpy(B))
    expected = reference_knots(Reference(path), A, B)
    for s, (tr, knots) in enumerate(zip(traces, expected)):
        assert_same_knots(tr.t.tolist(), knots, f"{name} degenerate segment {s}")
    assert traces[3].regions == 1
    if name == "zero_bias":  # positively homogeneous: one region on each side of the origin
        assert [tr.regions for tr in traces[:3]] == [2, 1, 1]


# ----------------------------------------------------------------------------------------------
# boundary distance


def _ray_exits(ref: Reference, x: np.ndarray, dirs: np.ndarray, r_max: float) -> np.ndarray:
    """For unit directions dirs (R, D): the distance along each ray where x's pattern first changes
    (inf for a ray still inside at r_max: a region may be unbounded)."""
    shape = x.shape
    x = x.reshape(-1)
    p0 = ref.patterns(x.reshape(1, *shape))[0]
    far = ref.patterns((x + r_max * dirs).reshape(len(dirs), *shape))
    leaves = (far != p0).any(1)
    dirs = dirs[leaves]
    lo, hi = np.zeros(len(dirs)), np.full(len(dirs), r_max)
    while len(dirs) and (hi - lo).max() > 1e-12 * r_max:
        mid = (lo + hi) / 2
        inside = (ref.patterns((x + mid[:, None] * dirs).reshape(len(dirs), *shape)) == p0).all(1)
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    exits = np.full(len(leaves), np.inf)
    exits[leaves] = hi
    return exits


def _jacobian(ref: Reference, x: np.ndarray, tensor: str, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Value (n,) and Jacobian (n, D) of an exposed tensor at x, by differences of step h < the
    distance to the boundary (exact up to rounding: everything is affine in x's region)."""
    d = x.size
    probes = np.concatenate([x.reshape(1, -1), x.reshape(1, -1) + h * np.eye(d)]).reshape(d + 1, *x.shape)
    v = ref.run(probes)[tensor].reshape(d + 1, -1)
    return v[0], (v[1:] - v[0]).T / h


def _nearest_constraint(ref: Reference, x: np.ndarray, node: str, unit: int, h: float) -> tuple[float, np.ndarray]:
    """Distance to the zero set of unit `unit` of kink node `node` (a pooling window's nearest
    margin for a MaxPool), and the unit direction that goes straight there."""
    if node in ref.pools:
        tensor = ref.pools[node].input[0]
        value, jac = _jacobian(ref, x, tensor, h)
        members = ref.members(node, ref.run(x[None])[tensor].shape[1:])[unit]
        members = members[members >= 0]
        win = members[np.argmax(value[members])]
        best = (math.inf, None)
        for j in members[members != win]:
            grad = jac[win] - jac[j]
            best = min(best, ((value[win] - value[j]) / np.linalg.norm(grad), -grad / np.linalg.norm(grad)),
                       key=lambda c: c[0])
        return best
    tensor = next(t for n, kind, t in ref.kinks if n == node)
    value, jac = _jacobian(ref, x, tensor, h)
    z, g = value[unit], jac[unit]
    return abs(z) / np.linalg.norm(g), -np.sign(z) * g / np.linalg.norm(g)


@pytest.mark.parametrize("name", ["column", "pool_mlp"])
def test_boundary_distance_against_rays(exported, name):
    """Ours is at most the exit distance along 200 random rays, and is the exit distance along the
    normal of the constraint it names."""
    _, shape, exporters, _ = MODELS[name]
    path = exported(name, exporters[0])
    ref = Reference(path)
    net = import_model(path).network
    rng = np.random.default_rng(5)
    points = rng.standard_normal((4, *shape))
    for x, pd in zip(points, boundary_distances(net, torch.from_numpy(points))):
        d = pd.distance
        assert d is not None and d > 0
        dirs = rng.standard_normal((200, x.size))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        exits = _ray_exits(ref, x, dirs, r_max=100 * d)
        assert np.isfinite(exits).sum() > 100 and exits.min() >= d * (1 - 1e-9), (exits.min(), d)
        dist, normal = _nearest_constraint(ref, x, pd.node, pd.unit, h=d / 10)
        assert abs(dist - d) <= 1e-6 * d, (dist, d)
        exit_normal = _ray_exits(ref, x, normal[None], r_max=2 * d)[0]
        assert abs(exit_normal - d) <= 1e-6 * d, (exit_normal, d)
