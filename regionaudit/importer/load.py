"""Reading an ONNX file and refusing broken or hostile ones before anything else looks at it.

Checks: parses as an ONNX protobuf with a non-empty graph, external data stays inside the model's
folder, tensor sizes are sane, and float weights are finite.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.external_data_helper import load_external_data_for_model

from regionaudit.errors import RejectedModel
from regionaudit.importer.registry import FLOAT_TYPES

MIN_OPSET = 7
MAX_TENSOR_ELEMENTS = 2**31  # one stored tensor (initializer, Constant)
MAX_ACTIVATION_ELEMENTS = 2**27  # one tensor the network computes (input included), at batch 1
MAX_PARAMS = 50_000_000  # all float initializers together


@dataclass
class LoadedModel:
    model: onnx.ModelProto
    path: str
    sha256: str
    params: int
    opset: int
    producer: str
    doc_string: str


def read_onnx(path: str | Path) -> LoadedModel:
    """Read and validate `path`; every problem is a one-line RejectedModel."""
    p = Path(path)
    if not p.is_file():
        raise RejectedModel(f"{p}: no such file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RejectedModel(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    model = _parse(raw, p)
    _load_external(model, p)
    params = _check_tensors(model, p)
    opset = _default_opset(model, p)
    producer = " ".join(s for s in (model.producer_name, model.producer_version) if s)
    return LoadedModel(model, str(p), hashlib.sha256(raw).hexdigest(), params, opset, producer, model.doc_string)


def _parse(raw: bytes, p: Path) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError and friends
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise RejectedModel(f"{p.name}: not a readable ONNX file: truncated or corrupt protobuf ({reason})") from None
    if not model.ir_version or not model.HasField("graph"):
        raise RejectedModel(f"{p.name}: not an ONNX model (no IR version or no graph)")
    if not model.graph.node:
        raise RejectedModel(f"{p.name}: the ONNX graph is empty (no nodes)")
    if not model.graph.output:
        raise RejectedModel(f"{p.name}: the ONNX graph has no outputs")
    return model


def _all_tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, onnx.TensorProto]]:
    """Initializers and tensor attributes (Constant values), subgraphs included."""
    for t in graph.initializer:
        yield t.name, t
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield node.output[0] if node.output else node.name, a.t
            for t in a.tensors:
                yield node.name, t
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
                yield from _all_tensors(g)


def _load_external(model: onnx.ModelProto, p: Path) -> None:
    base = p.parent.resolve()
    external = False
    for name, t in _all_tensors(model.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        external = True
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        try:
            target = (base / loc).resolve()
        except (OSError, ValueError):
            target = None
        if not loc or Path(loc).is_absolute() or target is None or not target.is_relative_to(base):
            raise RejectedModel(
                f"{p.name}: external data of tensor '{name}' points outside the model's folder ({loc!r})"
            )
        if not target.is_file():
            raise RejectedModel(f"{p.name}: external data file {loc!r} of tensor '{name}' is missing")
        try:
            end = int(info.get("offset", 0) or 0) + int(info.get("length", 0) or 0)
        except ValueError:
            raise RejectedModel(f"{p.name}: external data of tensor '{name}' has a bad offset or length") from None
        if end > target.stat().st_size:
            raise RejectedModel(f"{p.name}: external data of tensor '{name}' runs past the end of {loc!r}")
    if external:
        try:
            load_external_data_for_model(model, str(base))
        except Exception as exc:
            raise RejectedModel(f"{p.name}: cannot read external data ({' '.join(str(exc).split())})") from None


def _check_tensors(model: onnx.ModelProto, p: Path) -> int:
    """Size and finiteness of every stored tensor; returns the float initializer element count."""
    params = sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type in FLOAT_TYPES)
    if params > MAX_PARAMS:
        raise RejectedModel(f"{p.name}: {params} parameters, more than {MAX_PARAMS}; too large for an exact audit")
    if model.graph.sparse_initializer:
        raise RejectedModel(f"{p.name}: sparse initializers are not supported")
    for name, t in _all_tensors(model.graph):
        if any(d < 0 for d in t.dims):
            raise RejectedModel(f"{p.name}: tensor '{name}' has a negative dimension {list(t.dims)}")
        n = math.prod(t.dims)
        if n > MAX_TENSOR_ELEMENTS:
            raise RejectedModel(f"{p.name}: tensor '{name}' has {n} elements (limit {MAX_TENSOR_ELEMENTS})")
        if t.data_type not in FLOAT_TYPES:
            continue
        try:
            arr = numpy_helper.to_array(t)
        except Exception as exc:
            raise RejectedModel(f"{p.name}: tensor '{name}' cannot be read ({' '.join(str(exc).split())})") from None
        if arr.size != n:
            raise RejectedModel(f"{p.name}: tensor '{name}' holds {arr.size} values for dims {list(t.dims)}")
        if not np.isfinite(arr.astype(np.float64)).all():
            raise RejectedModel(f"{p.name}: tensor '{name}' holds NaN or infinite values")
    return params


def _default_opset(model: onnx.ModelProto, p: Path) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    opset = versions[0] if versions else 1
    if opset < MIN_OPSET:
        raise RejectedModel(
            f"{p.name}: opset {opset} is older than {MIN_OPSET}, the oldest regionaudit reads "
            "(convert it with onnx.version_converter)"
        )
    return opset
