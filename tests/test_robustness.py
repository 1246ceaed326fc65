"""Hostile, broken and huge inputs through the CLI: exit 2, one line naming the problem, no
traceback, no file left behind; interrupted runs (SIGINT, SIGTERM, --timeout) end the same way."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hostile
from clirun import run
from regionaudit.errors import RejectedModel
from regionaudit.importer.load import read_onnx

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "sample_models" / "digits_cnn.onnx"
MLP = ROOT / "sample_models" / "digits_mlp.onnx"
DIGITS = ROOT / "sample_models" / "digits_test.npy"
FAST = ["--no-slice", "--pairs", "2", "--max-points", "2", "-q"]


def assert_refused(code: int, err: str, fragment: str | None = None, exit_code: int = 2) -> None:
    assert code == exit_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    if fragment is not None:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return folder, hostile.build_all(folder)


@pytest.mark.parametrize("case", [make.__name__ for make in hostile.CASES])
def test_hostile_model_through_the_cli(hostile_folder, tmp_path, capsys, case):
    """Each broken graph is refused in one line naming it, and writes nothing; the valid odd ones import."""
    _, cases = hostile_folder
    path, expected = cases[case]
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = run([path, "--json", out / "r.json", "--card", out / "card.md", *FAST], capsys)
    if expected is None:
        assert code == 0, err
        assert sorted(p.name for p in out.iterdir()) == ["card.md", "r.json"]
    else:
        assert_refused(code, err, expected)
        assert list(out.iterdir()) == []


def test_a_folder_of_hostile_files_in_one_command(hostile_folder):
    """One process goes through the whole folder: one line and exit 2 for each refused file."""
    folder, cases = hostile_folder
    script = (
        "import sys\nfrom regionaudit.cli import main\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n        main(['inspect', path])\n"
        "    except SystemExit as e:\n        print(f'{path}\\t{e.code}', flush=True)\n"
        "    print('<<end>>', file=sys.stderr, flush=True)\n"
    )
    paths = sorted(str(p) for p in folder.glob("*.onnx"))
    proc = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=600,
                          cwd=folder, env={**os.environ, "OMP_NUM_THREADS": "1"})
    codes = dict(line.split("\t") for line in proc.stdout.splitlines() if "\t" in line)
    messages = proc.stderr.split("<<end>>\n")[:-1]
    assert len(messages) == len(paths) and "Traceback" not in proc.stderr
    by_name = {p.name: expected for p, expected in cases.values()}
    for path, msg in zip(paths, messages):
        expected = by_name[Path(path).name]
        if expected is None:
            assert codes[path] == "0" and "Warning" not in msg, msg
        else:
            assert codes[path] == "2" and len(msg.strip().splitlines()) == 1, (path, msg)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


# --- sizes ------------------------------------------------------------------------------------


def test_model_file_over_the_file_limit(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(MLP.read_bytes())
    code, _, err = run(["inspect", path, "--max-file-size", "1K"], capsys)
    assert_refused(code, err, "--max-file-size")
    assert "1.0 KiB" in err
    code, _, err = run(["inspect", path, "--max-file-size", "10M"], capsys)
    assert code == 0, err


def test_data_file_over_the_file_limit(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, np.load(DIGITS)[:50])
    code, _, err = run([MLP, "--data", data, "--json", tmp_path / "r.json", "--max-file-size", "4K", *FAST], capsys)
    assert_refused(code, err, "--max-file-size")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("option", ["--labels", "--slice-points"])
def test_labels_and_slice_points_over_the_file_limit(tmp_path, capsys, option):
    """Every file the run reads is held to --max-file-size, not only the model and the data."""
    data, big = tmp_path / "rows.npy", tmp_path / "big.npy"
    np.save(data, np.load(DIGITS)[:20])  # 10 KiB
    np.save(big, np.zeros((20 if option == "--labels" else 3, 2000)))  # 320 or 48 KiB
    fast = [a for a in FAST if a != "--no-slice"] if option == "--slice-points" else FAST
    code, _, err = run([MLP, "--data", data, option, big, "--json", tmp_path / "r.json", "--max-file-size", "40K", *fast], capsys)
    assert_refused(code, err, "--max-file-size")
    assert not (tmp_path / "r.json").exists()


def test_a_folder_given_as_the_model_is_named_as_such(tmp_path):
    """The library's own read says what the path is (the command line's argument check does too)."""
    with pytest.raises(RejectedModel, match="not a regular file"):
        read_onnx(tmp_path)
    with pytest.raises(RejectedModel, match="no such file"):
        read_onnx(tmp_path / "m.onnx")


def test_npz_bomb_is_judged_by_its_header(tmp_path, capsys):
    """A small .npz whose member decompresses to 4 GiB is refused before decompressing."""
    bomb = tmp_path / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 64), np.float64))
    header["shape"] = (2**23, 64)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("arr_0.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            block = bytes(1 << 20)
            for _ in range(64):  # 64 MiB of zeros: a few KiB compressed; the header promises 4 GiB
                member.write(block)
    assert bomb.stat().st_size < 1 << 20
    code, _, err = run([MLP, "--data", bomb, "--json", tmp_path / "r.json", *FAST], capsys)
    assert_refused(code, err, "arr_0.npy")
    assert "4.0 GiB" in err and "--max-file-size" in err
    assert not (tmp_path / "r.json").exists()


def test_probe_that_cannot_fit_max_memory(tmp_path, capsys):
    code, _, err = run([CNN, "--max-memory", "64K", "--json", tmp_path / "r.json", *FAST], capsys)
    assert_refused(code, err, "--max-memory 64.0 KiB")
    assert "cannot be split" in err and "raise --max-memory" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_limit_values_are_usage_errors(tmp_path, capsys):
    for argv in (["--max-file-size", "lots"], ["--max-file-size", "-1"], ["--timeout", "0"], ["--timeout", "x"]):
        code, _, err = run(["inspect", MLP, *argv], capsys)
        assert_refused(code, err)


# --- outputs ----------------------------------------------------------------------------------


def test_missing_output_folder(tmp_path, capsys):
    code, _, err = run([MLP, "--json", tmp_path / "nope" / "r.json", *FAST], capsys)
    assert_refused(code, err, "does not exist")


@pytest.mark.parametrize("outputs,message", [
    (["--json", "r.json", "--card", "r.json"], "--json and --card both name r.json"),
    (["-o", "r.html", "--junit", "./r.html"], "-o and --junit both name r.html"),
    (["--json", "m.onnx"], "--json m.onnx would overwrite the model"),
    (["--card", "d.npy"], "--card d.npy would overwrite --data"),
])
def test_an_output_may_not_replace_another_or_an_input(tmp_path, capsys, monkeypatch, outputs, message):
    """No output may replace another output or the model (--json m.onnx)."""
    monkeypatch.chdir(tmp_path)
    Path("m.onnx").write_bytes(MLP.read_bytes())
    np.save("d.npy", np.random.default_rng(0).standard_normal((8, 64)))
    code, _, err = run(["m.onnx", "--data", "d.npy", *outputs, *FAST], capsys)
    assert_refused(code, err, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "m.onnx"]
    assert Path("m.onnx").read_bytes() == MLP.read_bytes()


def test_inspect_may_not_replace_the_model(tmp_path, capsys):
    """`inspect m.onnx --json m.onnx` is refused: its JSON would replace the model."""
    model = tmp_path / "m.onnx"
    model.write_bytes(MLP.read_bytes())
    code, _, err = run(["inspect", model, "--json", model], capsys)
    assert_refused(code, err, f"--json {model} would overwrite the model")
    assert model.read_bytes() == MLP.read_bytes()


def test_a_folder_that_takes_no_file_is_refused_before_the_analysis(tmp_path, capsys, monkeypatch):
    """The output folder is tried (a file made and removed) before any work, so a read-only
    mount fails at once, even for root, whom permission bits do not stop."""
    import regionaudit.api as api

    monkeypatch.setattr(api, "trace_segments", lambda *a, **k: pytest.fail("the analysis ran"))
    code, _, err = run([MLP, "--json", "/proc/r.json", *FAST], capsys)
    assert_refused(code, err, "cannot write /proc/r.json")


def test_an_output_that_fails_leaves_the_others_unwritten(tmp_path, capsys, monkeypatch):
    """Outputs are all written or none: the JUnit file failing (a full disk), the JSON is not
    left behind and the model card being appended to keeps its bytes, where outputs put in place
    one by one would leave those before the failure."""
    real = Path.write_bytes

    def full_for_junit(self, data):
        if ".j.xml." in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, data)

    card = tmp_path / "card.md"
    card.write_bytes(b"# My model\n")
    monkeypatch.setattr(Path, "write_bytes", full_for_junit)
    code, _, err = run([MLP, "--json", tmp_path / "r.json", "-o", tmp_path / "r.html", "--card-append", card,
                        "--junit", tmp_path / "j.xml", *FAST], capsys)
    assert_refused(code, err, f"cannot write {tmp_path / 'j.xml'}: no space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md"] and card.read_bytes() == b"# My model\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_device_that_fails_leaves_the_files_unwritten(tmp_path, capsys):
    code, _, err = run([MLP, "--json", tmp_path / "r.json", "--junit", "/dev/full", *FAST], capsys)
    assert_refused(code, err, "cannot write /dev/full: no space left")
    assert list(tmp_path.iterdir()) == []


def test_an_output_into_a_fifo_or_through_a_link_keeps_it(tmp_path, capsys):
    """A FIFO (like /dev/null or /dev/stdout, no regular file) is written into, not replaced by a
    file; a link is followed: the file it names gets the output."""
    import json
    import threading

    fifo, real, link = tmp_path / "pipe", tmp_path / "real.json", tmp_path / "link.json"
    os.mkfifo(fifo)
    real.write_text("")
    link.symlink_to(real.name)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, _, err = run([MLP, "--json", fifo, "--card", link, *FAST], capsys)
    reader.join(60)
    assert code == 0, err
    assert fifo.is_fifo() and json.loads(got[0])["model"]["neurons"] == 64
    assert link.is_symlink() and "| Regions per segment" in real.read_text()  # the card's table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe", "real.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="no /proc/self/fd on this system")
def test_an_output_through_an_open_descriptor_is_appended_to_its_file(tmp_path):
    """/dev/stdout is a link to /proc/self/fd/1, which a shell's `>> log` points at a regular file:
    the output goes into that file after what it holds, not over it (before: the file was renamed
    over, losing what the shell had written, and as root /dev/stdout itself was replaced)."""
    from regionaudit.files import is_special, write_bytes

    log = tmp_path / "log.txt"
    log.write_text("old\n")
    with open(log, "ab") as f:
        link = tmp_path / "stdout"
        link.symlink_to(f"/proc/self/fd/{f.fileno()}")
        assert is_special(link)
        write_bytes(link, b"new\n")
    assert log.read_text() == "old\nnew\n" and link.is_symlink()


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_write_failures_are_one_line_and_leave_nothing(tmp_path, capsys, monkeypatch, failure):
    """A full disk or a read-only target while writing: one line, no partial or temporary file."""
    real = Path.write_bytes

    def failing(self, data):
        real(self, data[: len(data) // 2])  # half written, then the device refuses
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(Path, "write_bytes", failing)
    code, _, err = run([MLP, "--json", tmp_path / "r.json", *FAST], capsys)
    assert_refused(code, err, "cannot write")
    assert {errno.ENOSPC: "no space left", errno.EACCES: "read-only", errno.EROFS: "read-only"}[failure] in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run([MLP, "--json", folder / "r.json", *FAST], capsys)
    finally:
        folder.chmod(0o755)
    assert_refused(code, err, "cannot write")
    assert list(folder.iterdir()) == []


def test_interrupt_while_writing_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    def interrupted(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", interrupted)
    code, _, err = run([MLP, "--json", tmp_path / "r.json", *FAST], capsys)
    assert_refused(code, err, "interrupted", exit_code=130)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_during_the_rename_waits_for_it(tmp_path):
    """SIGINT arriving while a file is written is held until it is complete and in place."""
    from regionaudit.files import write_bytes

    real = Path.write_bytes
    target = tmp_path / "r.json"

    def write_then_signal(self, data):
        os.kill(os.getpid(), signal.SIGINT)
        real(self, data)

    payload = b"x" * 100_000
    # (a shell starts a background job with SIGINT ignored, and an ignored signal stays ignored)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Path, "write_bytes", write_then_signal)
            with pytest.raises(KeyboardInterrupt):
                write_bytes(target, payload)
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert target.read_bytes() == payload
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --- interrupted runs ---------------------------------------------------------------------------

# The child marks on stdout the moment the analysis starts, so the test signals a run in progress.
_CHILD = """
import sys
import regionaudit.api as api
real = api.trace_segments
def traced(*a, **k):
    print("analysing", flush=True)
    return real(*a, **k)
