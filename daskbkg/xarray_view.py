"""The lazy result as an ``xarray.Dataset`` (optional: ``pip install daskbkg[xarray]``).

Naming convention
-----------------
Outside FITS files every array is named by its FITS extension name in lower case: the
attributes of :class:`~daskbkg.BackgroundResult` (``result.sci``), the arrays of a zarr
output group (``group["sci"]``) and the variables of the Dataset (``ds.sci``). FITS files
keep upper-case EXTNAMEs (``SCI``, ``ERR``, ``DQ``, ``NBKG``), as FITS readers expect. The
combined background's arrays are ``combined_sci``, ``combined_err``, ``combined_dq`` and
``nbkg`` in a product Dataset, and ``sci``, ``err``, ``dq``, ``nbkg`` in its own zarr group.

Dimensions are ``("y", "x")`` for images and ``("integration", "y", "x")`` for rateints
cubes; the combined background is always an image.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DIMS", "dims_for", "require_xarray", "result_dataset", "header_attrs"]

#: Dimension names by number of axes.
DIMS = {2: ("y", "x"), 3: ("integration", "y", "x")}


def dims_for(ndim: int) -> tuple[str, ...]:
    """Dimension names of an array with ``ndim`` axes (2 or 3; others get ``dim_i``)."""
    return DIMS.get(ndim, tuple(f"dim_{i}" for i in range(ndim)))


def require_xarray():
    """Import xarray, or raise an ImportError that names the extra to install."""
    try:
        import xarray
    except ImportError as exc:
        raise ImportError("this needs xarray: pip install 'daskbkg[xarray]' "
                          "(or pip install xarray)") from exc
    return xarray


def header_attrs(header: Any) -> dict[str, Any]:
    """FITS header cards as attributes: keyword -> value (JSON types).

    Structural keywords are left out. COMMENT and HISTORY cards become one string each,
    their lines joined by newlines; for a repeated keyword the first value wins.
    """
    from .io.zarr_writer import header_cards

    skip = {"SIMPLE", "XTENSION", "BITPIX", "EXTEND", "PCOUNT", "GCOUNT", "BZERO", "BSCALE", ""}
    attrs: dict[str, Any] = {}
    notes: dict[str, list[str]] = {"COMMENT": [], "HISTORY": []}
    for keyword, value, _comment in header_cards(header):
        if keyword in notes:
            notes[keyword].append(str(value))
        elif keyword not in skip and not keyword.startswith("NAXIS") and keyword not in attrs:
            attrs[keyword] = value
    attrs.update({k: "\n".join(v) for k, v in notes.items() if v})
    return attrs


def _primary_header(result: Any):
    """The product's PRIMARY header as written (updates and provenance included)."""
    from astropy.io import fits

    from .io.products import primary_header_bytes, provenance_history

    product = result.product
    history = provenance_history(product.params, product.compat,
                                 f"background step {product.status}", product.info)
    raw = primary_header_bytes(product.target.layout.hdus[0].raw_header,
                               product.primary_updates, history)
    return fits.Header.fromstring(raw.decode("ascii"))


def result_dataset(result: Any):
    """Lazy ``xarray.Dataset`` of a :class:`~daskbkg.BackgroundResult`.

    Parameters
    ----------
    result : BackgroundResult

    Returns
    -------
    xarray.Dataset
        Variables ``sci``, ``err``, ``dq`` and, unless the step was skipped,
        ``combined_sci``, ``combined_err``, ``combined_dq`` and ``nbkg``, all backed by the
        result's dask arrays (nothing is computed). Dataset attributes are the output
        PRIMARY header's cards; each product variable carries the cards of the target's
        extension of the same name, and ``fits_extname`` its FITS EXTNAME.
    """
    xr = require_xarray()
    layout = result.product.target.layout
    variables = {}
    for name, data in result.arrays().items():
        extname = name.replace("combined_", "").upper()
        attrs: dict[str, Any] = {}
        hdu = layout.find(extname) if not name.startswith("combined_") and name != "nbkg" else None
        if hdu is not None:
            attrs = header_attrs(hdu.header)
            attrs.pop("EXTNAME", None)
        attrs["fits_extname"] = extname
        variables[name] = xr.Variable(dims_for(data.ndim), data, attrs=attrs)
    return xr.Dataset(variables, attrs=header_attrs(_primary_header(result)))
