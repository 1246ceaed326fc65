"""Reading user arrays and writing outputs safely.

Every output is written to a temporary file in the target folder, and once all of a run's are
written they are renamed into place, so an error never leaves a half-written report or some of a
run's outputs without the others (an output path that is a link is followed; a device,
a FIFO or an open descriptor, such as /dev/null or /dev/stdout, is appended to); Ctrl-C, SIGTERM
and --timeout are held while a file is written and renamed, and act right after. Arrays are read
without pickle, and their size is judged from the .npy header (inside an .npz: before
decompressing) against the file limit.
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import stat
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from regionaudit.errors import BadData, BadOption, TooLarge
from regionaudit.limits import MAX_FILE_BYTES, format_bytes, signals_deferred


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_files(files: list[tuple[str | os.PathLike, bytes, int | None]], then: Callable[[], None] | None = None) -> None:
    """Write every (path, data, mode) or none: each into a temporary file beside its path, then
    `then()` (writes into devices, interruptible), then rename them all into place. A failure
    before the renames (a folder that refuses the file, a full disk, an interrupt in `then`)
    removes every temporary file and leaves every path as it was. Signals that arrive while the
    files are written and renamed are held until they are all in place (or all removed).

    A temporary file from mkstemp is private (0600); before the rename it gets the permissions an
    ordinary `open(path, "w")` would give (or `mode`, to keep an edited file's own), so reports
    are readable as usual. A path that is a link is followed, not replaced by the new file.
    """
    staged: list[tuple[str, Path, Path, int | None]] = []  # (temporary, real path, as given, mode)
    try:
        with signals_deferred():
            for path, data, mode in files:
                staged.append(_staged(Path(path), data, mode))
            if then is None:
                _rename(staged)
        if then is not None:
            then()
            with signals_deferred():
                _rename(staged)
    finally:
        for tmp, *_ in staged:
            _remove(tmp)


def _staged(target: Path, data: bytes, mode: int | None) -> tuple[str, Path, Path, int | None]:
    if target.parent and not target.parent.exists():
        raise BadOption(f"cannot write {target}: folder {target.parent} does not exist")
    real = Path(os.path.realpath(target))
    tmp = None
    try:
        tmp = _temporary(real)
        Path(tmp).write_bytes(data)
    except OSError as exc:
        _remove(tmp)
        raise BadOption(f"cannot write {target}: {_reason(exc)}") from None
    except BaseException:
        _remove(tmp)
        raise
    return tmp, real, target, mode


def _rename(staged: list[tuple[str, Path, Path, int | None]]) -> None:
    for tmp, real, target, mode in staged:
        try:
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
            os.replace(tmp, real)
        except OSError as exc:
            raise BadOption(f"cannot write {target}: {_reason(exc)}") from None


def _temporary(real: Path) -> str:
    """An empty private file beside `real` (an OSError where its folder takes none)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent)
    os.close(fd)
    return tmp


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.lexists(tmp):
        os.unlink(tmp)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror or 'permission denied'} (the file or its folder is read-only)"
    return exc.strerror or str(exc)


STDOUT = "-"  # an output path that means standard output


def is_dash(path: str | os.PathLike) -> bool:
    """Whether a path is "-", standard output by name."""
    return os.fspath(path) == STDOUT


