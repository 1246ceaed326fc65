"""The child side of the importer fuzz test: imports model bytes in its own process, so a crash
of native code (onnxruntime, protobuf) takes down this worker, not the test run.

`Worker` keeps one spawned process alive across cases (torch and onnxruntime load once) and starts
a new one after a crash or a hang.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback


def _serve(conn, folder: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from regionaudit.errors import RegionAuditError
    from regionaudit.importer import import_model

    path = os.path.join(folder, "case.onnx")
    while True:
        data = conn.recv_bytes()
        with open(path, "wb") as f:
            f.write(data)
        try:
            imported = import_model(path)
            v = imported.validation
            outcome = ("imported", f"{v['reference']} max rel err {v['max_rel_err']:.3g}")
        except RegionAuditError as exc:
            outcome = ("refused", f"{type(exc).__name__}: {exc}")
        except BaseException as exc:  # noqa: BLE001 - this is what the test looks for
            outcome = ("escaped", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        conn.send(outcome)


class Worker:
    def __init__(self, folder, timeout_s: float = 60.0):
        self.folder = str(folder)  # where the child writes each case (the caller's temporary folder)
        self.timeout_s = timeout_s
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, args=(child, self.folder), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def run(self, data: bytes) -> tuple[str, str]:
        """('imported' | 'refused' | 'escaped' | 'crashed' | 'hung', detail)."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send_bytes(data)
        if not self._conn.poll(self.timeout_s):
            self.close()
            return "hung", f"no answer within {self.timeout_s} s"
        try:
            return self._conn.recv()
        except (EOFError, ConnectionError):
            self._proc.join(5)
            code = self._proc.exitcode
            self._proc = None
            return "crashed", f"the importing process died (exit code {code})"

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
            self._proc = None
