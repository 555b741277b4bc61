"""Fusion units: stable task definitions whatever subset of a result is computed.

dask fuses chains of blockwise layers, and which layers it fuses depends on which arrays
are asked for: computing a whole result keeps the combined background as its own tasks,
while computing ``result.sci`` alone would fuse the background combination into the
subtraction. The same key then carries two different task definitions, which a
``distributed`` scheduler reports as "Detected different `run_spec` for key".

:func:`in_unit` gives the layers of an array the annotation ``daskbkg_unit``. Layers with
different units are never fused together (dask fuses layers only when their annotations
agree), so each output array and the combined background stay separate units, whatever
is computed, while the layers inside one unit (a tile read and its kernel) still fuse.
"""

from __future__ import annotations

__all__ = ["in_unit"]


def in_unit(array, unit: str, *inputs):
    """Put the layers of ``array`` that are not layers of ``inputs`` in fusion unit ``unit``.

    Parameters
    ----------
    array : dask.array.Array
        A freshly built array (its own layers are annotated in place).
    unit : str
        Name of the fusion unit.
    *inputs : dask.array.Array
        Arrays ``array`` was built from; their layers keep their own units.

    Returns
    -------
    dask.array.Array
        ``array`` itself.
    """
    shared = set()
    for item in inputs:
        shared.update(item.__dask_graph__().layers)
    for name, layer in array.__dask_graph__().layers.items():
        if name not in shared:
            layer.annotations = {**(layer.annotations or {}), "daskbkg_unit": unit}
    return array
