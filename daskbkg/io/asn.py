"""Read JWST level-2 association files (JSON) into per-product work items."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import AssociationError

__all__ = ["AsnProduct", "read_association", "is_association"]

log = logging.getLogger("daskbkg")

_KNOWN_ROLES = {"science", "background", "sourcecat", "segmap", "direct_image", "imprint"}


@dataclass(frozen=True)
class AsnProduct:
    """One product of an association: a science target and its backgrounds.

    ``error`` is set (and the other fields may be partial) when the product itself is
    unusable; other products of the same association are still processed.
    """

    name: str
    science: Path | None
    backgrounds: tuple[Path, ...]
    sourcecat: Path | None = None
    error: str | None = None


def is_association(path: str | os.PathLike) -> bool:
    """True when ``path`` looks like an association file (``.json``)."""
    return str(path).lower().endswith(".json")


def _resolve(folder: Path, expname: str) -> Path | str:
    from .source import is_url

    if is_url(expname):
        return expname  # an fsspec URL member (s3://...) is used as given
    member = Path(expname)
    if member.is_absolute():
        log.warning("association member %s is an absolute path", expname)
        return member
    return folder / member


def read_association(path: str | os.PathLike) -> list[AsnProduct]:
    """Parse a level-2 association.

    Parameters
    ----------
    path : path-like
        JSON association file; member paths are resolved against its folder.

    Returns
    -------
    list of AsnProduct
        One entry per product, in file order.

    Raises
    ------
    AssociationError
        The file is not valid JSON, has no ``products`` list, or is a level-3
        association.
    """
    path = Path(path)
    if not path.exists():
        raise AssociationError(f"{path}: association file not found")
    try:
        asn = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssociationError(f"{path}: not a valid JSON association ({exc})") from None
    if not isinstance(asn, dict) or not isinstance(asn.get("products"), list):
        raise AssociationError(f"{path}: association has no 'products' list")
    asn_type = str(asn.get("asn_type", "")).lower()
    if asn_type.endswith("3"):
        raise AssociationError(
            f"{path}: level-3 association ({asn_type}) not supported; give a level-2 association"
        )
    folder = path.parent
    products = []
    for index, prod in enumerate(asn["products"]):
        name = str(prod.get("name") or f"product{index}") if isinstance(prod, dict) else f"product{index}"
        members = prod.get("members") if isinstance(prod, dict) else None
        if not isinstance(members, list):
            products.append(AsnProduct(name, None, (), error=f"{path}: product {name!r} has no members list"))
            continue
        science, backgrounds, sourcecat, problems = [], [], None, []
        for member in members:
            if not isinstance(member, dict) or "expname" not in member or "exptype" not in member:
                problems.append(f"member {member!r} lacks expname/exptype")
                continue
            role = str(member["exptype"]).lower()
            file = _resolve(folder, str(member["expname"]))
            if role == "science":
                science.append(file)
            elif role == "background":
                backgrounds.append(file)
            elif role == "sourcecat":
                sourcecat = file
            elif role in _KNOWN_ROLES:
                log.info("%s: product %s: ignoring %s member %s", path, name, role,
                         os.path.basename(os.fspath(file)))
            else:
                problems.append(f"unknown exptype {role!r} for {member['expname']}")
        if len(science) != 1:
            problems.append(f"expected exactly one science member, found {len(science)}")
        error = f"{path}: product {name!r}: " + "; ".join(problems) if problems else None
        products.append(AsnProduct(name, science[0] if len(science) == 1 else None,
                                   tuple(backgrounds), sourcecat, error))
    return products
