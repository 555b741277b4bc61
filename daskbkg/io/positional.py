"""Positional reads and writes on file descriptors, with a portable fallback.

``os.preadv``/``os.pread``/``os.pwrite`` read or write at an offset without moving the
descriptor's position, so threads can share one descriptor. They do not exist on
Windows; there the fallback moves the position with ``os.lseek`` and reads/writes under a
per-descriptor lock, which gives the same bytes. :data:`POSITIONAL` selects the path
(tests set it to False to exercise the fallback on any platform).
"""

from __future__ import annotations

import os
import threading

__all__ = ["POSITIONAL", "read_at", "write_at"]

#: Use the POSIX positional calls when they exist.
POSITIONAL = hasattr(os, "pread") and hasattr(os, "pwrite")

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _fd_lock(fd: int) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(fd)
        if lock is None:
            lock = _locks[fd] = threading.Lock()
        return lock


def _read_some(fd: int, view: memoryview, offset: int) -> int:
    if POSITIONAL:
        if hasattr(os, "preadv"):
            return os.preadv(fd, [view], offset)
        data = os.pread(fd, len(view), offset)
        view[: len(data)] = data
        return len(data)
    with _fd_lock(fd):
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def read_at(fd: int, target, offset: int, path: str) -> None:
    """Fill ``target`` (a writable uint8 buffer) with the bytes of ``fd`` at ``offset``.

    Raises
    ------
    OSError
        The file ends before ``target`` is full (named by ``path``).
    """
    view = memoryview(target).cast("B")
    got = 0
    while got < len(view):
        n = _read_some(fd, view[got:], offset + got)
        if n == 0:
            raise OSError(f"{path}: unexpected end of file (truncated FITS data)")
        got += n


def write_at(fd: int, data, offset: int) -> None:
    """Write every byte of ``data`` (a bytes-like object) to ``fd`` at ``offset``."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        if POSITIONAL:
            done += os.pwrite(fd, view[done:], offset + done)
        else:
            with _fd_lock(fd):
                os.lseek(fd, offset + done, os.SEEK_SET)
                done += os.write(fd, view[done:])
