"""Progress bars: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io

from regionaudit.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_disabled_when_not_a_tty():
    stream = io.StringIO()
    with Progress(10, "density", enabled=True, file=stream) as bar:
        bar.update(3)
        bar.update(7)
    assert not bar.enabled
    assert bar.n == 10
    assert stream.getvalue() == ""


def test_disabled_on_request():
    stream = FakeTTY()
    with Progress(5, "distance", enabled=False, file=stream) as bar:
        bar.update(5)
    assert stream.getvalue() == ""


def test_draws_on_a_tty():
    stream = FakeTTY()
    with Progress(4, "density", enabled=True, file=stream) as bar:
        for _ in range(4):
            bar.update()
        bar.set_description("density (done)")
    assert bar.enabled
    assert "density" in stream.getvalue()


def test_default_stream_is_stderr(capsys):
    with Progress(2, "x") as bar:  # pytest's captured stderr is not a terminal
        bar.update(2)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_unknown_total_and_closed_stream():
    stream = FakeTTY()
    with Progress(None, "walk", file=stream) as bar:
        bar.update(1)
    closed = io.StringIO()
    closed.close()
    with Progress(3, "y", file=closed) as bar:
        bar.update(1)
    assert not bar.enabled
