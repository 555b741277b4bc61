"""Check every input before a graph is built, and explain each problem in one line.

A check produces :class:`Finding` objects instead of raising at once, so that a caller
can list every problem, and :func:`enforce` decides what happens:

* ``"error"``: the input cannot work, is surely a mistake, or the reference pipeline
  (jwst 1.13.2) raises for it. :func:`enforce` raises the first one, an instance of the
  matching :mod:`daskbkg.errors` class (and of the reference's built-in type).
* ``"warning"``: the reference accepts the input and defines its result (a background
  that does not overlap, SUBSIZE disagreeing with the array, duplicated backgrounds, ...).
  The result stays the reference's; :func:`enforce` logs one line per finding on the
  ``"daskbkg"`` logger. With ``strict=True`` warnings are raised like errors.

Every message is one line: ``<file>: <reason>``.
"""

from __future__ import annotations

import logging
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import (
    AssociationError,
    DaskbkgError,
    GeometryError,
    InconsistentInputError,
    InputError,
    InputFileNotFoundError,
    MissingExtensionError,
    MissingKeywordError,
    MissingTiltError,
    OutputError,
    ParameterError,
    UnsupportedExposureError,
)
from .geometry import place_background, window_for
from .io.exposure import Exposure, as_exposure
from .io.source import stat_input
from .options import ClipParams, ReferenceCompat
from .plan import parse_chunks, parse_memory
from .result import check_output_path
from .subtract import _EXP_PREFIXES, check_exposure_type, gwa_tilts_match

__all__ = ["Finding", "validate_params", "validate_exposures", "validate_outputs",
           "validate_association", "prepare_inputs", "enforce"]

log = logging.getLogger("daskbkg")

#: PRIMARY keywords that should agree between a target and its backgrounds (never
#: compared by the reference, hence only warnings).
_SAME_SETUP = ("INSTRUME", "DETECTOR", "FILTER", "PUPIL", "EXP_TYPE")
_FORMATS = ("fits", "zarr")


@dataclass(frozen=True)
class Finding:
    """One problem found in the inputs.

    ``severity`` is "error" or "warning"; ``path`` the file (None for a parameter);
    ``message`` the one-line reason; ``error`` what :func:`enforce` raises for it (a
    class, or an exception instance raised as is); ``quiet``: the builder logs this
    warning itself.
    """

    severity: str
    path: str | None
    message: str
    error: Any = InputError
    quiet: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def exception(self) -> BaseException:
        """Return the exception to raise (a warning says it was refused as strict)."""
        if isinstance(self.error, BaseException):
            return self.error
        return self.error(str(self) + (" (refused: strict)" if self.severity == "warning" else ""))


def _error(path, message, error=InputError) -> Finding:
    return Finding("error", None if path is None else str(path), message, error)


def _warning(path, message, error, quiet=False) -> Finding:
    return Finding("warning", None if path is None else str(path), message, error, quiet)


def _reference_error(exc: BaseException) -> BaseException:
    """Turn the reference's bare AttributeError/TypeError into daskbkg classes."""
    if isinstance(exc, DaskbkgError):
        return exc
    if isinstance(exc, AttributeError):
        return MissingKeywordError(str(exc))
    return MissingTiltError(str(exc)) if isinstance(exc, TypeError) else exc


