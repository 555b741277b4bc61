"""The WAVELENGTHRANGE reference file: extraction orders and wavelength limits.

The file is a plain ASDF tree (algorithm page W.1, W.3)::

    meta: {exposure: {type: "NRC_WFSS", ...}, ...}
    wavelengthrange: [[order, filter, lambda_min, lambda_max], ...]     # micron
    extract_orders: [[filter, [order, ...]], ...]

It is read with plain :mod:`asdf` (no data model needed). The rules reproduce the
reference: the orders come from the **last** ``extract_orders`` entry of the filter, and
each order's limits from the **first** matching ``wavelengthrange`` row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import WfssFileNotFoundError, WfssOrderError, WfssWavelengthRangeError

__all__ = ["OrderRanges", "orders_and_ranges", "read_wavelengthrange",
           "resolve_wavelengthrange_path"]


@dataclass(frozen=True)
class OrderRanges:
    """Orders to mask for one filter and their wavelength limits.

    Attributes
    ----------
    filter : str
        The filter key (algorithm page W.3).
    orders : tuple of int
        Orders in the listed order.
    ranges : dict
        ``order -> (lambda_min, lambda_max)`` in micron.
    """

    filter: str
    orders: tuple
    ranges: dict


def orders_and_ranges(extract_orders, wavelengthrange, key: str) -> OrderRanges:
    """Apply the selection rules of algorithm page W.3 to the two lists of the file.

    Parameters
    ----------
    extract_orders : sequence of (filter, sequence of int)
    wavelengthrange : sequence of (order, filter, lambda_min, lambda_max)
    key : str
        Filter key of the exposure.

    Returns
    -------
    OrderRanges

    Raises
    ------
    WfssOrderError
        The filter has no ``extract_orders`` entry, or an order has no
        ``wavelengthrange`` row for the filter (an ``IndexError``, as in the reference).
    """
    matches = [entry for entry in extract_orders if entry[0] == key]
    if not matches:
        raise WfssOrderError(f"filter {key!r} is not listed in the wavelengthrange file's "
                             "extract_orders")
    orders = tuple(matches[-1][1])
    ranges = {}
    for order in orders:
        row = next((r for r in wavelengthrange if r[0] == order and r[1] == key), None)
        if row is None:
            raise WfssOrderError(f"order {order} of filter {key!r} has no row in the "
                                 "wavelengthrange file's wavelengthrange list")
        ranges[order] = (row[2], row[3])
    return OrderRanges(filter=key, orders=orders, ranges=ranges)


def read_wavelengthrange(path: str | os.PathLike, key: str) -> OrderRanges:
    """Read a WAVELENGTHRANGE ASDF file and select the orders of filter ``key``.

    Raises
    ------
    WfssFileNotFoundError
        The file does not exist.
    WfssWavelengthRangeError
        The file is not readable ASDF, lacks the lists, or ``meta.exposure.type`` does not
        contain ``"WFSS"`` (a ``ValueError``, as in the reference).
    WfssOrderError
        See :func:`orders_and_ranges`.
    """
    import asdf

    path = Path(path)
    if not path.is_file():
        raise WfssFileNotFoundError(f"{path}: wavelengthrange reference file not found")
    try:
        with asdf.open(path, lazy_load=False, memmap=False) as af:
            tree = af.tree
            exp_type = str(tree.get("meta", {}).get("exposure", {}).get("type", ""))
            extract_orders = _plain(tree.get("extract_orders"))
            ranges = _plain(tree.get("wavelengthrange"))
    except (OSError, ValueError) as exc:
        raise WfssWavelengthRangeError(
            f"{path}: not a readable ASDF wavelengthrange file ({type(exc).__name__}: {exc})"
        ) from None
    if "WFSS" not in exp_type:
        raise WfssWavelengthRangeError(
            f"{path}: wavelengthrange file is not for WFSS (meta.exposure.type {exp_type!r})"
        )
    if extract_orders is None or ranges is None:
        raise WfssWavelengthRangeError(
            f"{path}: wavelengthrange file lacks extract_orders or wavelengthrange"
        )
    return orders_and_ranges(extract_orders, ranges, key)


def _plain(value):
    """Copy nested ASDF lists into plain Python lists (usable after the file closes)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolve_wavelengthrange_path(given: str | os.PathLike | None, r_wavran: str | None,
                                 target_path: str | os.PathLike) -> Path:
    """Locate the wavelengthrange file.

    A path given by the user wins. Otherwise the file named by the target's ``R_WAVRAN``
    keyword (``crds://`` prefix removed) is looked for in the current directory and then
    in the target's folder; daskbkg never downloads it.

    Raises
    ------
    WfssFileNotFoundError
        Nothing found; the message names ``R_WAVRAN`` when the header has it.
    """
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise WfssFileNotFoundError(f"{path}: wavelengthrange reference file not found")
        return path
    if r_wavran:
        name = os.path.basename(str(r_wavran).strip().removeprefix("crds://"))
        if name and name.upper() != "N/A":
            for folder in (Path.cwd(), Path(target_path).resolve().parent):
                if (folder / name).is_file():
                    return folder / name
        raise WfssFileNotFoundError(
            f"{target_path}: no wavelengthrange file given and {name!r} (R_WAVRAN) is not in "
            "the current directory or next to the target; pass --wavelengthrange"
        )
    raise WfssFileNotFoundError(
        f"{target_path}: no wavelengthrange file given (--wavelengthrange) and the target "
        "has no R_WAVRAN keyword"
    )
