"""Progress bars on stderr, silent unless wanted.

    with Progress(total=len(segments), desc="density", enabled=not quiet) as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

A bar is drawn when `enabled` is true and the stream (stderr by default) is a terminal. When it
is not (CI logs, pipes), a long stage prints one plain line about every 30 s instead, so a log is
never silent for minutes and never fills with bar redraws. Results never go to stderr.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_INTERVAL_S = 30.0


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def say(message: str, file: TextIO | None = None) -> None:
    """A status line for a person at a terminal (what is happening during a silent step);
    nothing in logs and pipes, where only what matters is written."""
    stream = file if file is not None else sys.stderr
    if _is_tty(stream):
        print(f"regionaudit: {message}", file=stream, flush=True)


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
        clock=time.monotonic,
        interval: float = PLAIN_INTERVAL_S,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = file if file is not None else sys.stderr
        self.plain = bool(enabled) and not _is_tty(self.file)
        self.enabled = bool(enabled) and not self.plain
        self.n = 0
        self._bar = None
        self.clock = clock
        self.interval = interval
        self._start = self._last = clock() if self.plain else 0.0

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
        elif self.plain:
            now = self.clock()
            if now - self._last >= self.interval:
                self._last = now
                print(self.plain_line(now - self._start), file=self.file, flush=True)

    def plain_line(self, elapsed: float) -> str:
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        return f"regionaudit: {self.desc} {done}{share}, {_duration(elapsed)} elapsed"

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
