"""regionaudit: exact linear-region audits of ReLU networks exported to ONNX."""

from regionaudit.version import __version__

__all__ = ["audit", "AuditResult", "__version__"]


def __getattr__(name):
    # torch is imported only when the API is used, so `regionaudit --version` stays instant
    if name == "audit":
        from regionaudit.api import audit

        return audit
    if name == "AuditResult":
        from regionaudit.result import AuditResult

        return AuditResult
    raise AttributeError(f"module 'regionaudit' has no attribute {name!r}")
