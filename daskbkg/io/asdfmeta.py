"""Keywords from the ASDF metadata tree when the PRIMARY header lacks them.

JWST files carry their whole metadata tree in a one-row ``ASDF`` binary table. The
reference's data models read that tree first and let a header keyword that the schema
knows override it, so a keyword missing from the header still has a value when the tree
holds it (a primary header reduced to ``DATAMODL``, for example). This module gives the
same answer for the keywords the step uses.

The tree is read only when a keyword the step needs is missing (never for the usual
archive product), and only with the optional ``asdf`` package (``daskbkg[wfss]``).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

__all__ = ["TREE_PATHS", "tree_keywords"]

#: PRIMARY keyword -> path of the same value in the data model's ``meta`` tree.
TREE_PATHS = {
    "EXP_TYPE": ("exposure", "type"),
    "INSTRUME": ("instrument", "name"),
    "SUBSTRT1": ("subarray", "xstart"),
    "SUBSTRT2": ("subarray", "ystart"),
    "SUBSIZE1": ("subarray", "xsize"),
    "SUBSIZE2": ("subarray", "ysize"),
    "NINTS": ("exposure", "nints"),
    "GWA_XTIL": ("instrument", "gwa_xtilt"),
    "GWA_YTIL": ("instrument", "gwa_ytilt"),
}
#: Keywords every exposure is expected to have (the tilts only NIRSpec ones).
_ALWAYS = ("EXP_TYPE", "INSTRUME", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")
_NIRSPEC = ("GWA_XTIL", "GWA_YTIL")


def _wanted(header: Any) -> list[str]:
    missing = [k for k in _ALWAYS if header.get(k) is None]
    instrument = header.get("INSTRUME")
    if missing or str(instrument or "").strip().upper() == "NIRSPEC":
        missing += [k for k in ("NINTS", *_NIRSPEC) if header.get(k) is None]
    return missing


def _tree_bytes(layout: Any) -> bytes | None:
    """Bytes of the ASDF file stored in the ``ASDF`` table, or None."""
    hdu = layout.find("ASDF")
    if hdu is None or hdu.is_image:
        return None
    from astropy.io import fits

    from .source import open_decoded

    with open_decoded(layout.path) as raw, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(raw, lazy_load_hdus=True, memmap=False) as hdul:
            table = hdul[hdu.index].data
            if table is None or "ASDF_METADATA" not in table.names or len(table) == 0:
                return None
            return bytes(table["ASDF_METADATA"][0].tobytes())


def _lookup(meta: Any, path: tuple[str, ...]) -> Any:
    node = meta
    for part in path:
        if not hasattr(node, "get"):
            return None
        node = node.get(part)
    return node if isinstance(node, (str, int, float)) and not isinstance(node, bool) else None


def tree_keywords(layout: Any) -> dict:
    """Values of the PRIMARY keywords the header lacks, taken from the ASDF tree.

    Returns an empty mapping when nothing is missing, the file has no ``ASDF`` table, the
    ``asdf`` package is absent or the tree cannot be read (the header alone then counts,
    as before).
    """
    wanted = _wanted(layout.primary_header)
    if not wanted:
        return {}
    try:
        import asdf
    except ImportError:
        return {}
    try:
        data = _tree_bytes(layout)
        if not data:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown tags (no jwst extensions): raw nodes
            with asdf.open(io.BytesIO(data), lazy_load=True, memmap=False) as af:
                meta = af.tree.get("meta", {})
                found = {key: _lookup(meta, TREE_PATHS[key]) for key in wanted}
    except Exception:  # noqa: BLE001 - a damaged tree is ignored like an absent one
        return {}
    return {k: v for k, v in found.items() if v is not None}
