"""Build and edit output headers with astropy (``astropy.io.fits.Header``).

Untouched cards keep their original 80-character images (astropy re-serialises a card
only when it changes), so a copied header stays byte-identical apart from the edits.
"""

from __future__ import annotations

import os
import re
import textwrap
import warnings
from datetime import datetime, timezone
from typing import Any

__all__ = ["ascii_text", "history_lines", "edit_header", "image_header", "stamp_primary",
           "STRUCTURAL"]

#: Keywords describing a stored HDU (image or compressed table) rather than its content;
#: they are rebuilt for every HDU whose data daskbkg writes.
STRUCTURAL = re.compile(
    r"^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|EXTEND|BZERO|BSCALE|BLANK|CHECKSUM"
    r"|DATASUM|THEAP|TFIELDS|T(TYPE|FORM|UNIT|DIM|SCAL|ZERO|NULL|DISP)\d+"
    r"|ZIMAGE|ZCMPTYPE|ZBITPIX|ZNAXIS\d*|ZTILE\d+|ZNAME\d+|ZVAL\d+|ZQUANTIZ|ZDITHER0"
    r"|ZSIMPLE|ZTENSION|ZEXTEND|ZBLOCKED|ZPCOUNT|ZGCOUNT|ZHECKSUM|ZDATASUM|ZSCALE|ZZERO"
    r"|ZBLANK)$")
_WIDTH = 72  # text columns of a HISTORY card


def ascii_text(text: str) -> str:
    """``text`` with every non-ASCII or non-printable character replaced by ``?``.

    astropy does the same to non-ASCII header bytes it reads; FITS headers hold only
    printable ASCII.
    """
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


def history_lines(text: str) -> list[str]:
    """Split ``text`` into HISTORY card texts of at most 72 characters.

    Lines break at spaces; a word is cut only when it is longer than a whole card.
    """
    return textwrap.wrap(ascii_text(text), _WIDTH, break_on_hyphens=False,
                         break_long_words=True) or [""]


def edit_header(header: Any, updates: dict, history: list[str] = ()) -> Any:
    """A copy of ``header`` with keywords set and HISTORY cards appended.

    ``updates`` maps keyword to a value or a ``(value, comment)`` pair; a keyword that
    exists keeps its place (and its comment unless one is given). CHECKSUM and DATASUM
    are removed: they no longer describe the edited HDU.
    """
    out = header.copy()
    for key in ("CHECKSUM", "DATASUM"):
        out.remove(key, ignore_missing=True, remove_all=True)
    for key, value in updates.items():
        comment = None
        if isinstance(value, tuple):
            value, comment = value
        if isinstance(value, str):
            value = ascii_text(value)
        with warnings.catch_warnings():
            # A long value shortens the card's comment; astropy says so, nothing is lost.
            warnings.filterwarnings("ignore", "Card is too long")
            out[key] = value if comment is None else (value, ascii_text(comment))
    for line in history:
        for part in history_lines(line):
            out.add_history(part)
    return out


def image_header(base: Any, shape: tuple[int, ...], bitpix: int, bzero: int | None = None, *,
                 primary: bool = False, extname: str | None = None) -> Any:
    """Header of a plain image HDU of ``shape`` (NumPy order) stored as ``bitpix``.

    The content cards of ``base`` (a Header, or None) are kept in order; its structural,
    table, tile-compression and checksum cards are replaced by the ones of the new HDU.
    ``bzero`` adds ``BSCALE = 1`` and that ``BZERO`` (pseudo-unsigned integers).
    """
    from astropy.io import fits

    out = fits.Header()
    out["SIMPLE" if primary else "XTENSION"] = True if primary else "IMAGE"
    out["BITPIX"] = bitpix
    out["NAXIS"] = len(shape)
    for i, n in enumerate(reversed(shape)):
        out[f"NAXIS{i + 1}"] = int(n)
    if primary:
        out["EXTEND"] = True
    else:
        out["PCOUNT"] = 0
        out["GCOUNT"] = 1
    if bzero is not None:
        out["BSCALE"] = 1
        out["BZERO"] = bzero
    if base is not None:
        for card in base.cards:
            if not STRUCTURAL.match(card.keyword):
                out.append(fits.Card.fromstring(card.image), end=True)
    if extname is not None:
        out["EXTNAME"] = (extname, "extension name")
    return out


def _now() -> datetime:
    """UTC now, or ``SOURCE_DATE_EPOCH`` (seconds) when set, for reproducible files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), timezone.utc)
    return datetime.now(timezone.utc)


def stamp_primary(header: Any, filename: str) -> Any:
    """A copy of a PRIMARY header with ``FILENAME`` and ``DATE`` as the JWST writer sets them.

    ``FILENAME`` is the file's own name and ``DATE`` the UTC time of writing (ISO 8601
    with milliseconds; the environment variable ``SOURCE_DATE_EPOCH`` fixes it for
    byte-reproducible files); the edit removes CHECKSUM/DATASUM.
    """
    now = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    updates = {"DATE": now, "FILENAME": filename}
    for key, comment in (("DATE", "UTC date file created"), ("FILENAME", "Name of the file")):
        if key not in header:
            updates[key] = (updates[key], comment)
    return edit_header(header, updates)
