"""ONNX -> `regionaudit.ir.Network`: load and refuse bad files, fold constants, convert each node by
its registered converter, and check the result against onnxruntime."""

from regionaudit.importer.pipeline import ImportedModel, import_model

__all__ = ["ImportedModel", "import_model"]