def _caught(exc: BaseException, path) -> Finding:
    """Make an error finding of an exception raised by an existing check (kept as is)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    prefix = f"{path}: "
    if path is not None and text.startswith(prefix):
        text = text[len(prefix):]
    return Finding("error", None if path is None else str(path), text, exc)


def enforce(findings: Sequence[Finding], strict: bool = False) -> list[Finding]:
    """Raise the first error (every finding when ``strict``), else log each warning once.

    The raised exception carries all findings in ``.findings``; otherwise they are returned.
    """
    findings = list(findings)
    fatal = [f for f in findings if strict or f.severity == "error"]
    if fatal:
        exc = fatal[0].exception()
        exc.findings = findings
        raise exc
    for finding in findings:
        if not finding.quiet:
            log.warning("%s", finding)
    return findings


# ----------------------------------------------------------------------------- parameters

def _integral(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate_params(sigma: Any = 3.0, maxiters: Any = None, *, chunks: Any = None,
                    memory_limit: Any = None, fmt: str | None = None) -> list[Finding]:
    """Check the clip parameters, the tile shape, the memory budget and the output format.

    Errors: sigma not a positive finite number, maxiters not an integer or None, a chunk
    shape or memory limit that cannot be parsed, an unknown format. Warning: maxiters
    below -1 (the reference then makes exactly one pass).
    """
    found: list[Finding] = []
    try:
        ClipParams(sigma=sigma, maxiters=maxiters)
    except ParameterError as exc:
        found.append(_caught(exc, None))
    else:
        if maxiters is not None and int(maxiters) < -1:
            found.append(_warning(None, f"maxiters={maxiters} is below -1: as in the reference "
                                        "(astropy), exactly one clip pass is made; say "
                                        "maxiters=1 if that is meant", ParameterError))
    bad_chunks = isinstance(chunks, (bool, float)) or (
        isinstance(chunks, (tuple, list)) and not all(_integral(c) for c in chunks))
    for value, parse, what, bad in ((chunks, parse_chunks, "chunk shape", bad_chunks),
                                    (memory_limit, parse_memory, "memory limit",
                                     isinstance(memory_limit, bool))):
        try:
            if bad:
                raise ValueError(value)
            parse(value)
        except ParameterError as exc:
            found.append(_caught(exc, None))
        except Exception:  # noqa: BLE001 - int("a") in a tuple, NaN, inf, odd objects
            found.append(_error(None, f"invalid {what} {value!r}; use e.g. "
                                      + ("ROWS or ROWS,COLS" if what == "chunk shape"
                                         else "512MB or 2GiB"), ParameterError))
    if fmt is not None and fmt not in _FORMATS:
        found.append(_error(None, f"unknown output format {fmt!r}; use fits or zarr",
                            ParameterError))
    return found


# ------------------------------------------------------------------------------ exposures

def _open(item: Any) -> tuple[Exposure | None, Finding | None]:
    """Open an exposure; an opening failure becomes an error finding with its exception."""
    try:
        return as_exposure(item), None
    except Exception as exc:  # noqa: BLE001 - every opening failure is reported as is
        path = str(Path(item).resolve()) if isinstance(item, (str, os.PathLike)) else None
        return None, _caught(exc, path)


def _missing_findings(exp: Exposure, compat: ReferenceCompat) -> list[Finding]:
    """Absent ERR/DQ: zeros as in jwst 1.13's data models, refused for the jwst 3.0 preset."""
    found = []
    for name in exp.missing:
        if compat.compat == "jwst-1.13":
            found.append(_warning(exp.path, f"no {name} extension: as in jwst 1.13 (its data "
                                            f"models fill the default) {name} is taken as 0",
                                  MissingExtensionError))
        else:
            found.append(_error(exp.path, f"missing {name} image extension (the data models of "
                                          f"jwst 3.0 leave it empty; compat='jwst-1.13' takes "
                                          "it as 0 like jwst 1.13)", MissingExtensionError))
    return found


