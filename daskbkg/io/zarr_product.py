"""Zarr groups for products and combined backgrounds."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from .products import primary_header_bytes, provenance_history
from .zarr_writer import ZarrArraySpec, header_cards, write_zarr_group

__all__ = ["product_group", "combined_group"]


def _run_attrs(params: Any, compat: Any, status: str, inputs: list) -> dict:
    return {
        "version": __version__,
        "status": status,
        "parameters": {"sigma": params.sigma, "maxiters": params.maxiters},
        "non_default_options": {k: v for k, v in compat.non_defaults().items()},
        "inputs": [{"path": p, "size": s, "mtime_ns": m} for p, s, m in inputs],
    }


def _dims(key: str, shape: tuple[int, ...], sci_shape: tuple[int, ...]) -> tuple[str, ...]:
    """Shared dimension names when the sizes agree with SCI's, else names of its own.

    xarray needs every use of one dimension name to have one size.
    """
    from ..xarray_view import dims_for

    sizes = dict(zip(dims_for(len(sci_shape)), sci_shape))
    dims = dims_for(len(shape))
    if all(sizes.get(d, n) == n for d, n in zip(dims, shape)):
        return dims
    return tuple(f"{key}_{d}" for d in dims)


def product_group(product: Any, path, *, shards: bool = False):
    """Deferred writer of the main product as a zarr group (see ``zarr_writer``)."""
    import dask.array as da
    import numpy as np

    layout = product.target.layout
    history = provenance_history(product.params, product.compat,
                                 f"background step {product.status}", product.info)
    outputs = {"SCI": product.sci, "ERR": product.err, "DQ": product.dq}
    arrays, headers = [], []
    for hdu in layout.hdus:
        header = hdu.header
        if hdu.index == 0:
            from astropy.io import fits

            header = fits.Header.fromstring(primary_header_bytes(
                hdu.raw_header, product.primary_updates, history).decode("ascii"))
        headers.append({"name": hdu.name, "ver": hdu.ver, "cards": header_cards(header)})
        if hdu.index == 0:
            continue
        key = hdu.name.lower() if hdu.ver == 1 else f"{hdu.name.lower()}_{hdu.ver}"
        if hdu.ver == 1 and hdu.name in outputs:
            arrays.append(ZarrArraySpec(key, outputs[hdu.name]))
        elif hdu.is_image and hdu.shape and not hdu.compressed:
            reader = layout.array(hdu.name, hdu.ver)
            chunks = product.sci.chunks[-2:]
            lead = tuple((n,) for n in reader.shape[:-2])
            arrays.append(ZarrArraySpec(key, da.from_array(reader, chunks=lead + chunks,
                                                           asarray=False, lock=False),
                                        dims=_dims(key, reader.shape, product.sci.shape)))
        else:
            from .source import open_input

            with open_input(layout.path) as f:
                f.seek(hdu.header_offset)
                raw = f.read(hdu.end - hdu.header_offset)
            arrays.append(ZarrArraySpec(f"hdu_{key}", np.frombuffer(raw, dtype=np.uint8),
                                        {"fits_hdu_bytes": True}, dims=(f"hdu_{key}_byte",)))
    for name, data, _kind in product.extra_arrays:
        arrays.append(ZarrArraySpec(name.lower(), data))
    inputs = [product.target.identity]
    if product.combined is not None:
        inputs += [b.identity for b in product.combined.backgrounds]
    run = _run_attrs(product.params, product.compat, product.status, inputs)
    run.update({k: v for k, v in product.info.items()})
    attrs = {"daskbkg": run, "fits_headers": headers}
    return write_zarr_group(path, arrays, attrs, shards=shards, compute=False)


def combined_group(combined: Any, path, *, shards: bool = False):
    """Deferred writer of a combined background as a zarr group (sci, err, dq, nbkg)."""
    arrays = [ZarrArraySpec(name.lower(), data) for name, data in combined.arrays.items()]
    attrs = {"daskbkg": _run_attrs(combined.params, combined.compat, "COMBINED",
                                   [b.identity for b in combined.backgrounds])}
    return write_zarr_group(path, arrays, attrs, shards=shards, compute=False)
