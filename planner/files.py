"""Reading the user's files and writing the planner's.

Reading: only regular files, and only up to a size cap (`read_input`), so that a FIFO, a device or a
5 GB file given as input is one line of error, not a hang or an out-of-memory kill.

Writing (`write_atomic`): a regular file is written to a temporary file beside it and renamed over it,
so a failed or interrupted run leaves no partial file; nothing is overwritten without `force`, and two
runs racing for the same new file cannot both succeed (the first to hard-link its temporary file wins).
Streams are written through: a FIFO, a terminal, /dev/null, /dev/stdout and /proc/self/fd/N stay what
they are (the last two write to the process's own descriptor). Modes follow the umask, as the shell's would.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from planner.errors import PlannerError

NOT_REGULAR = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
CHUNK = 1 << 20


def kind_of(mode: int) -> str:
    return NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")


def open_error(path: Path, exc: OSError) -> PlannerError:
    """One line for a path that cannot be opened, saying which of the ways it failed."""
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return PlannerError(f"{path}: symbolic link to a missing file")
    if exc.errno == errno.ENOENT:
        return PlannerError(f"{path}: no such file")
    if exc.errno == errno.ELOOP:
        return PlannerError(f"{path}: symbolic link loop")
    if exc.errno == errno.ENXIO:  # a socket (or a device with nothing behind it)
        return PlannerError(f"{path}: not a regular file")
    return PlannerError(f"{path}: cannot open: {exc.strerror}")


def read_input(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them, with one-line errors for the ways
    reading fails. O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused after the open)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise open_error(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PlannerError(f"{path}: is {kind_of(info.st_mode)}, expected a {what} file")
        too_big = PlannerError(f"{path}: file larger than {max_bytes:,} bytes, the most a {what} file may have")
        if info.st_size > max_bytes:
            raise too_big
        chunks, total = [], 0
        while chunk := os.read(fd, min(CHUNK, max_bytes + 1 - total)):  # a file that grows while read stops here too
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise too_big
        return b"".join(chunks)
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlannerError(f"{path}: not UTF-8 text") from None


# --- modes and signals -----------------------------------------------------------------------------


def umask() -> int:
    """The process's umask, read without changing it where Linux tells it (another thread may be creating files)."""
    with suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(executable: bool = False) -> int:
    """The mode `open(..., 'w')` (or, executable, `install`) would give a new file under the current umask."""
    return (0o777 if executable else 0o666) & ~umask()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def cleanup_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP end the process as SystemExit while the block runs, so its cleanup (removing
    temporary files) runs as it does for Ctrl-C. Handlers someone else installed (or SIG_IGN) are kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            replaced[sig] = signal.signal(sig, _exit_on_signal)
    try:
        yield
    finally:
        for sig, handler in replaced.items():
            signal.signal(sig, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block (a few renames that must all happen) has run."""
    deferred = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, deferred)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --- writing -----------------------------------------------------------------------------------------

_FD_LINK = re.compile(r"/(?:proc/(?:self|thread-self|\d+)/fd|dev/fd)/(\d+)")


def own_descriptor(path: Path) -> int | None:
    """The open descriptor of this process that `path` names (/dev/stdout, /dev/fd/N, /proc/self/fd/N,
    or a symbolic link to one of them), or None."""
    text = str(path)
    for _ in range(40):  # the kernel's own limit on links followed
        found = _FD_LINK.fullmatch(os.path.normpath(text))
        if found and (found[0].startswith(("/dev/", "/proc/self/", "/proc/thread-self/"))
                      or found[0].startswith(f"/proc/{os.getpid()}/")):
            fd = int(found[1])
            try:
                os.fstat(fd)
            except OSError:
                return None
            return fd
        try:
            text = os.path.join(os.path.dirname(text), os.readlink(text))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class Target:
    """Where a write goes: `fd` (an open descriptor of this process), a `stream` (FIFO or character
    device, written through) or a regular `file` at `path` (`exists`: one is there now)."""

    how: str
    path: Path
    fd: int = -1
    exists: bool = False


def write_target(path: Path, force: bool) -> Target:
    """Where writing `path` goes, or the one-line reason it cannot: a directory, a block device or socket,
    a dangling link, a missing parent directory, or an existing file without `force`."""
    path = Path(path)
    fd = own_descriptor(path)
    if fd is not None:
        return Target("fd", path, fd)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise PlannerError(f"{path}: symbolic link to a missing file") from None
        parent = path.parent
        if not parent.is_dir():
            raise PlannerError(f"{parent} does not exist (create the directory first)") from None
        return Target("file", path)
    except OSError as exc:
        raise open_error(path, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise PlannerError(f"{path} is a directory")
    if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return Target("stream", path)
    if not stat.S_ISREG(info.st_mode):
        raise PlannerError(f"{path} is {kind_of(info.st_mode)}; write to a regular file, a FIFO or a terminal")
    if not force:
        raise PlannerError(f"{path} exists; pass {{force}} to overwrite it", refs=("force",))
    if os.path.islink(path):  # replace the file the link points to, and keep the link
        real = Path(os.path.realpath(path))
        with suppress(OSError):
            seen = os.lstat(real)
            if stat.S_ISREG(seen.st_mode) and (seen.st_dev, seen.st_ino) == (info.st_dev, info.st_ino):
                return Target("file", real, exists=True)
        raise PlannerError(f"{path}: cannot tell which file this symbolic link points to")
    return Target("file", path, exists=True)


def check_writable(path: Path, force: bool) -> None:
    """Fail now, before long work, if writing `path` later would fail."""
    write_target(path, force)


def write_atomic(path: Path, text: str, force: bool = False, executable: bool = False) -> None:
    write_atomic_bytes(path, text.encode("utf-8"), force, executable)


def write_atomic_bytes(path: Path, payload: bytes, force: bool = False, executable: bool = False) -> None:
    target = write_target(path, force)
    try:
        if target.how == "fd":
            for stream in (sys.stdout, sys.stderr):  # what Python buffered for this descriptor goes first
                with suppress(Exception):
                    if stream.fileno() == target.fd:
                        stream.flush()
            _write_all(target.fd, payload)
        elif target.how == "stream":
            _write_stream(target.path, payload)
        else:
            with cleanup_on_termination():
                _write_file(target, payload, force, executable)
    except OSError as exc:
        raise PlannerError(f"{path}: cannot write: {exc.strerror}") from None


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def _write_stream(path: Path, payload: bytes) -> None:
    # O_NONBLOCK: a FIFO nobody reads is an error now (ENXIO), not a hang; then block while writing
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise PlannerError(f"{path}: a FIFO that no process is reading") from None
        raise
    try:
        os.set_blocking(fd, True)
        _write_all(fd, payload)
    finally:
        os.close(fd)


def _write_file(target: Target, payload: bytes, force: bool, executable: bool) -> None:
    path = target.path
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PlannerError(f"{path}: cannot create a file in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), file_mode(executable))
            os.fsync(handle.fileno())
        with signals_deferred():
            if force:
                _replace_regular(tmp, path)
            else:
                _link_new(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)


def _replace_regular(tmp: str, path: Path) -> None:
    """os.replace, but only over a regular file or nothing: what became a FIFO or device since is kept."""
    with suppress(FileNotFoundError):
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise PlannerError(f"{path} is no longer a regular file; not replaced")
    os.replace(tmp, path)


def _link_new(tmp: str, path: Path) -> None:
    """Put `tmp` at `path` only if nothing is there: link() fails when the name exists, so of two runs
    racing for the same new file one wins and the other is told the file exists."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise PlannerError(f"{path} exists; pass {{force}} to overwrite it", refs=("force",)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename
            raise PlannerError(f"{path} exists; pass {{force}} to overwrite it", refs=("force",)) from None
        os.replace(tmp, path)