def _file_findings(exp: Exposure, compat: ReferenceCompat) -> list[Finding]:
    """Problems of one exposure on its own (read_exposure already refused bad storage)."""
    found, path = _missing_findings(exp, compat), exp.path
    meta = exp.meta
    keys = {"SUBSTRT1": meta.substrt1, "SUBSTRT2": meta.substrt2,
            "SUBSIZE1": meta.subsize1, "SUBSIZE2": meta.subsize2}
    bad = [f"{k}={v}" for k, v in keys.items() if v is not None and v < 1]
    if bad:
        found.append(_error(path, f"invalid window keyword {', '.join(bad)} (1-based values "
                                  "must be at least 1)", GeometryError))
    elif meta.subsize1 is not None and meta.subsize2 is not None and meta.substrt1 is not None \
            and meta.substrt2 is not None:
        ny, nx = exp.shape[-2:]
        if (meta.subsize2, meta.subsize1) != (ny, nx):
            found.append(_warning(path, f"SUBSIZE1/2 = {meta.subsize1}x{meta.subsize2} but the SCI "
                                        f"array is {nx}x{ny} (columns x rows); as in the reference "
                                        "the window is clamped to the array", GeometryError))
    if exp.ndim == 3 and meta.nints is not None and meta.nints != exp.shape[0]:
        found.append(_warning(path, f"NINTS={meta.nints} but the SCI cube has {exp.shape[0]} "
                                    "integrations; as in the reference the array is used",
                              InconsistentInputError))
    exp_type = meta.exp_type
    if exp_type is not None and not exp_type.upper().startswith(_EXP_PREFIXES):
        found.append(_error(path, f"unknown EXP_TYPE {exp_type!r} (expected a JWST exposure "
                                  "type such as NRC_IMAGE or MIR_IMAGE)", UnsupportedExposureError))
    return found


