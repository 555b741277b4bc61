"""Where input bytes come from: local files (positional reads) or fsspec URLs.

Local paths are read with positional reads (:mod:`daskbkg.io.fitsarray`) on descriptors
cached per process. Any other URL (``s3://``, ``memory://``, ``file://``, ...) is read with
byte-range requests through fsspec; storage options come from fsspec's configuration (for
example the environment variable ``FSSPEC_S3_ENDPOINT_URL``), so workers need no extra
arguments.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["InputStat", "is_url", "stat_input", "read_range", "open_input", "join", "makedirs",
           "remove_tree", "read_text", "write_text", "temp_name", "replace", "total_size",
           "open_decoded"]


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


def open_decoded(path: str):
    """Open an input for reading its FITS stream: gzip files are decompressed on the fly.

    Offsets given by astropy for a gzip file are positions in the decompressed stream;
    ``seek`` on the returned object accepts them (forward seeks decompress and discard,
    so nothing larger than a read is held in memory).
    """
    import gzip

    f = open_input(path)
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=f, mode="rb")
        stream.myfileobj = f  # GzipFile closes ``myfileobj`` when it is closed
        return stream
    return f


def join(base: str | os.PathLike, name: str) -> str | Path:
    """``base/name`` for a local folder (a Path) or a URL prefix (a string)."""
    if is_url(base):
        return os.fspath(base).rstrip("/") + "/" + name
    return Path(_local(os.fspath(base))) / name


def makedirs(base: str | os.PathLike) -> None:
    """Create a local folder (and parents); object-store prefixes need nothing."""
    if is_url(base):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(os.fspath(base))
        fs.makedirs(inner, exist_ok=True)
        return
    Path(_local(os.fspath(base))).mkdir(parents=True, exist_ok=True)


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a URL prefix (a partly written zarr group); missing is fine."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(os.fspath(path))
    try:
        fs.rm(inner, recursive=True)
    except FileNotFoundError:
        pass


def read_text(path: str | os.PathLike) -> str:
    """Text of a local file or URL (FileNotFoundError if absent)."""
    with open_input(os.fspath(path), "rb") as f:
        return f.read().decode()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a small text file: atomically (temp + rename) when local, one PUT on a store."""
    text_path = os.fspath(path)
    if is_url(text_path):
        import fsspec

        with fsspec.open(text_path, "wb") as f:
            f.write(text.encode())
        return
    local = Path(_local(text_path))
    tmp = temp_name(local)
    try:
        tmp.write_bytes(text.encode())
        replace(tmp, local)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_name(path: str | os.PathLike) -> Path:
    """A hidden temporary name next to ``path`` that no other writer can pick.

    The name holds the process id and a random UUID, so concurrent writers of the same
    file (threads, processes, machines sharing a folder) never share a temporary file.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")


def replace(src: str | os.PathLike, dst: str | os.PathLike, attempts: int = 50) -> None:
    """``os.replace`` that retries while Windows reports the destination as in use.

    On POSIX the rename is atomic and never fails for that reason; on Windows a reader
    holding ``dst`` open makes it fail with ``PermissionError`` for a moment.
    """
    for attempt in range(attempts):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def total_size(path: str | os.PathLike) -> int | None:
    """Size of a file, or of all files under a folder/prefix; None if it does not exist."""
    text = os.fspath(path)
    if is_url(text):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(text)
        if not fs.exists(inner):
            return None
        if fs.isdir(inner):
            return sum(fs.du(inner, total=False).values())
        return int(fs.size(inner))
    local = Path(_local(text))
    if not local.exists():
        return None
    if local.is_dir():
        return sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
    return local.stat().st_size
