"""How the numbers stored in a FITS image HDU become the working arrays.

The reference reads an exposure through its data models: astropy decodes each image HDU
(byte order, ``BSCALE``/``BZERO``/``BLANK``), then the model casts the result to the dtype
of its schema with ``numpy.asarray(data, dtype)`` (a C cast): SCI and ERR become float32,
DQ becomes uint32. :class:`Encoding` reproduces astropy's decoding on any tile (every
step of it is elementwise, so a tile decodes exactly as the whole array would) and
:func:`convert` applies the model's cast.

Decoding modes:

* ``"plain"``: no scaling; the big-endian values are the numbers.
* ``"flip"``: astropy's pseudo-unsigned integers (``BSCALE = 1`` and ``BZERO = 2**(n-1)``
  for 16/32/64 bits, or ``BZERO = -128`` for 8 bits, giving int8). Adding BZERO is the
  same as flipping the sign bit, which is exact.
* ``"scaled"``: every other scaling; as in astropy the raw values become float32 (8/16-bit
  integers) or float64 (32/64-bit integers) or stay floating point, are multiplied by
  ``BSCALE`` and offset by ``BZERO``, and ``BLANK`` pixels become NaN.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Encoding", "convert", "BITPIX_DTYPES"]

#: On-disk (big-endian) dtype of each BITPIX.
BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_PSEUDO = {8: np.dtype("int8"), 16: np.dtype("uint16"), 32: np.dtype("uint32"),
           64: np.dtype("uint64")}

_warned: set = set()
_warned_lock = threading.Lock()


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Encoding:
    """Storage of one image HDU: ``BITPIX`` and the scaling keywords as astropy sees them.

    ``bscale``/``bzero`` keep the header's Python types (int or float), as astropy uses
    them; ``blank`` is None unless astropy applies it (an integer on integer data).
    """

    bitpix: int
    bscale: Any = 1
    bzero: Any = 0
    blank: int | None = None

    @classmethod
    def from_header(cls, header: Any, bitpix_key: str = "BITPIX") -> "Encoding":
        """Read ``BITPIX`` (or ``ZBITPIX``), ``BSCALE``, ``BZERO`` and ``BLANK``."""
        bitpix = int(header.get(bitpix_key, 0) or 0)
        blank = header.get("BLANK")
        if not _is_int(blank) or bitpix <= 0:
            blank = None
        return cls(bitpix, header.get("BSCALE", 1), header.get("BZERO", 0), blank)

    @property
    def supported(self) -> bool:
        """BITPIX is one of the six FITS values."""
        return self.bitpix in BITPIX_DTYPES

    @property
    def disk_dtype(self) -> np.dtype:
        """Big-endian dtype of the stored values."""
        return np.dtype(BITPIX_DTYPES[self.bitpix])

    @property
    def mode(self) -> str:
        """``"plain"``, ``"flip"`` or ``"scaled"`` (see the module docstring)."""
        if self.bzero == 0 and self.bscale == 1:
            return "plain" if self.blank is None else "scaled"
        if self.bscale == 1 and self.bitpix in _PSEUDO and self.bzero == (
                -128 if self.bitpix == 8 else 1 << (self.bitpix - 1)):
            return "flip"
        return "scaled"

    @property
    def value_dtype(self) -> np.dtype:
        """Native dtype of the values astropy returns for this HDU."""
        mode = self.mode
        if mode == "plain":
            return self.disk_dtype.newbyteorder("=")
        if mode == "flip":
            return _PSEUDO[self.bitpix]
        if self.bitpix < 0:
            return self.disk_dtype.newbyteorder("=")
        return np.dtype("float64" if self.bitpix > 16 else "float32")

    def describe(self) -> str:
        """Short text such as ``BITPIX 16, BSCALE 0.5, BZERO 10``."""
        text = f"BITPIX {self.bitpix}"
        if self.bscale != 1:
            text += f", BSCALE {self.bscale}"
        if self.bzero != 0:
            text += f", BZERO {self.bzero}"
        if self.blank is not None:
            text += f", BLANK {self.blank}"
        return text

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Values of the stored big-endian ``raw`` tile, exactly as astropy computes them."""
        mode = self.mode
        if mode == "plain":
            return raw.astype(raw.dtype.newbyteorder("="), copy=False)
        if mode == "flip":
            bits = self.disk_dtype.itemsize * 8
            unsigned = raw.view(np.dtype(f">u{bits // 8}")).astype(f"=u{bits // 8}")
            unsigned ^= unsigned.dtype.type(1 << (bits - 1))
            return unsigned.view(self.value_dtype)
        data = np.array(raw, dtype=self.value_dtype)
        blanks = None if self.blank is None else raw == self.blank
        if self.bscale != 1:
            np.multiply(data, self.bscale, data)
        if self.bzero != 0:
            data += self.bzero
        if self.blank:  # astropy tests the value: BLANK = 0 is never applied
            data[blanks] = np.nan
        return data


def convert(values: np.ndarray, out: np.ndarray, where: str) -> None:
    """Cast decoded ``values`` into ``out`` as the data models do (``numpy.asarray``).

    If some value does not survive the cast unchanged (float64 beyond float32 precision
    or range, integers wider than the working type), a warning naming ``where`` is issued
    once per process: the result is still the reference's.
    """
    with np.errstate(all="ignore"):
        np.copyto(out, values, casting="unsafe")
        if values.dtype == out.dtype or np.can_cast(values.dtype, out.dtype, "safe"):
            return
        back = out.astype(values.dtype)
        same = back == values
        if values.dtype.kind == "f":
            same |= np.isnan(values) & np.isnan(back)
    if not same.all():
        with _warned_lock:
            if where in _warned:
                return
            _warned.add(where)
        warnings.warn(f"{where}: stored as {values.dtype}, some values are not exactly "
                      f"representable as {out.dtype}; as in the reference they were converted "
                      "by rounding/truncation", RuntimeWarning, stacklevel=3)
