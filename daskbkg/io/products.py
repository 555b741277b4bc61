"""Map lazy products onto HDU lists (FITS) and arrays plus attributes (zarr)."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from .cards import edit_cards, format_card, join_cards, split_cards, structural_cards
from .fits_writer import _ENCODINGS, ArrayHdu, CopiedHdu

__all__ = ["provenance_history", "product_hdus", "combined_hdus", "primary_header_bytes",
           "image_header"]

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


def primary_header_bytes(raw: bytes, updates: dict, history: list[str]) -> bytes:
    """``raw`` (a PRIMARY header) with keywords set, ``DBKG_VER`` and HISTORY cards added.

    Every other card stays byte-identical.
    """
    updates = {**updates, "DBKG_VER": (__version__, "daskbkg version that wrote this file")}
    return join_cards(edit_cards(split_cards(raw), updates, history))


_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "EXTEND",
               "BZERO", "BSCALE"}


def image_header(base: Any, shape, kind: str, extname: str | None = None,
                 primary: bool = False) -> bytes:
    """Raw header of an image HDU of ``shape`` and storage ``kind``.

    ``base`` is an :class:`~daskbkg.io.layout.HduInfo` whose cards are kept (or None). If
    its structural keywords already describe the data (the usual case: the target's own
    SCI or DQ), its header is returned byte for byte.
    """
    bitpix = _ENCODINGS[kind][0]
    if base is not None:
        kw = base.keywords
        scaled = kind == "uint32"
        same = (kw.get("BITPIX") == bitpix and tuple(base.shape) == tuple(shape)
                and not base.compressed
                and (kw.get("BZERO", 0) or 0) == (2**31 if scaled else 0)
                and (kw.get("BSCALE", 1) or 1) == 1)
        if same and extname is None:
            return base.raw_header
    cards = structural_cards(tuple(shape), bitpix, primary=primary)
    if kind == "uint32":
        cards += [format_card("BSCALE", 1), format_card("BZERO", 2**31)]
    if base is not None:
        cards += [c for c in split_cards(base.raw_header)
                  if c[:8].rstrip() not in _STRUCTURAL
                  and not (c.startswith("NAXIS") and c[5:8].strip().isdigit())]
    if extname is not None:
        cards = edit_cards(cards, {"EXTNAME": (extname, "extension name")})
    return join_cards(cards)


def _canonical(hdu: Any, kind: str) -> bool:
    """The HDU stores ``kind`` exactly as the reference writes it (plain, uncompressed)."""
    if hdu is None or hdu.compressed:
        return False
    enc = hdu.encoding
    if kind == "uint32":
        return enc.bitpix == 32 and enc.mode == "flip"
    return enc.bitpix == _ENCODINGS[kind][0] and enc.mode == "plain"


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
            header = primary_header_bytes(hdu.raw_header, product.primary_updates, history)
            plan.append(CopiedHdu(layout.path, hdu.header_offset, hdu.data_offset,
                                  hdu.data_span, header=header))
        elif hdu.ver == 1 and hdu.name in replaced:
            data = replaced[hdu.name]
            kind = _OUTPUT_KINDS[hdu.name]
            plan.append(ArrayHdu(image_header(hdu, data.shape, kind), data, kind))
        else:
            plan.append(CopiedHdu(layout.path, hdu.header_offset, hdu.data_offset, hdu.data_span))
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
    primary = join_cards(structural_cards((), 8, primary=True))
    primary = primary_header_bytes(primary, primary_cards or {}, history)
    plan: list = [ArrayHdu(primary, None, "float32")]
    arrays = combined.arrays
    for name in ("SCI", "DQ", "ERR", "NBKG"):
        data = arrays[name]
        kind = _OUTPUT_KINDS[name]
        header = image_header(None, data.shape, kind, extname=name)
        if name == "NBKG":
            header = join_cards(edit_cards(split_cards(header), {}, ())
                                + ["COMMENT number of background values kept by the sigma clip"])
        plan.append(ArrayHdu(header, data, kind))
    return plan
