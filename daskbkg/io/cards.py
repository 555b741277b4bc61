"""Write FITS header cards directly, without astropy.

The output headers of a product are the target's headers with a few cards changed, and
the combined-background headers are tiny. Editing the raw 80-character cards keeps every
untouched card byte-identical and avoids importing and running astropy's header
machinery on the hot path.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["format_card", "history_cards", "split_cards", "join_cards", "edit_cards",
           "structural_cards", "BLOCK"]

BLOCK = 2880
_END = "END".ljust(80)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return ("T" if value else "F").rjust(20)
    if isinstance(value, int):
        return str(value).rjust(20)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            text = text.upper()
        elif "." not in text and "INF" not in text.upper() and "NAN" not in text.upper():
            text += "."
        return text.rjust(20)
    text = str(value).replace("'", "''")
    return f"'{text.ljust(8)}'".ljust(20)


def format_card(key: str, value: Any, comment: str = "") -> str:
    """One 80-character ``KEY = value / comment`` card (value in FITS fixed format)."""
    key = key.upper()
    if len(key) > 8:
        raise ValueError(f"FITS keyword {key!r} is longer than 8 characters")
    card = f"{key.ljust(8)}= {_format_value(value)}"
    if comment:
        card += f" / {comment}"
    if len(card) > 80:
        if isinstance(value, str) and not comment:
            raise ValueError(f"value of {key} does not fit in one card")
        card = card[:80]
    return card.ljust(80)


def history_cards(text: str, key: str = "HISTORY") -> list[str]:
    """``HISTORY`` (or ``COMMENT``) cards holding ``text``, split every 72 characters."""
    return [f"{key.ljust(8)}{text[i:i + 72]}".ljust(80) for i in range(0, max(len(text), 1), 72)]


def split_cards(raw: bytes) -> list[str]:
    """Cards of a raw header, without the END card and the blank padding after it."""
    text = raw.decode("ascii", "replace")
    cards = [text[i:i + 80] for i in range(0, len(text), 80)]
    for i, card in enumerate(cards):
        if card.rstrip() == "END":
            return cards[:i]
    return cards


def join_cards(cards: Iterable[str]) -> bytes:
    """Raw header bytes: the cards, END, and blank padding to a whole block."""
    body = "".join(c.ljust(80)[:80] for c in cards) + _END
    body += " " * (-len(body) % BLOCK)
    return body.encode("ascii")


def _key(card: str) -> str:
    return card[:8].rstrip()


def edit_cards(cards: list[str], updates: dict[str, Any], history: Iterable[str] = ()) -> list[str]:
    """Set keyword values and append HISTORY lines.

    The first card of each key is replaced (else a card is appended). Values may be
    ``(value, comment)`` pairs.
    """
    out = list(cards)
    for key, value in updates.items():
        comment = ""
        if isinstance(value, tuple):
            value, comment = value
        card = format_card(key, value, comment)
        for i, existing in enumerate(out):
            if _key(existing) == key.upper() and existing[8:10] == "= ":
                if not comment and "/" in existing[10:]:
                    old_comment = existing[10:].split(" / ", 1)
                    if len(old_comment) == 2:
                        card = format_card(key, value, old_comment[1].strip())
                out[i] = card
                break
        else:
            out.append(card)
    for line in history:
        out.extend(history_cards(line))
    return out


def structural_cards(shape: tuple[int, ...], bitpix: int, *, primary: bool = False,
                     extname: str | None = None) -> list[str]:
    """Mandatory cards of a new image HDU of ``shape`` (NumPy order) and ``bitpix``."""
    cards = [format_card("SIMPLE", True) if primary else format_card("XTENSION", "IMAGE"),
             format_card("BITPIX", bitpix), format_card("NAXIS", len(shape))]
    cards += [format_card(f"NAXIS{i + 1}", int(n)) for i, n in enumerate(reversed(shape))]
    cards.append(format_card("EXTEND", True) if primary else format_card("PCOUNT", 0))
    if not primary:
        cards.append(format_card("GCOUNT", 1))
    if extname is not None:
        cards.append(format_card("EXTNAME", extname, "extension name"))
    return cards
