"""Reading an ONNX file and refusing broken or hostile ones before anything else looks at it.

Checks: the file is within the size limit, parses as an ONNX protobuf with a non-empty graph,
external data stays inside the model's folder and is as long as its tensors, tensor sizes are
sane, float weights are finite, and the graph passes the structural checks of `sanity`. Local
functions are inlined, so their bodies are checked and converted like any other node.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper
from onnx.external_data_helper import load_external_data_for_model

from regionaudit.errors import RejectedModel, TooLarge
from regionaudit.importer.registry import FLOAT_TYPES
from regionaudit.importer.sanity import check_graph, checker_message
from regionaudit.limits import (
    MAX_FILE_BYTES,
    MAX_PARAMS,
    MAX_TENSOR_ELEMENTS,
    format_bytes,
)

MIN_OPSET = 7


@dataclass
class ModelFile:
    """What the file says of the model; carried on, without the graph, into the import's result."""

    path: str
    sha256: str
    params: int
    opset: int
    producer: str
    doc_string: str

    def file_facts(self) -> dict:
        """These fields alone, for the result of a later stage that extends ModelFile too."""
        return {f.name: getattr(self, f.name) for f in fields(ModelFile)}


@dataclass
class LoadedModel(ModelFile):
    model: onnx.ModelProto


