"""Campaign inputs: associations, list files, globs and targets, expanded into products.

Expansion reads only association and list files (small JSON and text); no FITS file is
opened here, so the client of a large campaign stays light. Everything that needs a
FITS header is done by the product's job, on a worker.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["CampaignItem", "items_from_inputs", "as_input"]

log = logging.getLogger("daskbkg")


@dataclass(frozen=True)
class CampaignItem:
    """One product to make: a target, its backgrounds and its output root.

    ``root`` is the product name for association products; for a target file it is
    derived from the file name (``x_rate.fits`` -> ``x``). ``error`` is set when the
    product is unusable before any file is read (a malformed association product).
    """

    name: str
    target: Path | str | None
    backgrounds: tuple[Path | str, ...] = ()
    root: str | None = None
    sep: str = "_"
    error: str | None = None
    sourcecat: Path | str | None = None

    def output_root(self) -> tuple[str, str]:
        """``(root, separator)`` of the product's output names."""
        from ..io.naming import split_root

        if self.root:
            return self.root, self.sep
        return split_root(self.target)


def as_input(path: Any) -> Path | str:
    """Local inputs as Paths, URLs as strings (a Path would mangle ``s3://``)."""
    from ..io.source import is_url

    return os.fspath(path) if is_url(path) else Path(path)


def _expand(inputs: Sequence[Any], backgrounds: tuple) -> Iterator[CampaignItem]:
    """Items of ``inputs``; ``backgrounds`` (already converted) is shared by every target."""
    from ..io.asn import is_association, read_association

    for entry in inputs:
        entry = os.fspath(entry)
        if entry.startswith("@"):
            # A list file: one input per line; relative entries resolve against the
            # list file's own folder (like association members).
            listfile = Path(entry[1:])
            folder = listfile.parent
            lines = listfile.read_text().splitlines()
            listed = [str(folder / ln.strip()) for ln in lines
                      if ln.strip() and not ln.lstrip().startswith("#")]
            yield from _expand(listed, backgrounds)
            continue
        if any(ch in entry for ch in "*?[") and not os.path.exists(entry):
            matches = sorted(glob.glob(entry))
            if not matches:
                yield CampaignItem(entry, None, error=f"{entry}: no file matches this pattern")
            yield from _expand(matches, backgrounds)
            continue
        if is_association(entry):
            for prod in read_association(entry):
                yield CampaignItem(prod.name, prod.science, prod.backgrounds, root=prod.name,
                                   error=prod.error, sourcecat=prod.sourcecat)
            continue
        yield CampaignItem(os.path.basename(entry), as_input(entry), backgrounds)


def _identity(item: CampaignItem) -> tuple:
    def canon(p: Any) -> str:
        from ..io.source import is_url

        return os.fspath(p) if is_url(p) else os.path.abspath(os.fspath(p))

    target = None if item.target is None else canon(item.target)
    return (item.name if target is None else None, target,
            tuple(canon(b) for b in item.backgrounds), item.root)


def items_from_inputs(inputs: Sequence[Any], backgrounds: Sequence[Any] = ()) -> list[CampaignItem]:
    """Expand CLI/API inputs into campaign items, in input order.

    Each input is an association (``*.json``: one item per product, members resolved
    against the association's folder), a list file (``@list.txt``: one input per line,
    ``#`` comments, relative entries resolved against the list file's folder), a glob
    pattern, or a target FITS file (which then uses ``backgrounds``). The same product
    given twice (same target, backgrounds and root) is kept once, with a warning.
    """
    items: list[CampaignItem] = []
    seen: set = set()
    for item in _expand(list(inputs), tuple(as_input(b) for b in backgrounds)):
        key = _identity(item)
        if key in seen:
            log.warning("%s: given more than once; processed once", item.name)
            continue
        seen.add(key)
        items.append(item)
    return items
