"""A directory of generated files (a sweep), written as a whole: a reader finds the old set or the new one.

The new directory is built beside the target (`.NAME.planner-new.*`) and swapped in with one atomic
exchange (renameat2 RENAME_EXCHANGE; two renames where the file system has no exchange). What the old
directory held besides the generated entries (`owned`: logs, results, the user's own files) is then moved
into the new one and the rest of the old one removed. Ctrl-C, SIGTERM and SIGHUP interrupt the build
(which is then removed) but wait for the swap; a lock file beside the target (`.NAME.planner-lock`, flock)
keeps two writers apart, and the one that comes second is told so. A run killed outright (SIGKILL) leaves
the target whole, old or new, plus at most a staging directory: the next write of the same target, under
the lock, removes it (or, when the kill came mid-swap, finishes the swap: see `recover`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from planner.errors import PlannerError
from planner.files import cleanup_on_termination, file_mode, signals_deferred

# Inside a staging directory until it is swapped in: a directory beside the target that holds it was never
# swapped in (remove it); one that does not is an old directory swapped out (move its user entries back).
MARKER = ".planner-staging"
RENAME_EXCHANGE = 2


def write_directory(target: Path, texts: Mapping[str, str | bytes], owned: Iterable[str], force: bool,
                    executable: Iterable[str] = (), empty_dirs: Iterable[str] = ()) -> list[Path]:
    """Write `texts` (relative path → text, or bytes) as the directory `target`, all or none.

    `owned` are the top-level names the writer generates: an existing `target` holding any of them is replaced
    only with `force`, and they are never carried over from it (a stale spec beside new scripts would be a mix).
    `empty_dirs` are created unless the old directory had them."""
    owned, executable = set(owned), set(executable)
    where = _resolved(Path(target))
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlannerError(f"{target}: cannot create {where.parent}: {exc.strerror}") from None
    with cleanup_on_termination(), _locked(where, target):
        recover(where, owned)
        old = _existing(where, target, owned, force)
        staging = _build(where, texts, executable, empty_dirs, old)
        try:
            with signals_deferred():
                _swap_in(staging, where, owned, old is not None)
        finally:
            if staging.is_dir() and (staging / MARKER).exists():
                shutil.rmtree(staging, ignore_errors=True)
    return [Path(target) / rel for rel in texts]


def _resolved(target: Path) -> Path:
    """The absolute target; a symbolic link to a directory is kept and the directory it names replaced."""
    where = Path(os.path.abspath(target))
    if where.is_symlink():
        if not where.is_dir():
            raise PlannerError(f"{target}: symbolic link to a missing directory")
        where = Path(os.path.realpath(where))
    if not where.name:
        raise PlannerError(f"{target}: cannot replace the root directory")
    return where


def _existing(where: Path, target: Path, owned: set[str], force: bool) -> os.stat_result | None:
    """The old directory's stat (None: there is none), after refusing what must not be replaced."""
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PlannerError(f"{target}: cannot open: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise PlannerError(f"{target} is a file, not a directory", "out_dir")
    try:
        found = sorted(n for n in os.listdir(where) if n in owned)
    except OSError as exc:
        raise PlannerError(f"{target}: cannot read the directory: {exc.strerror}") from None
    if found and not force:
        more = f" (and {len(found) - 1} more entries of an earlier sweep)" if len(found) > 1 else ""
        raise PlannerError(f"{Path(target) / found[0]} exists{more}; pass {{force}} to overwrite", refs=("force",))
    return info


def _build(where: Path, texts: Mapping[str, str | bytes], executable: set[str], empty_dirs: Iterable[str],
           old: os.stat_result | None) -> Path:
    staging: Path | None = None
    try:
        # a signal between mkdtemp creating the directory and `staging` naming it would leave it behind:
        # held until the name is bound, it then ends the build here, where the directory is removed
        with signals_deferred():
            staging = Path(tempfile.mkdtemp(prefix=f".{where.name}.planner-new.", dir=where.parent))
        (staging / MARKER).touch()
        for rel, text in texts.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, file_mode(rel in executable))
            with os.fdopen(fd, "wb") as handle:
                handle.write(text if isinstance(text, bytes) else text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        for name in empty_dirs:
            (staging / name).mkdir(exist_ok=True)
        # mkdtemp's 0700 would lock out the group: the old directory's mode and group, else the umask's
        os.chmod(staging, stat.S_IMODE(old.st_mode) if old is not None else file_mode(executable=True))
        if old is not None:
            with suppress(OSError):
                os.chown(staging, -1, old.st_gid)
        _fsync_dir(staging)
    except BaseException as exc:
        if staging is None:
            if isinstance(exc, OSError):
                raise PlannerError(f"{where}: cannot write in {where.parent}: {exc.strerror}") from None
            raise
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise PlannerError(f"{where}: cannot write: {exc.strerror}") from None
        raise
    return staging


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries atomically; False where the system cannot (no renameat2, or a file
    system without RENAME_EXCHANGE such as NFS)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(staging: Path, where: Path, owned: set[str], replacing: bool) -> None:
    try:
        if not replacing:
            try:
                os.rename(staging, where)  # fails if something non-empty appeared there meanwhile
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise
                raise PlannerError(f"{where}: created by another process while this one wrote it; not replaced") from None
            old = None
        elif _exchange(staging, where):
            old = staging  # the old directory now has the staging name, without the marker
        else:
            old = where.with_name(f".{where.name}.planner-old.{os.getpid()}")
            os.rename(where, old)
            try:
                os.rename(staging, where)
            except OSError:
                os.rename(old, where)
                raise
        os.unlink(where / MARKER)
    except OSError as exc:
        raise PlannerError(f"{where}: cannot replace the directory: {exc.strerror}") from None
    if old is not None:
        _carry_over(old, where, owned)


def _carry_over(old: Path, where: Path, owned: set[str]) -> None:
    """Move what the old directory held besides the generated entries into the new one; remove the old one
    once nothing else is left in it (what could not be moved stays there, and the error says where)."""
    left = []
    for name in sorted(os.listdir(old)):
        if name in owned or name == MARKER:
            continue
        dest = where / name
        try:
            if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
                dest.rmdir()  # an empty directory the new one was given (logs/): the old one's contents win
            if not os.path.lexists(dest):
                os.rename(old / name, dest)
                continue
        except OSError:
            pass
        left.append(name)
    if left:
        raise PlannerError(f"{where}: written, but {', '.join(left)} of the directory it replaced could not be moved "
                           f"into it; they are in {old}")
    shutil.rmtree(old, ignore_errors=True)


def recover(where: Path, owned: set[str]) -> None:
    """Clean up after a writer that was killed: remove staging directories that were never swapped in, and
    finish a swap it had begun (put an old directory swapped out back in place if nothing took it, or
    move its user entries into the directory that did)."""
    prefix = f".{where.name}.planner-"
    try:
        names = os.listdir(where.parent)
    except OSError:
        return
    for name in names:
        left = where.parent / name
        if not name.startswith(prefix) or name == _lock_name(where) or left.is_symlink() or not left.is_dir():
            continue
        if (left / MARKER).exists():
            shutil.rmtree(left, ignore_errors=True)
        elif not os.path.lexists(where):
            with suppress(OSError):
                os.rename(left, where)
        else:
            with suppress(PlannerError, OSError):
                _carry_over(left, where, owned)
    with suppress(OSError):
        os.unlink(where / MARKER)


def _lock_name(where: Path) -> str:
    return f".{where.name}.planner-lock"


@contextmanager
def _locked(where: Path, target: Path) -> Iterator[None]:
    """Hold the lock file beside `where`; refuse at once if another writer holds it. The file is removed on
    release; a writer that locked a file removed meanwhile sees another inode at the name and tries again."""
    path = where.parent / _lock_name(where)
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise PlannerError(f"{target}: cannot write in {where.parent}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PlannerError(f"{target}: another planner is writing this directory now; "
                               "run again when it has finished") from None
        except OSError:  # a file system without flock (some NFS and Lustre mounts): go on without the lock
            pass
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:
        raise PlannerError(f"{target}: cannot lock {path}")
    try:
        yield
    finally:
        with suppress(OSError):
            os.unlink(path)
        os.close(fd)