api.trace_segments = traced
from regionaudit.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("signum,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signal_during_the_analysis(tmp_path, signum, code, word):
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(CNN), "--no-slice", "--pairs", "5000", "--max-points", "0", "-q", "-o", str(out / "r.html"), "--json", str(out / "r.json")]
    # (the child as a user's shell starts it: a background job's shell would have it ignore SIGINT)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "analysing"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_refused(proc.returncode, err, word, exit_code=code)
    assert list(out.iterdir()) == []


def test_timeout_ends_the_run_cleanly(tmp_path, capsys):
    """100 000 segments: far more than any machine traces in 2 s."""
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run([CNN, "--no-slice", "--pairs", "100000", "--max-points", "0", "--timeout", "2", "--json", out / "r.json", "-q"], capsys)
    assert_refused(code, err, "--timeout 2 s")
    assert "raise --timeout" in err
    assert list(out.iterdir()) == []
    # the timer is gone once the command returns
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# The child raises SIGALRM (as --timeout's timer does) the moment numpy starts to load, which is
# inside onnxruntime's native import of it in a fresh process.
_ALARM_CHILD = """
import signal, sys
class AlarmAtNumpy:
    fired = False
    def find_spec(self, name, path=None, target=None):
        if name.startswith("numpy") and not AlarmAtNumpy.fired:
            AlarmAtNumpy.fired = True
            signal.raise_signal(signal.SIGALRM)
        return None
sys.meta_path.insert(0, AlarmAtNumpy())
from regionaudit.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("command", [["inspect", MLP], ["compare", MLP, CNN, "-q"]])
def test_timeout_while_the_libraries_load(tmp_path, command):
    """A --timeout that expires while numpy, torch and onnxruntime load is the timeout's one line
    and exit 2, not a failed import reported as an internal error (exit 3)."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", _ALARM_CHILD, *map(str, command), "--timeout", "600",
                           "--json", str(out / "r.json")], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert_refused(proc.returncode, proc.stderr, "--timeout 600 s")
    assert list(out.iterdir()) == []


