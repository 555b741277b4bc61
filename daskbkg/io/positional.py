"""Positional writes on file descriptors, with a portable fallback.

``os.pwrite`` writes at an offset without moving the descriptor's position, so threads
can share one descriptor. It does not exist on Windows; there the fallback moves the
position with ``os.lseek`` and writes under a per-descriptor lock, which gives the same
bytes. :data:`POSITIONAL` selects the path (tests set it to False to exercise the
fallback on any platform). Positional reads are made by the compiled reader
(:mod:`daskbkg.io.fitsarray`), which uses ``ReadFile`` with an offset on Windows.
"""

from __future__ import annotations

import os
import threading

__all__ = ["POSITIONAL", "write_at"]

#: Use the POSIX positional calls when they exist.
POSITIONAL = hasattr(os, "pwrite")

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _fd_lock(fd: int) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(fd)
        if lock is None:
            lock = _locks[fd] = threading.Lock()
        return lock


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
