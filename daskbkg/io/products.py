"""Map lazy products onto HDU lists (FITS) and arrays plus attributes (zarr)."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from .fits_writer import ArrayHdu, CopiedHdu, image_header

__all__ = ["provenance_history", "product_hdus", "combined_hdus", "apply_primary_updates"]

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


def apply_primary_updates(header: Any, updates: dict, history: list[str]) -> Any:
    """Copy ``header`` and set keywords, ``DBKG_VER`` and HISTORY cards."""
    header = header.copy()
    for key, value in updates.items():
        header[key] = value
    header["DBKG_VER"] = (__version__, "daskbkg version that wrote this file")
    for line in history:
        header.add_history(line)
    return header


def product_hdus(product: Any) -> list:
    """HDU plan of the main product: the target's HDUs with SCI/DQ (and ERR) replaced."""
    layout = product.target.layout
    history = provenance_history(product.params, product.compat,
                                 f"background step {product.status}", product.info)
    replaced = {}
    if product.status == "COMPLETE":
        replaced = {"SCI": product.sci, "DQ": product.dq}
        if product.compat.propagate_err:
            replaced["ERR"] = product.err
    plan = []
    for hdu in layout.hdus:
        if hdu.index == 0:
            header = apply_primary_updates(hdu.header, product.primary_updates, history)
            plan.append(CopiedHdu(layout.path, hdu.header_offset, hdu.data_offset,
                                  hdu.data_span, header=header))
        elif hdu.ver == 1 and hdu.name in replaced:
            data = replaced[hdu.name]
            kind = _OUTPUT_KINDS[hdu.name]
            plan.append(ArrayHdu(image_header(hdu.header, data.shape, kind), data, kind))
        else:
            plan.append(CopiedHdu(layout.path, hdu.header_offset, hdu.data_offset, hdu.data_span))
    for name, data, kind in product.extra_arrays:
        plan.append(ArrayHdu(image_header(None, data.shape, kind, extname=name), data, kind))
    return plan


def combined_hdus(combined: Any, primary_cards: dict | None = None) -> list:
    """HDU plan of the combined-background file: PRIMARY, SCI, DQ, ERR, NBKG."""
    history = provenance_history(combined.params, combined.compat, "combined background")
    history.append(f"daskbkg backgrounds ({len(combined.backgrounds)}): "
                   + ", ".join(b.name for b in combined.backgrounds))
    primary = image_header(None, (), "float32", primary=True)
    primary["BITPIX"] = 8
    primary = apply_primary_updates(primary, primary_cards or {}, history)
    plan: list = [ArrayHdu(primary, None, "float32")]
    arrays = combined.arrays
    for name in ("SCI", "DQ", "ERR", "NBKG"):
        data = arrays[name]
        kind = _OUTPUT_KINDS[name]
        header = image_header(None, data.shape, kind, extname=name)
        if name == "NBKG":
            header["COMMENT"] = "number of background values kept by the sigma clip"
        plan.append(ArrayHdu(header, data, kind))
    return plan