def _file_key(exp: Exposure) -> Any:
    """Identity of the file on disk (hard links and symlinks included)."""
    try:
        st = os.stat(exp.path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return exp.path


def _setup_mismatch(target: Exposure, bkg: Exposure) -> Finding | None:
    t, b = target.layout.primary_keywords, bkg.layout.primary_keywords
    diff = [k for k in _SAME_SETUP if t.get(k) is not None and b.get(k) is not None
            and str(t.get(k)).strip().upper() != str(b.get(k)).strip().upper()]
    if not diff:
        return None
    mine = ", ".join(f"{k}={b.get(k)}" for k in diff)
    theirs = ", ".join(str(t.get(k)) for k in diff)
    return _warning(bkg.path, f"{mine} differs from the target's ({theirs}); the reference does "
                              "not compare them and subtracts it anyway", InconsistentInputError)


def _geometry_findings(target: Exposure, tw, bkg: Exposure,
                       compat: ReferenceCompat) -> list[Finding]:
    """Window, broadcast and overlap of one background (exceptions as in the reference)."""
    try:
        bw = window_for(bkg.meta, bkg.shape, bkg.path)
        placement = place_background(tw, target.shape, bw, bkg.shape, compat, bkg.path)
    except Exception as exc:  # noqa: BLE001 - GeometryError, DimensionError, AttributeError
        return [_caught(_reference_error(exc), bkg.path)]
    if placement is None:
        return [_warning(bkg.path, f"does not overlap the target window (columns "
                                   f"{tw.imin + 1}-{tw.imax}, rows {tw.jmin + 1}-{tw.jmax}); as "
                                   "in the reference it contributes only NaN (nothing)",
                         GeometryError)]
    found = []
    if compat.subarray_placement == "reference" and (bw.imin > tw.imin or bw.jmin > tw.jmin):
        found.append(_warning(bkg.path, "window starts inside the target window; as in the "
                                        "reference its overlap is copied to the target's origin "
                                        "(misplaced); use subarray_placement='aligned' to place "
                                        "it correctly", GeometryError))
    if len(placement.broadcast) == 3 and placement.broadcast[-1]:
        found.append(_warning(bkg.path, "overlap is one column wide; as in the reference "
                                        "(rateints) that column is replicated across every "
                                        "column", GeometryError))
    return found


def _tilt_walk(target: Exposure, opened: list) -> tuple[int | None, list]:
    """Walk the NIRSpec tilts: index of the first mismatch, or the TypeError finding."""
    for index, exp in enumerate(opened):
        if exp is None:  # the opening error is reported (and raised) first
            return None, []
        try:
            if gwa_tilts_match(target, [exp]) is not None:
                return index, []
        except TypeError as exc:
            return None, [((index, 1), _caught(_reference_error(exc), None))]
    return None, []


def _after_skip(key_finding: tuple, stop: int) -> tuple:
    """Problems of a file the reference never opens (after the tilt mismatch) only warn."""
    (index, phase), finding = key_finding
    if index <= stop or finding.severity != "error":
        return key_finding
    return (index, phase), Finding("warning", finding.path, "not used, the grating-tilt check "
                                   f"skips the step before it, but: {finding.message}",
                                   finding.error)


def _list_findings(t_exp, opened: list, reference, combine: bool, empty: bool) -> list:
    """Empty list, target listed as a background, duplicates, instrument set-up mismatch."""
    keyed = []
    if t_exp is not None and empty:
        keyed.append(((-1, 0), _warning(t_exp.path, "empty background list: as in the reference "
                                                    "the background is NaN everywhere, so is "
                                                    "every subtracted SCI pixel",
                                        InconsistentInputError, quiet=not combine)))
    keys = [None if exp is None else _file_key(exp) for exp in opened]
    target_key = None if t_exp is None or combine else _file_key(t_exp)
    for index, exp in enumerate(opened):
        if exp is None:
            continue
        if keys[index] == target_key:
            keyed.append(((index, 0), _warning(exp.path, "the target is also listed as a "
                                                         "background; the reference subtracts "
                                                         "it from itself", InconsistentInputError)))
        count = keys.count(keys[index])
        if count > 1 and keys.index(keys[index]) == index:
            keyed.append(((index, 0), _warning(exp.path, f"listed {count} times as a background; "
                                                         "as in the reference each copy counts "
                                                         "as a separate background",
                                               InconsistentInputError)))
        mismatch = _setup_mismatch(reference, exp) if reference is not exp else None
        if mismatch is not None:
            keyed.append(((index, 0), mismatch))
    return keyed


def _inspect(target: Any, backgrounds: Sequence[Any], compat: ReferenceCompat | None,
             combine: bool) -> tuple[list[Finding], Exposure | None, list[Exposure | None]]:
    """Every finding in the reference's order: target, then background by background."""
    compat = compat or ReferenceCompat()
    keyed: list[tuple[tuple[int, int], Finding]] = []  # ((background index, phase), finding)
    t_exp = None
    if target is not None:
        t_exp, failure = _open(target)
        if failure is not None:
            return [failure], None, []
        keyed += [((-1, 0), f) for f in _file_findings(t_exp, compat)]
        if not combine:
            try:
                check_exposure_type(t_exp)
            except UnsupportedExposureError as exc:
                keyed.append(((-1, 0), _caught(exc, t_exp.path)))
    opened: list[Exposure | None] = []
    for index, item in enumerate(backgrounds):
        exp, failure = _open(item)
        opened.append(exp)
        keyed += [((index, 0), f) for f in ([failure] if failure else _file_findings(exp, compat))]
    reference = t_exp if t_exp is not None else next((b for b in opened if b), None)
    keyed += _list_findings(t_exp, opened, reference, combine, not backgrounds)
    nirspec = (not combine and t_exp is not None
               and (t_exp.meta.instrument or "").upper() == "NIRSPEC")
    stop = None
    if nirspec:
        stop, tilt_errors = _tilt_walk(t_exp, opened)
        keyed += tilt_errors
    if stop is not None:  # step skipped: no geometry; files after the mismatch only warn
        keyed = [_after_skip(kf, stop) for kf in keyed]
    elif reference is not None and not (not backgrounds and compat.empty_bkg_list == "skip"):
        # An empty list under empty_bkg_list="skip" skips the step before any geometry.
        keyed += _geometry(reference, opened, compat)
    # The reference opens and checks the backgrounds one by one, in list order; a NIRSpec
    # target first opens (and tilt-checks) every background, then combines.
    keyed.sort(key=lambda kf: (kf[0][1] == 2, kf[0][0], kf[0][1]) if nirspec else kf[0])
    return [f for _, f in keyed], t_exp, opened


def _geometry(reference: Exposure, opened: list, compat: ReferenceCompat) -> list:
    try:
        tw = window_for(reference.meta, reference.shape, reference.path)
    except Exception as exc:  # noqa: BLE001 - GeometryError (ValueError) or AttributeError
        return [((-1, 2), _caught(_reference_error(exc), reference.path))]
    return [((index, 2), f) for index, exp in enumerate(opened) if exp is not None
            for f in _geometry_findings(reference, tw, exp, compat)]


def validate_exposures(target: Any, backgrounds: Sequence[Any],
                       compat: ReferenceCompat | None = None, *,
                       combine: bool = False) -> list[Finding]:
    """Check a target and its backgrounds (paths or opened exposures), in reference order.

    ``target`` may be None with ``combine=True`` (the first background is then the
    geometry reference, as in :func:`daskbkg.combine_backgrounds`, and the target-only
    checks, WFSS EXP_TYPE and NIRSpec tilts, are not made). ``compat`` decides the
    geometry checks (``subarray_placement``, ``rateints_geometry``).
    """
    return _inspect(target, list(backgrounds), compat, combine)[0]


def prepare_inputs(target: Any, backgrounds: Sequence[Any],
                   compat: ReferenceCompat | None = None, *, strict: bool = False,
                   combine: bool = False) -> tuple[Exposure | None, list[Exposure]]:
    """Open, check and :func:`enforce`; return the opened target and backgrounds."""
    findings, t_exp, opened = _inspect(target, list(backgrounds), compat, combine)
    enforce(findings, strict)
    return t_exp, [b for b in opened if b is not None]


# -------------------------------------------------------------------------------- outputs

def validate_outputs(paths: Sequence[Any], inputs: Sequence[Any]) -> list[Finding]:
    """Check output paths: folder creatable and writable, no input overwritten, no clash.

    ``None`` entries are ignored. Folders are not created here.
    """
    found, seen = [], set()
    for item in paths:
        if item is None:
            continue
        path = Path(item)
        resolved = path.resolve()
        if resolved in seen:
            found.append(_error(path, "two outputs of this run would be written to this file",
                                OutputError))
            continue
        seen.add(resolved)
        folder = existing = resolved.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            found.append(_error(path, f"cannot create output directory {folder} ({existing} "
                                      "is not a directory)", OutputError))
        elif existing != folder:
            if not os.access(existing, os.W_OK | os.X_OK):
                found.append(_error(path, f"cannot create output directory {folder} ({existing} "
                                          "is not writable)", OutputError))
        elif resolved.is_dir() and resolved.suffix != ".zarr":
            found.append(_error(path, "output path is a directory", OutputError))
        else:
            try:
                check_output_path(path, [str(p) for p in inputs])
            except OutputError as exc:
                found.append(_caught(exc, path))
    return found


# --------------------------------------------------------------------------- associations

def validate_association(path: Any) -> list[Finding]:
    """Check a level-2 association: JSON, products, roles, one science member, files exist."""
    from .io.asn import read_association

    try:
        products = read_association(path)
    except AssociationError as exc:
        return [_caught(exc, path)]
    if not products:
        return [_error(path, "association has no products", AssociationError)]
    found = []
    for prod in products:
        if prod.error:
            found.append(_caught(AssociationError(prod.error), path))
        for member in ([prod.science] if prod.science else []) + list(prod.backgrounds):
            if not stat_input(member).exists:
                found.append(_error(member, f"file not found (member of product {prod.name!r} "
                                            f"of {Path(path).name})", InputFileNotFoundError))
    return found
