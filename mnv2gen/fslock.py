"""Advisory locks that the operating system releases when their process ends (SIGKILL too).

POSIX: `flock` on the directory itself (no lock file) or on an open file. Windows: a
one-byte `msvcrt.locking` lock on a file (for a directory: `.mnv2gen-lock` inside it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

LOCK_FILE = ".mnv2gen-lock"  # Windows only: directories cannot be locked there


def try_lock(fd: int) -> bool:
    """Lock the open file `fd` exclusively if nobody holds it; return whether it worked."""
    return _try(fd)


class DirectoryLock:
    """An exclusive lock on one directory, held between `acquire` and `release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout_s: float, on_wait: Callable[[], None]) -> None:
        """Wait until the lock is ours (calling `on_wait` once if it is busy); raise
        TimeoutError after `timeout_s` seconds."""
        if os.name == "nt":  # pragma: no cover
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        else:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        deadline = time.monotonic() + timeout_s
        waited = False
        while not _try(fd):
            if not waited:
                on_wait()
                waited = True
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(str(self.path))
            time.sleep(0.05)
        self._fd = fd

    def still_there(self) -> bool:
        """Return True when the locked directory is still the one at `path` (a waiter may
        get the lock of a directory its creator removed meanwhile)."""
        if os.name == "nt":  # pragma: no cover
            return self.path.is_dir()
        try:
            now, locked = os.stat(self.path), os.fstat(self._fd)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (locked.st_dev, locked.st_ino)

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None
