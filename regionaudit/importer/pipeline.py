"""`import_model`: the importer's stages in order, file -> validated `Network`: read and refuse a bad
file (`load`), fix the input and output (`signature`), convert each node by its registered converter
(`graph`, `converters/`), check against onnxruntime (`check`); with the facts the report needs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from regionaudit import ir
from regionaudit.errors import BadOption
from regionaudit.importer.check import validate
from regionaudit.importer.graph import build_network
from regionaudit.importer.load import ModelFile, read_onnx
from regionaudit.importer.signature import resolve_signature


@dataclass
class ImportedModel(ModelFile):
    network: ir.Network
    notes: list[str] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    nodes: list[dict] = field(default_factory=list)
    import_s: float = 0.0  # seconds to read, convert and check; the audit's timing reports it


def import_model(path, input_shape=None, output_name=None, dtype=torch.float64, device="cpu",
                 check_inputs=None, seed=0, max_file_bytes=None) -> ImportedModel:
    """Read, convert and check an ONNX model; every model problem raises RejectedModel."""
    t0 = time.perf_counter()
    dev = resolve_device(device)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise BadOption(f"dtype must be a torch floating-point dtype, not {dtype!r}")
    loaded = read_onnx(path, max_file_bytes)
    sig = resolve_signature(loaded.model.graph, input_shape, output_name)
    built = build_network(loaded.model, sig, loaded.opset)
    net = built.network
    net.to(dtype, dev)  # checked as it will be analysed: in this precision, on this device
    validation = validate(loaded.model, built, sig, check_inputs, seed)
    if validation["reference"] != "onnxruntime":
        net.notes.append(
            f"onnxruntime cannot run this model; the import was checked against {validation['reference']} instead"
        )
    records = node_records(net, built.op_types)
    return ImportedModel(
        **loaded.file_facts(),
        network=net,
        notes=net.notes,
        validation=validation,
        nodes=records,
        import_s=time.perf_counter() - t0,
    )


def resolve_device(device) -> torch.device:
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BadOption(f"unknown device {name!r} (use cpu, cuda or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadOption("device 'cuda' asked for, but CUDA is not available (use --device cpu or auto)")
    return dev


_PARAM_FIELDS = ("weight", "bias", "mul", "add")


def node_records(net: ir.Network, op_types: list[str]) -> list[dict]:
    """One plain record per IR node, for reports and `regionaudit inspect`."""
    records = []
    for i, node in enumerate(net.nodes):
        tensors = [getattr(node, f, None) for f in _PARAM_FIELDS]
        if op_types[i] == "PRelu":
            tensors.append(node.slope)
        records.append({
            "id": i,
            "name": node.name,
            "kind": node.kind,
            "op_type": op_types[i],
            "inputs": list(node.inputs),
            "shape": list(node.shape),
            "units": node.units,
            "params": sum(int(t.numel()) for t in tensors if isinstance(t, torch.Tensor)),
            "macs": int(node.macs([net.nodes[j].shape for j in node.inputs])),
            "detail": node.describe(),
        })
    return records