def to_stdout(path: str | os.PathLike) -> bool:
    """Whether an output at `path` goes to standard output: "-", or a path that names what
    standard output is (/dev/stdout, or the file a shell redirected it to)."""
    if is_dash(path):
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # (no such file; stdout is no file)
        return False


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (symbolic and hard links too); where one does not exist
    yet, whether they resolve to one path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse an output path before any work is done: its folder must exist and take new files
    (it is where the output's temporary file goes), a device must take writes, and it is no folder."""
    if is_dash(path):
        return
    target = Path(path)
    if target.is_dir():
        raise BadOption(f"cannot write {target}: it is a folder")
    if is_special(target):
        if not os.access(target, os.W_OK):
            raise BadOption(f"cannot write {target}: permission denied")
        return
    if not target.parent.is_dir():
        raise BadOption(f"cannot write {target}: folder {target.parent} does not exist")
    try:  # the one sure test (permissions, a read-only mount, a full disk's inodes): make one
        with signals_deferred():  # (a --timeout that expires between the two leaves no file behind)
            os.unlink(_temporary(Path(os.path.realpath(target))))
    except OSError as exc:
        raise BadOption(f"cannot write {target}: {_reason(exc)}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def is_special(path: str | os.PathLike) -> bool:
    """An existing path that is no regular file or folder (a device such as /dev/null, a FIFO, a
    socket), or one that names an open file descriptor (/dev/stdout -> /proc/self/fd/1, which a
    shell may have pointed at a regular file): an output is written into it, never renamed over."""
    link = os.fspath(path)
    for _ in range(40):  # (a loop of links ends in an OSError below)
        if not os.path.islink(link):
            break
        target = os.readlink(link)
        if target.startswith(("/proc/", "/dev/fd/")):
            return True
        link = os.path.join(os.path.dirname(link), target)
    try:
        kind = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(kind) or stat.S_ISDIR(kind))


def appended(path: str | os.PathLike) -> bool:
    """Whether an output at `path` is written into it (`write_into`), not staged and renamed:
    standard output ("-"), or a device, FIFO or open descriptor (`is_special`)."""
    return is_dash(path) or is_special(path)


def write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    if appended(path):
        write_into(path, data)
    else:
        write_files([(path, data, mode)])


def write_into(path: str | os.PathLike, data: bytes) -> None:
    """Into a device, FIFO or open descriptor: appended, not truncated (a shell's `>> log` stays
    whole); signals are not held: a FIFO with no reader would otherwise block Ctrl-C, and no file
    is left half-way in a folder. "-" is standard output."""
    try:
        if is_dash(path):
            sys.stdout.flush()  # (what was printed before comes first)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        with open(path, "ab") as f:
            f.write(data)
    except OSError as exc:
        raise BadOption(f"cannot write {path}: {_reason(exc)}") from None


def _check_regular(p: Path, what: str) -> None:
    if not p.is_file():
        raise BadData(f"{what} file {p} " + ("is not a regular file (a folder or a device)" if p.exists() else "not found"))


def sha256_of(path: str | os.PathLike, what: str = "input") -> str:
    """The file's sha256. A missing file, a folder or a device is BadData naming `what`: probe
    files are hashed before they are read, and a FIFO would block the read forever."""
    p = Path(path)
    _check_regular(p, what)
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_array_size(p: Path, what: str, limit: int) -> None:
    """Refuse a file, or an .npz member as its .npy header declares it, beyond `limit` bytes,
    before anything is read or decompressed."""
    hint = "raise the limit with --max-file-size"
    size = p.stat().st_size
    if size > limit:
        raise TooLarge(f"{what} file {p} is {format_bytes(size)}, more than the {format_bytes(limit)} limit ({hint})")
    if not zipfile.is_zipfile(p):
        return
    try:
        with zipfile.ZipFile(p) as z:
            for info in z.infolist():
                with z.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(member)
                declared = math.prod(shape) * dtype.itemsize
                if max(declared, info.file_size) > limit:
                    raise TooLarge(
                        f"{what} file {p}: member {info.filename!r} holds {format_bytes(max(declared, info.file_size))} "
                        f"uncompressed, more than the {format_bytes(limit)} limit ({hint})"
                    )
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise BadData(f"{what} file {p} is not a readable .npz file: {' '.join(str(e).split())[:200]}") from None


NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK\x03\x04"
EMPTY_ZIP = b"PK\x05\x06"  # a zip file's end record first: no members (np.savez with no arrays)


def _check_numpy_file(p: Path, what: str) -> None:
    """A text or other file gets a message about its format, not numpy's about pickled data."""
    with open(p, "rb") as f:
        start = f.read(len(NPY_MAGIC))
    if start.startswith(NPY_MAGIC) or start.startswith(NPZ_MAGIC):
        return
    if start.startswith(EMPTY_ZIP):
        raise BadData(f"{what} file {p} is an .npz file that holds no array; it must hold exactly one")
    if p.suffix.lower() in (".npy", ".npz"):
        state = "empty" if not start else f"damaged or not written by numpy (it does not start with numpy's {p.suffix.lower()} header)"
        raise BadData(f"{what} file {p} is {state}")
    kind = f"a {p.suffix} file" if p.suffix else "not a numpy file"
    raise BadData(
        f"{what} file {p} is {kind}, not .npy or .npz; regionaudit reads numpy arrays: load the rows and "
        "save them with numpy.save (e.g. np.save('rows.npy', np.loadtxt('rows.csv', delimiter=',')))"
    )


def load_array(
    path: str | os.PathLike, what: str = "data", head: int | None = None, as_float: bool = True,
    max_file_bytes: int | None = None,
) -> np.ndarray:
    """A float array from .npy, or .npz holding exactly one array; never unpickles.

    With `head`, only the first `head` rows are read and checked (a .npy file is memory-mapped,
    so a large file is not read twice just to check the import on its first rows). With
    `as_float=False` the file's own dtype is kept, so a caller can tell integer pixels apart.
    """
    p = Path(path)
    _check_regular(p, what)
    _check_numpy_file(p, what)
    check_array_size(p, what, max_file_bytes or MAX_FILE_BYTES)
    try:
        loaded = np.load(p, allow_pickle=False, mmap_mode="r" if head is not None else None)
    except ValueError as e:
        if "pickle" in str(e) or "Python objects" in str(e):  # (the second: memory-mapped, with head)
            raise BadData(f"{what} file {p} cannot be read without pickle (object arrays are refused): {e}") from None
        raise BadData(f"{what} file {p} is damaged or truncated: {e}") from None
    except Exception as e:  # numpy raises many kinds for a damaged file
        raise BadData(f"{what} file {p} is not a readable .npy/.npz file: {e}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if len(names) != 1:
                raise BadData(f"{what} file {p} must hold exactly one array, found {len(names)}: {names}")
            arr = loaded[names[0]]
    else:
        arr = loaded
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise BadData(f"{what} file {p} holds {arr.dtype} values; numbers are needed (a float or integer array)")
    if arr.ndim == 0:
        raise BadData(f"{what} file {p} holds a single number; an array of rows is needed")
    arr = np.asarray(arr[:head] if head is not None else arr)
    if arr.size and np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise BadData(f"{what} file {p} contains {bad} NaN or infinite values")
    return arr.astype(np.float64, copy=False) if as_float else arr
