"""WFSS source-box tables: the user alternative to the catalog projection (algorithm page W.10).

A box table lists one row per kept (object, order) box. Bounds are the integer indices after
the rounding of W.3: 0-based, **inclusive**, in full-frame grism pixels, not clipped to the
detector (values such as -905 or 2773 are normal). daskbkg rasterises them with W.4.

Columns (in this order; ``partial`` is optional and informational)::

    label  order  xmin  xmax  ymin  ymax  [partial]

Two encodings are accepted, chosen by the file extension:

* **ECSV** (``.ecsv``; astropy's ``ascii.ecsv``), e.g.::

      # %ECSV 1.0
      # ---
      # datatype:
      # - {name: label, datatype: int64}
      # ... (order, xmin, xmax, ymin, ymax: int64; partial: bool)
      # schema: astropy-2.0
      label order xmin xmax ymin ymax partial
      3 1 1115 2074 966 1024 True

  A table with a ``source_id`` column instead of ``label`` (as in the reference test
  data) is accepted; other extra columns are ignored.

* **JSON** (``.json``): either a list of row objects, or an object whose ``"boxes"`` member
  is such a list::

      {"format": "daskbkg-wfss-boxes", "version": 1,
       "boxes": [{"label": 3, "order": 1, "xmin": 1115, "xmax": 2074,
                  "ymin": 966, "ymax": 1024, "partial": true}]}

Boxes that daskbkg computes itself are saved with :func:`write_box_table` as
``<root>_wfssboxes.ecsv`` (see :func:`boxes_file_name`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .boxes import Box
from .errors import WfssFileNotFoundError, WfssMaskError

__all__ = ["BOX_COLUMNS", "read_box_table", "write_box_table", "boxes_file_name",
           "boxes_from_rows"]

#: Required columns of a box table, in file order.
BOX_COLUMNS = ("label", "order", "xmin", "xmax", "ymin", "ymax")


def _as_int(value, name: str, path) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise WfssMaskError(f"{path}: box column {name!r} must hold integers, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WfssMaskError(f"{path}: box column {name!r} must hold integers, not {value!r}") \
            from None
    if not number.is_integer():
        raise WfssMaskError(f"{path}: box column {name!r} must hold integers, not {value!r}")
    return int(number)


def boxes_from_rows(rows: Iterable[dict], path="box table") -> list[Box]:
    """Build :class:`Box` records from mappings with the :data:`BOX_COLUMNS` keys.

    Raises
    ------
    WfssMaskError
        A column is missing or a bound is not an integer (``ValueError``).
    """
    boxes = []
    for i, row in enumerate(rows):
        if "label" not in row and "source_id" in row:
            row = {**row, "label": row["source_id"]}
        missing = [c for c in BOX_COLUMNS if c not in row]
        if missing:
            raise WfssMaskError(f"{path}: box row {i} lacks column(s) {', '.join(missing)}")
        values = [_as_int(row[c], c, path) for c in BOX_COLUMNS]
        boxes.append(Box(*values, partial=bool(row.get("partial", False))))
    return boxes


def read_box_table(path: str | os.PathLike) -> list[Box]:
    """Read a box table (ECSV or JSON, by extension; see the module docstring).

    Raises
    ------
    WfssFileNotFoundError
        The file does not exist.
    WfssMaskError
        The file cannot be parsed or lacks a column (``ValueError``).
    """
    path = Path(path)
    if not path.is_file():
        raise WfssFileNotFoundError(f"{path}: source box table not found")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WfssMaskError(f"{path}: not a JSON box table ({exc})") from None
        rows = data.get("boxes") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise WfssMaskError(f"{path}: a JSON box table is a list of row objects or an "
                                "object with a 'boxes' list")
        return boxes_from_rows(rows, path)
    from astropy.table import Table

    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as exc:  # astropy raises assorted errors on malformed tables
        raise WfssMaskError(f"{path}: not an ECSV box table ({type(exc).__name__}: {exc})") \
            from None
    names = [n for n in (*BOX_COLUMNS, "source_id", "partial") if n in table.colnames]
    rows = ({n: row[n] for n in names} for row in table)
    return boxes_from_rows(rows, path)


def write_box_table(boxes: Sequence[Box], path: str | os.PathLike, *, meta: dict | None = None,
                    overwrite: bool = False) -> Path:
    """Write boxes as an ECSV (``.ecsv``) or JSON (``.json``) box table.

    Parameters
    ----------
    boxes : sequence of Box
    path : path-like
        Output file; the extension selects the encoding.
    meta : dict, optional
        Extra table metadata (ECSV header ``meta`` / JSON top-level members).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    rows = [box.as_row() for box in boxes]
    if path.suffix.lower() == ".json":
        doc = {"format": "daskbkg-wfss-boxes", "version": 1, **(meta or {}),
               "boxes": [dict(zip((*BOX_COLUMNS, "partial"), r)) for r in rows]}
        path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return path
    from astropy.table import Table

    columns = list(zip(*rows)) if rows else [[] for _ in range(7)]
    dtypes = [np.int64] * 6 + [bool]
    table = Table([np.asarray(c, dtype=t) for c, t in zip(columns, dtypes)],
                  names=(*BOX_COLUMNS, "partial"))
    table.meta.update({"convention": "0-based, inclusive, full-frame grism pixels; "
                       "floor(v + 0.5) rounding; not clipped", **(meta or {})})
    table.write(path, format="ascii.ecsv", overwrite=overwrite)
    return path


def boxes_file_name(target_path: str | os.PathLike, output_dir: str | os.PathLike | None = None,
                    root: str | None = None) -> Path:
    """``<output_dir>/<root>_wfssboxes.ecsv`` for a target (root as for the main product)."""
    from ..io.naming import split_root

    if root is None:
        root, _ = split_root(target_path)
    return Path(output_dir if output_dir is not None else ".") / f"{root}_wfssboxes.ecsv"
