"""Where a result was computed: library versions, device, float type and thread count.

Region counts do not depend on any of this, but timings and the last digits of lengths,
deviations and distances can (BLAS rounding differs between builds, devices and thread counts),
so every result records it and a baseline from another environment is flagged.
"""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from regionaudit.version import __version__

LIBRARIES = ("torch", "numpy", "onnx", "onnxruntime")
# keys whose differences can move numbers (in their last digits) or timings; the rest is context
COMPARED = ("regionaudit", "python", "torch", "numpy", "onnx", "onnxruntime", "device", "dtype", "threads",
            "cpu_capability")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe(device: str | torch.device = "cpu", dtype: str = "float64") -> dict:
    """The environment of a run on `device` in `dtype`, as plain JSON-ready data."""
    device = torch.device(device)
    env = {
        "regionaudit": __version__,
        "python": platform.python_version(),
        **{name: _version(name) for name in LIBRARIES},
        "device": device.type,
        "device_name": _device_name(device),
        "dtype": str(dtype),
        "threads": torch.get_num_threads(),
        # the vector instructions torch's own CPU kernels use (AVX2, AVX512, ...), as torch reports
        # them: the product orientation, and so the sums' order, follows it
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
    }
    return env


def _device_name(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def differences(current: dict | None, baseline: dict | None) -> list[str]:
    """The compared keys on which two environments differ, as 'key a -> b' strings."""
    if not current or not baseline:
        return []
    return [
        f"{key} {baseline.get(key)} -> {current.get(key)}"
        for key in COMPARED
        if key in baseline and baseline.get(key) != current.get(key)
    ]


def environment_warning(current: dict | None, baseline: dict | None) -> str | None:
    """One line when a baseline was measured in another environment (None when the same, or when
    the baseline predates recorded environments)."""
    diff = differences(current, baseline)
    if not diff:
        return None
    return (
        "warning: the baseline was measured in another environment (" + "; ".join(diff) + "): "
        "region counts compare exactly, timings and last digits may not"
    )
