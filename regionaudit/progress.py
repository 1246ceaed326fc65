"""Progress bars on stderr, silent unless wanted.

    with Progress(total=len(segments), desc="density", enabled=not quiet) as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

A bar is drawn only when `enabled` is true and the stream (stderr by default) is a terminal;
otherwise every call is a no-op, so CI logs and pipes stay clean. Results never go to stderr.
"""

from __future__ import annotations

import sys
from typing import TextIO


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


class Progress:
    def __init__(
        self,
        total: int | None,
        desc: str = "",
        enabled: bool = True,
        unit: str = "it",
        file: TextIO | None = None,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = file if file is not None else sys.stderr
        self.enabled = bool(enabled) and _is_tty(self.file)
        self.n = 0
        self._bar = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                desc=self.desc,
                unit=self.unit,
                file=self.file,
                leave=False,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        return self

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __exit__(self, *exc) -> None:
        self.close()
