"""Where input bytes come from: local files (positional reads) or fsspec URLs.

Local paths are read with ``os.pread`` on descriptors cached per process. Any other
URL (``s3://``, ``memory://``, ``file://``, ...) is read with byte-range requests through
fsspec; storage options come from fsspec's configuration (for example the environment
variable ``FSSPEC_S3_ENDPOINT_URL``), so workers need no extra arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["InputStat", "is_url", "stat_input", "read_range", "open_input"]


def is_url(path: str | os.PathLike) -> bool:
    """True for fsspec URLs other than plain local paths."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


@dataclass(frozen=True)
class InputStat:
    """Canonical name, size and a version stamp (mtime in ns, or a hash of the ETag)."""

    path: str
    size: int
    version: int
    exists: bool
    is_dir: bool = False


def stat_input(path: str | os.PathLike) -> InputStat:
    """Identify an input without reading it."""
    text = os.fspath(path)
    if not is_url(text):
        local = os.path.abspath(_local(text))
        try:
            st = os.stat(local)
        except FileNotFoundError:
            return InputStat(local, 0, 0, False)
        return InputStat(local, st.st_size, st.st_mtime_ns, True, os.path.isdir(local))
    import fsspec

    fs, inner = fsspec.core.url_to_fs(text)
    try:
        info = fs.info(inner)
    except FileNotFoundError:
        return InputStat(text, 0, 0, False)
    stamp = str(info.get("ETag") or info.get("mtime") or info.get("LastModified") or "")
    version = int.from_bytes(stamp.encode()[-8:].rjust(8, b"\0"), "little") & (2**62 - 1)
    return InputStat(text, int(info.get("size") or 0), version, True,
                     info.get("type") == "directory")


def read_range(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes of a URL from ``offset`` (local files use the cached-fd reader)."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    data = fs.cat_file(inner, start=offset, end=offset + size)
    if len(data) != size:
        raise OSError(f"{path}: unexpected end of file (truncated FITS data)")
    return data


def open_input(path: str, mode: str = "rb"):
    """Open an input (local path or URL) as a binary file object."""
    if not is_url(path):
        return open(_local(path), mode)
    import fsspec

    return fsspec.open(path, mode).open()
