"""Completion markers: how a rerun knows a product is complete.

A marker ``OUT/.daskbkg/<output name>.json`` is written by the product's job right after
its outputs were renamed into place. It records a key of the inputs (path, size and
modification time of every file), the parameters and the output settings, plus each
output's size. A rerun skips a product only if the key matches and every output is
intact. Markers are written through a unique temporary name and renamed, so concurrent
runs into one folder never see a half-written marker.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["MARKER_DIR", "product_key", "marker_path", "is_complete", "mark_done"]

MARKER_DIR = ".daskbkg"


def _identity(path: Any) -> list:
    from ..errors import InputFileNotFoundError
    from ..io.source import stat_input

    st = stat_input(path)
    if not st.exists:
        raise InputFileNotFoundError(f"{st.path}: file not found")
    return [st.path, st.size, st.version]


def _optional_identity(path: Any) -> Any:
    from ..io.source import stat_input

    if path is None:
        return None
    st = stat_input(path)
    return [st.path, st.size, st.version] if st.exists else os.fspath(path)


def product_key(item: Any, settings: Any) -> str:
    """Token of everything a product's outputs depend on (inputs as path/size/mtime)."""
    from dask.base import tokenize

    w = settings.wfss
    files = [_identity(item.target)] + [_identity(b) for b in item.backgrounds]
    wfss = [_optional_identity(p) for p in (w.bkg_ref, w.wavelengthrange, w.source_mask,
                                             w.source_boxes, item.sourcecat or w.source_catalog)]
    return tokenize(files, wfss, w.params, settings.params, settings.compat, settings.fmt,
                    settings.suffix, settings.save_combined, item.root)


def marker_path(output_dir: Any, main: Any):
    """Marker location of the product whose main output is ``main``."""
    from ..io.source import join

    return join(join(output_dir, MARKER_DIR), f"{os.path.basename(os.fspath(main))}.json")


def is_complete(output_dir: Any, main: Any, key: str) -> list | None:
    """The recorded outputs if the product is complete for ``key``, else None."""
    from ..io.source import read_text, total_size

    try:
        record = json.loads(read_text(marker_path(output_dir, main)))
    except (OSError, ValueError):
        return None
    if record.get("key") != key:
        return None
    outputs = record.get("outputs", [])
    if all(total_size(o["path"]) == o["size"] for o in outputs):
        return [o["path"] for o in outputs]
    return None


def mark_done(output_dir: Any, main: Any, key: str, name: str, outputs: list,
              status: str | None) -> None:
    """Record that a product is complete (after its outputs are in place)."""
    from ..io.source import join, makedirs, total_size, write_text

    makedirs(join(output_dir, MARKER_DIR))
    record = {"key": key, "product": name, "status": status,
              "outputs": [{"path": os.fspath(p), "size": total_size(p)} for p in outputs]}
    write_text(marker_path(output_dir, main), json.dumps(record))
