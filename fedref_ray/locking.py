"""An exclusive lock on a results or sweep folder for the whole run, so two runs can never mix one folder.

The lock is `fcntl.flock` on `<folder>/.lock`, which holds the owner's pid and host for the error message. The
kernel drops a flock when its process dies, however it dies, so a stale `.lock` of a killed run is
simply taken over. The file is removed on release; a lock won on a file that another process
removed meanwhile is retried, so two processes never both believe they hold the folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fedref_ray.errors import UserError

LOCK_NAME = ".lock"


def _holder(lock_path: Path) -> str:
    """'<pid>' or '<pid> on <host>' (another machine sharing the folder) from a lock file; 'unknown' if unreadable."""
    try:
        pid, _, host = lock_path.read_text().strip().partition(" ")
    except OSError:
        return "unknown"
    if not pid.isdigit():
        return "unknown"
    return pid if host in ("", socket.gethostname()) else f"{pid} on {host}"


def _make_folder(folder: Path, field: str) -> bool:
    """Create `folder` (and its parents) if needed; True if this call created it."""
    try:
        if folder.is_dir():
            return False
        if folder.exists():
            raise UserError(f"{field}='{folder}' exists and is not a directory")
        folder.mkdir(parents=True)
    except FileExistsError:
        if not folder.is_dir():
            raise UserError(f"{field}='{folder}' cannot be created: a part of the path is a file") from None
        return False
    except OSError as exc:
        raise UserError(f"{field}='{folder}' cannot be created: {os.strerror(exc.errno or 0)}") from None
    return True


def _try_lock(lock_path: Path, field: str, folder: Path) -> int:
    """Open and flock the lock file without waiting; return its fd, or raise naming the holder."""
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"{field}='{folder}' is not writable: {os.strerror(exc.errno or 0)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"{field}='{folder}' cannot be locked: {os.strerror(exc.errno or 0)}") from None
            raise UserError(
                f"{field}='{folder}' is in use by process {_holder(lock_path)} (a run, resume or sweep holds "
                f"its lock {lock_path.name}): wait for it to end, or choose another folder"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file between our open and flock: lock the new one


@contextmanager
def folder_lock(path: str | Path, field: str = "run.results_dir") -> Iterator[Path]:
    """Hold `<path>/.lock` (creating the folder) for the block; yield the folder.

    Raises a one-line UserError naming `field` when another live process holds the folder, or when the
    folder cannot be created or written. A folder this call created and left empty is removed again,
    so a run refused before writing anything leaves nothing behind.
    """
    folder = Path(path).expanduser()
    created = _make_folder(folder, field)
    lock_path = folder / LOCK_NAME
    try:
        fd = _try_lock(lock_path, field, folder)
    except BaseException:
        if created:
            _remove_if_empty(folder)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield folder
    finally:
        try:
            os.unlink(lock_path)  # while still holding it: a waiter then retries on the new file
        except OSError:
            pass
        os.close(fd)
        if created:
            _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
