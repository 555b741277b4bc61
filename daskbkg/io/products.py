"""Map lazy products onto HDU lists (FITS) and arrays plus attributes (zarr)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._version import __version__
from . import headers
from .fits_writer import _ENCODINGS, FLIPPED_BZERO, ArrayHdu, CopiedHdu
from .headers import edit_header

__all__ = ["provenance_history", "product_hdus", "combined_hdus", "primary_header",
           "primary_header_bytes", "image_header"]

#: Array extensions written from the lazy product, with their storage kinds.
_OUTPUT_KINDS = {"SCI": "float32", "ERR": "float32", "DQ": "uint32", "NBKG": "int32"}


def provenance_history(params: Any, compat: Any, what: str, info: dict | None = None) -> list[str]:
    """HISTORY lines recording the daskbkg version and every non-default option.

    For WFSS products (``info`` holding ``wfss_parameters``) the WFSS parameters and the
    scale factor are recorded instead of the clip parameters.
    """
    lines = [f"daskbkg {__version__}: {what}"]
    wfss = (info or {}).get("wfss_parameters")
    if wfss:
        lines.append("daskbkg WFSS parameters: "
                     + " ".join(f"{k}={v!r}" for k, v in wfss.items()))
        if info.get("scale_factor") is not None:
            lines.append(f"daskbkg WFSS scale factor: {info['scale_factor']!r}")
    else:
        opts = [f"sigma={params.sigma!r}", f"maxiters={params.maxiters!r}"]
        lines.append("daskbkg parameters: " + " ".join(opts))
    extra = compat.non_defaults()
    if extra:
        lines.append("daskbkg non-default options: " + " ".join(f"{k}={v!r}" for k, v in extra.items()))
    return lines


def _as_header(header: Any):
    """An astropy Header from raw header bytes or a Header (copied)."""
    from astropy.io import fits

    if isinstance(header, (bytes, bytearray)):
        return fits.Header.fromstring(bytes(header).decode("ascii", "replace"))
    return header.copy()


def primary_header(base: Any, updates: dict, history: list[str]):
    """``base`` (a PRIMARY header) with keywords set, ``DBKG_VER`` and HISTORY added."""
    updates = {**updates, "DBKG_VER": (__version__, "daskbkg version that wrote this file")}
    return edit_header(_as_header(base), updates, history)


def primary_header_bytes(raw: Any, updates: dict, history: list[str]) -> bytes:
    """:func:`primary_header` serialised (for writers that store header text)."""
    return primary_header(raw, updates, history).tostring().encode("ascii")


def image_header(base: Any, shape, kind: str, extname: str | None = None,
                 primary: bool = False, plain: bool = False):
    """Header of an image HDU of ``shape`` and storage ``kind`` (astropy ``Header``).

    ``base`` is an :class:`~daskbkg.io.layout.HduInfo` whose content cards are kept (or
    None). If its storage already matches (the usual case: the target's own SCI or DQ),
    its header is kept card for card, without CHECKSUM/DATASUM; ``plain`` always
    rebuilds the structural cards.
    """
    bitpix = _ENCODINGS[kind][0]
    if base is not None and extname is None and not primary and not plain \
            and _canonical(base, kind) and tuple(base.shape) == tuple(shape):
        return edit_header(base.header, {})
    return headers.image_header(None if base is None else base.header, tuple(shape), bitpix,
                                FLIPPED_BZERO.get(kind), primary=primary, extname=extname)


def _canonical(hdu: Any, kind: str) -> bool:
    """The HDU stores ``kind`` exactly as the reference writes it (plain, uncompressed)."""
    if hdu is None or hdu.compressed:
        return False
    enc = hdu.encoding
    if kind == "uint32":
        return enc.bitpix == 32 and enc.mode == "flip"
    return enc.bitpix == _ENCODINGS[kind][0] and enc.mode == "plain"


def _copied(layout: Any, hdu: Any, header: Any = None) -> CopiedHdu:
    """Copy ``hdu`` (header verbatim unless ``header`` is given, data verbatim)."""
    return CopiedHdu(layout.path, hdu.header_offset, hdu.data_offset, hdu.data_span,
                     header=header, data_size=hdu.data_size)


def _decompressed(layout: Any, hdu: Any, like: Any) -> ArrayHdu:
    """A tile-compressed image HDU written as a plain image HDU (as the reference writes it).

    Its values are read lazily through astropy, tile by tile, in chunks like ``like``'s.
    """
    import dask.array as da

    reader = layout.array_of(hdu)
    chunks = tuple((n,) for n in reader.shape[:-2]) + tuple(like.chunks[-2:]) \
        if reader.shape[-2:] == tuple(like.shape[-2:]) and reader.ndim >= 2 else reader.shape
    data = da.from_array(reader, chunks=chunks, asarray=False, lock=False,
                         meta=np.empty((0,) * reader.ndim, dtype=reader.dtype))
    kind = reader.dtype.name
    return ArrayHdu(image_header(hdu, reader.shape, kind, extname=None, plain=True), data, kind)


def product_hdus(product: Any) -> list:
    """HDU plan of the main product: the target's HDUs with SCI/DQ (and ERR) replaced."""
    layout = product.target.layout
    history = provenance_history(product.params, product.compat,
                                 f"background step {product.status}", product.info)
    replaced = {"SCI": product.sci, "ERR": product.err, "DQ": product.dq}
    changed = {"SCI", "DQ"} if product.status == "COMPLETE" else set()
    if product.status == "COMPLETE" and product.compat.propagate_err:
        changed.add("ERR")
    # An array the step did not change is copied byte for byte when stored as the
    # reference writes it; otherwise it is rewritten in the reference's type.
    replaced = {name: data for name, data in replaced.items()
                if name in changed or not _canonical(layout.find(name), _OUTPUT_KINDS[name])}
    plan = []
    for hdu in layout.hdus:
        if hdu.index == 0:
            header = primary_header(hdu.header, product.primary_updates, history)
            plan.append(_copied(layout, hdu, header))
        elif hdu.ver == 1 and hdu.name in replaced and hdu is layout.find(hdu.name):
            data = replaced[hdu.name]
            kind = _OUTPUT_KINDS[hdu.name]
            plan.append(ArrayHdu(image_header(hdu, data.shape, kind), data, kind))
        elif hdu.compressed and hdu.shape:
            plan.append(_decompressed(layout, hdu, product.sci))
        else:
            plan.append(_copied(layout, hdu, edit_header(hdu.header, {}) if hdu.sanitized
                                else None))
        if hdu.ver == 1 and hdu.name == "SCI":
            # Arrays the target lacks but the reference's model gained (DQ is assigned;
            # ERR only when propagated) follow SCI in the data model's order.
            for name in ("DQ", "ERR"):
                if name in product.target.missing and name in changed:
                    data, kind = replaced[name], _OUTPUT_KINDS[name]
                    plan.append(ArrayHdu(image_header(None, data.shape, kind, extname=name),
                                         data, kind))
    for name, data, kind in product.extra_arrays:
        plan.append(ArrayHdu(image_header(None, data.shape, kind, extname=name), data, kind))
    return plan


def combined_hdus(combined: Any, primary_cards: dict | None = None) -> list:
    """HDU plan of the combined-background file: PRIMARY, SCI, DQ, ERR, NBKG."""
    history = provenance_history(combined.params, combined.compat, "combined background")
    history.append(f"daskbkg backgrounds ({len(combined.backgrounds)}): "
                   + ", ".join(b.name for b in combined.backgrounds))
    from astropy.io import fits

    primary = primary_header(fits.PrimaryHDU().header, primary_cards or {}, history)
    plan: list = [ArrayHdu(primary, None, "float32")]
    arrays = combined.arrays
    for name in ("SCI", "DQ", "ERR", "NBKG"):
        data = arrays[name]
        kind = _OUTPUT_KINDS[name]
        header = image_header(None, data.shape, kind, extname=name)
        if name == "NBKG":
            header.add_comment("number of background values kept by the sigma clip")
        plan.append(ArrayHdu(header, data, kind))
    return plan
