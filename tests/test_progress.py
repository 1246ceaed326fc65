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
    assert bar.enabled and bar.n == 1 and "walk: " in stream.getvalue()
    closed = io.StringIO()
    closed.close()
    with Progress(3, "y", file=closed) as bar:
        bar.update(1)
    assert not bar.enabled


def test_audit_reports_increments_that_add_up_to_each_total():
    """audit() calls each stage's callable with increments; they must sum to the stage's total."""
    from pathlib import Path

    import regionaudit

    samples = Path(__file__).resolve().parents[1] / "sample_models"
    counts: dict[str, list[int]] = {}

    def progress(stage, total):
        counts[stage] = [total, 0]

        def update(n=1):
            counts[stage][1] += n

        return update

    regionaudit.audit(samples / "digits_cnn.onnx", data=samples / "digits_test.npy", pairs=7, max_points=5,
                      loops=2, loop_steps=4, max_memory=2**20, progress=progress, slice=False)
    assert counts == {"segments": [7, 7], "loops": [2, 2], "points": [5, 5]}
