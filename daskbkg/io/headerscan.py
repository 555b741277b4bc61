"""A small, fast FITS header walker: HDU boundaries and structural keywords.

Parsing a whole header with astropy costs about a millisecond per HDU, which adds up
over hundreds of background files. This walker reads the 2880-byte header blocks,
extracts the few keywords needed to locate every HDU's data and to read the
algorithm's metadata, and keeps the raw header bytes so the full astropy header can be
built only when it is needed (for the target, whose headers are copied to the output).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

__all__ = ["RawHdu", "walk_hdus", "parse_value", "BLOCK"]

BLOCK = 2880
_CARD = 80


def parse_value(text: str) -> Any:
    """Value of a FITS card's value field (string, logical, integer or float)."""
    text = text.strip()
    if text.startswith("'"):
        out, i = [], 1
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(ch)
            i += 1
        return "".join(out).rstrip()
    value = text.split("/", 1)[0].strip()
    if value == "T":
        return True
    if value == "F":
        return False
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value.replace("D", "E").replace("d", "e"))
    except ValueError:
        return value


class RawHdu:
    """One HDU as found by :func:`walk_hdus`: offsets, raw header and keywords."""

    __slots__ = ("header_offset", "data_offset", "data_size", "raw_header", "keywords")

    def __init__(self, header_offset: int, data_offset: int, data_size: int,
                 raw_header: bytes, keywords: dict):
        self.header_offset = header_offset
        self.data_offset = data_offset
        self.data_size = data_size
        self.raw_header = raw_header
        self.keywords = keywords

    @property
    def data_span(self) -> int:
        """Size of the data rounded up to whole 2880-byte blocks."""
        return -(-self.data_size // BLOCK) * BLOCK


def _data_size(kw: dict) -> int:
    naxis = int(kw.get("NAXIS", 0) or 0)
    if naxis == 0:
        return 0
    n = 1
    for i in range(1, naxis + 1):
        n *= int(kw.get(f"NAXIS{i}", 0) or 0)
    gcount = int(kw.get("GCOUNT", 1) or 1)
    pcount = int(kw.get("PCOUNT", 0) or 0)
    return abs(int(kw.get("BITPIX", 8))) // 8 * gcount * (pcount + n)


def walk_hdus(read: Callable[[int, int], bytes], size: int) -> Iterator[RawHdu]:
    """Yield every HDU of a file of ``size`` bytes; ``read(offset, n)`` gives its bytes.

    Raises
    ------
    ValueError
        The bytes are not FITS (no SIMPLE card, no END card, truncated header).
    """
    offset = 0
    first = True
    while offset < size:
        start = offset
        chunks, keywords, done = [], {}, False
        while not done:
            block = read(offset, BLOCK)
            if len(block) < BLOCK:
                raise ValueError(f"header truncated at byte {offset}")
            chunks.append(block)
            offset += BLOCK
            for pos in range(0, BLOCK, _CARD):
                card = block[pos:pos + _CARD].decode("ascii", "replace")
                key = card[:8].rstrip()
                if key == "END":
                    done = True
                    break
                if card[8:10] == "= " and key not in keywords:
                    keywords[key] = parse_value(card[10:])
        if first:
            if keywords.get("SIMPLE") is not True:
                raise ValueError("no SIMPLE = T card at the start of the file")
            first = False
        elif "XTENSION" not in keywords:
            raise ValueError(f"no XTENSION card in the header at byte {start}")
        hdu = RawHdu(start, offset, _data_size(keywords), b"".join(chunks), keywords)
        yield hdu
        offset += hdu.data_span