def test_inspect_timeout_names_no_option_it_lacks(tmp_path, capsys):
    """inspect has no --pairs, --max-points or --max-knots: its timeout line names none of them."""
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(["inspect", CNN, "--timeout", "0.001", "--json", out / "m.json"], capsys)
    assert_refused(code, err, "--timeout 0.001 s; raise --timeout")
    assert "--pairs" not in err and "--max-knots" not in err
    assert list(out.iterdir()) == []


def test_sigterm_handler_is_put_back(tmp_path, capsys):
    before = signal.getsignal(signal.SIGTERM)
    code, _, _ = run(["inspect", MLP], capsys)
    assert code == 0 and signal.getsignal(signal.SIGTERM) is before


def test_every_output_goes_through_the_atomic_writer():
    """Only files.py opens files for writing; everything else hands it bytes (write_bytes), so
    every output is atomic and signal-safe."""
    package = ROOT / "regionaudit"
    writing = re.compile(r"""open\([^)]*['"][wax]b?\+?['"]|\.write_(text|bytes)\(|savefig\(\s*(?!buf\b)[\w.]+\s*,""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in package.rglob("*.py") if p.name != "files.py"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if writing.search(line)]
    assert offenders == []


def test_external_data_beyond_the_file_limit(tmp_path, capsys):
    """External data counts against --max-file-size too (all of it together), before it is read."""
    import onnx
    from onnx import TensorProto, numpy_helper

    nodes, inits, i, o = hostile.mlp_parts()
    big = numpy_helper.from_array(np.zeros(1000, np.float32), "unused")
    (tmp_path / "big.bin").write_bytes(big.raw_data)
    big.ClearField("raw_data")
    big.data_location = TensorProto.EXTERNAL
    big.external_data.add(key="location", value="big.bin")
    path = tmp_path / "m.onnx"
    onnx.save(hostile.model_of(nodes, inits + [big], i, o), str(path))
    assert path.stat().st_size < 1000
    code, _, err = run(["inspect", path, "--max-file-size", "3000"], capsys)  # 4000 bytes outside
    assert_refused(code, err, "big.bin")
    assert "--max-file-size" in err and "3.9 KiB" in err
    code, _, err = run(["inspect", path, "--max-file-size", "5000"], capsys)
    assert code == 0, err


def test_a_timeout_during_the_output_probe_leaves_no_file(tmp_path, monkeypatch):
    """`check_writable` makes and removes a file beside the output; a --timeout whose alarm comes
    between the two still leaves the folder empty, and the alarm is acted on after."""
    from regionaudit import files

    made = files._temporary

    def alarm_after_making(real):
        tmp = made(real)
        os.kill(os.getpid(), signal.SIGALRM)  # (delivered here, between the file and its removal)
        return tmp

    class Expired(Exception):
        pass

    def expired(signum, frame):
        raise Expired

    monkeypatch.setattr(files, "_temporary", alarm_after_making)
    previous = signal.signal(signal.SIGALRM, expired)
    try:
        with pytest.raises(Expired):
            files.check_writable(tmp_path / "r.json")
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert list(tmp_path.iterdir()) == []