def read_onnx(path: str | Path, max_file_bytes: int | None = None) -> LoadedModel:
    """Read and validate `path`; every problem is a one-line RejectedModel (or TooLarge)."""
    p = Path(path)
    if not p.is_file():
        raise RejectedModel(f"{p}: " + ("not a regular file (a folder or a device)" if p.exists() else "no such file"))
    limit = max_file_bytes or MAX_FILE_BYTES
    try:
        size = p.stat().st_size
        if size > limit:
            raise TooLarge(
                f"{p.name}: the file is {format_bytes(size)}, more than the {format_bytes(limit)} limit "
                "(raise it with --max-file-size)"
            )
        raw = p.read_bytes()
    except OSError as exc:
        raise RejectedModel(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    model = _parse(raw, p)
    _check_text(model, p)
    _load_external(model, p, limit)
    model = _inline_functions(model, p)
    _densify(model, p)
    params = _check_tensors(model, p)
    opset = _default_opset(model, p)
    try:
        check_graph(model)
    except RejectedModel as exc:
        raise RejectedModel(f"{p.name}: {exc}") from None
    producer = " ".join(s for s in (model.producer_name, model.producer_version) if s)
    sha256 = hashlib.sha256(raw).hexdigest()
    return LoadedModel(str(p), sha256, params, opset, producer, model.doc_string, model=model)


def _check_text(message, p: Path) -> None:
    """Every string field of the model (op types, domains, names, the producer...) is text:
    protobuf hands one that is not UTF-8 back as bytes, which only a damaged file holds."""
    for field, value in message.ListFields():
        # (`is_repeated` from protobuf 6; `label` before, and gone in 7)
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        values = value if repeated else [value]
        if field.type == field.TYPE_MESSAGE:
            for inner in values:
                _check_text(inner, p)
        elif field.type == field.TYPE_STRING:
            for text in values:
                if isinstance(text, bytes):
                    shown = text.decode("utf-8", errors="replace")
                    what = "name" if field.name in ("name", "input", "output") else field.name.replace("_", " ")
                    raise RejectedModel(f"{p.name}: the {what} {shown!r} is not valid UTF-8 text (the file is damaged)")


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


def _densify(model: onnx.ModelProto, p: Path) -> None:
    """Sparse initializers and Constant nodes' `sparse_value` become dense tensors, which every
    later stage reads (and checks for size and finiteness)."""
    graph = model.graph
    for sp in graph.sparse_initializer:
        graph.initializer.append(_dense(sp, p))
    del graph.sparse_initializer[:]
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "sparse_value":
                    a.t.CopyFrom(_dense(a.sparse_tensor, p))
                    a.name, a.type = "value", onnx.AttributeProto.TENSOR
                    a.ClearField("sparse_tensor")


def _dense(sp: onnx.SparseTensorProto, p: Path) -> onnx.TensorProto:
    """A sparse tensor's dense twin: values at their indices (flat, or one row of coordinates
    each), zeros elsewhere."""
    dims, name = tuple(sp.dims), sp.values.name
    n = math.prod(dims)
    if any(d < 0 for d in dims) or n > MAX_TENSOR_ELEMENTS:
        raise RejectedModel(f"{p.name}: sparse tensor '{name}' has dims {list(dims)} (limit {MAX_TENSOR_ELEMENTS} elements)")
    try:
        values = numpy_helper.to_array(sp.values).reshape(-1)
        index = numpy_helper.to_array(sp.indices).astype(np.int64)
        flat = index.reshape(-1) if index.ndim <= 1 else np.ravel_multi_index(tuple(index.T), dims)
        if flat.size and flat.min() < 0:
            raise ValueError(f"negative index {int(flat.min())}")
        dense = np.zeros(n, dtype=values.dtype)
        dense[flat] = values
    except (ValueError, IndexError) as exc:
        raise RejectedModel(f"{p.name}: sparse tensor '{name}' is malformed ({' '.join(str(exc).split())})") from None
    return numpy_helper.from_array(dense.reshape(dims), name)


def _inline_functions(model: onnx.ModelProto, p: Path) -> onnx.ModelProto:
    if not model.functions:
        return model
    try:
        return onnx.inliner.inline_local_functions(model)
    except Exception as exc:  # onnx raises its own types (e.g. for recursive functions)
        raise RejectedModel(f"{p.name}: cannot inline the model's local functions: {checker_message(str(exc))}") from None


def _stored_bytes(t: onnx.TensorProto) -> int | None:
    """Bytes the tensor's dims and type need, or None for types of no fixed size (strings)."""
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return None
    if t.data_type == onnx.TensorProto.STRING:
        return None
    bits = {onnx.TensorProto.INT4: 4, onnx.TensorProto.UINT4: 4}.get(t.data_type)
    n = math.prod(t.dims)
    return (n * bits + 7) // 8 if bits else n * itemsize


def _load_external(model: onnx.ModelProto, p: Path, limit: int) -> None:
    base = p.parent.resolve()
    external = False
    total = 0  # bytes of external data in all, held to the same limit as one file
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
        if not target.exists():
            raise RejectedModel(f"{p.name}: external data file {loc!r} of tensor '{name}' is missing")
        if not target.is_file():
            raise RejectedModel(f"{p.name}: external data {loc!r} of tensor '{name}' is not a regular file")
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise RejectedModel(f"{p.name}: external data of tensor '{name}' has a bad offset or length") from None
        if offset < 0 or (length is not None and length < 0):
            raise RejectedModel(f"{p.name}: external data of tensor '{name}' has a negative offset or length")
        if any(d < 0 for d in t.dims):
            raise RejectedModel(f"{p.name}: tensor '{name}' has a negative dimension {list(t.dims)}")
        need = _stored_bytes(t)
        if need is not None and length is not None and length != need:
            raise RejectedModel(
                f"{p.name}: external data of tensor '{name}' in {loc!r} is {length} bytes long, "
                f"its dims {list(t.dims)} need {need}"
            )
        need = length if length is not None else need
        total += need or 0
        if need is not None and (need > limit or total > limit):
            raise TooLarge(
                f"{p.name}: external data up to tensor '{name}' (in {loc!r}) is {format_bytes(total)}, more than "
                f"the {format_bytes(limit)} limit (raise it with --max-file-size)"
            )
        size = target.stat().st_size
        if need is not None and offset + need > size:
            raise RejectedModel(
                f"{p.name}: external data file {loc!r} is shorter ({size} bytes) than tensor '{name}' needs "
                f"({need} bytes from offset {offset})"
            )
    if external:
        try:
            with warnings.catch_warnings():  # (onnx warns of a key it does not know, which it ignores, as we do)
                warnings.simplefilter("ignore")
                load_external_data_for_model(model, str(base))
        except Exception as exc:
            raise RejectedModel(f"{p.name}: cannot read external data ({' '.join(str(exc).split())})") from None


def _check_tensors(model: onnx.ModelProto, p: Path) -> int:
    """Size and finiteness of every stored tensor; returns the float initializer element count."""
    params = sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type in FLOAT_TYPES)
    if params > MAX_PARAMS:
        raise RejectedModel(f"{p.name}: {params} parameters, more than {MAX_PARAMS}; too large for an exact audit")
    known = set(onnx.TensorProto.DataType.values()) - {onnx.TensorProto.UNDEFINED}
    for name, t in _all_tensors(model.graph):
        if t.data_type not in known:
            raise RejectedModel(f"{p.name}: tensor '{name}' has an unknown data type ({t.data_type})")
        if any(d < 0 for d in t.dims):
            raise RejectedModel(f"{p.name}: tensor '{name}' has a negative dimension {list(t.dims)}")
        n = math.prod(t.dims)
        if n > MAX_TENSOR_ELEMENTS:
            raise RejectedModel(f"{p.name}: tensor '{name}' has {n} elements (limit {MAX_TENSOR_ELEMENTS})")
        if t.data_type == onnx.TensorProto.STRING:
            if len(t.string_data) != n:
                raise RejectedModel(f"{p.name}: tensor '{name}' holds {len(t.string_data)} strings for dims {list(t.dims)}")
            continue
        try:  # every type: an integer tensor whose data does not fit its dims is as broken
            arr = numpy_helper.to_array(t)
        except Exception as exc:
            raise RejectedModel(f"{p.name}: tensor '{name}' cannot be read ({' '.join(str(exc).split())})") from None
        if arr.size != n:
            raise RejectedModel(f"{p.name}: tensor '{name}' holds {arr.size} values for dims {list(t.dims)}")
        if t.data_type in FLOAT_TYPES and not np.isfinite(arr.astype(np.float64)).all():
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
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:  # (its ops' meaning is unknown here: onnx's checks and onnxruntime know no later one)
        raise RejectedModel(
            f"{p.name}: opset {opset} is newer than {newest}, the newest onnx {onnx.__version__} knows "
            "(upgrade onnx and onnxruntime, or export with an older opset)"
        )
    return opset
