"""Atomic, no-clobber file writes: a failed run leaves no partial file and nothing is overwritten
without being told to (`force`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from planner.errors import PlannerError


def read_input(path: Path, what: str, max_bytes: int | None = None) -> bytes:
    """The bytes of an input file, with one-line errors for the ways reading fails."""
    path = Path(path)
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise PlannerError(f"{path}: file larger than {max_bytes} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise PlannerError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PlannerError(f"{path}: is a directory, expected a {what} file") from None
    except OSError as exc:
        raise PlannerError(f"{path}: cannot read: {exc.strerror}") from None


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlannerError(f"{path}: not UTF-8 text") from None


def check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise PlannerError(f"{path} exists; pass {{force}} to overwrite it", refs=("force",))
    if path.exists() and path.is_dir():
        raise PlannerError(f"{path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PlannerError(f"{parent} does not exist (create the directory first)")


def write_atomic(path: Path, text: str, force: bool = False) -> None:
    """Write to a temporary file in the same directory, then rename over the target."""
    write_atomic_bytes(path, text.encode("utf-8"), force)


def write_atomic_bytes(path: Path, payload: bytes, force: bool = False) -> None:
    path = Path(path)
    check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
