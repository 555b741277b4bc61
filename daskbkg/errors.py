"""Exception hierarchy of daskbkg.

Every error derives from :class:`DaskbkgError` and, where the reference pipeline raises a
built-in exception for the same condition, also from that built-in type, so that
``isinstance(err, ValueError)`` (for example) holds exactly as it would for the reference.
Messages are one line and name the file and the problem.
"""

from __future__ import annotations

__all__ = [
    "DaskbkgError",
    "InputError",
    "InputFileNotFoundError",
    "NotFitsError",
    "MissingExtensionError",
    "GeometryError",
    "DimensionError",
    "UnsupportedExposureError",
    "AssociationError",
    "ParameterError",
    "ParameterTypeError",
    "DataTypeError",
    "InconsistentInputError",
    "MissingKeywordError",
    "MissingTiltError",
    "OutputError",
    "DiskFullError",
    "exit_code_for",
]


class DaskbkgError(Exception):
    """Base class of every error raised deliberately by daskbkg."""


class InputError(DaskbkgError):
    """An input file or parameter is unusable; the run is refused before computing."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """An input file does not exist."""


class NotFitsError(InputError, OSError):
    """An input file exists but is not a readable FITS file (or is truncated)."""


class MissingExtensionError(InputError, KeyError):
    """A required FITS extension (SCI, ERR or DQ) is missing."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class GeometryError(InputError, ValueError):
    """Subarray windows are missing, inconsistent or cannot be combined."""


class DimensionError(InputError, IndexError):
    """Array dimensionalities cannot be combined (3-D target with a 2-D background)."""


class UnsupportedExposureError(InputError, ValueError):
    """The exposure type cannot be processed by the requested path."""


class AssociationError(InputError, ValueError):
    """An association file is malformed or one of its products is unusable."""


class ParameterError(InputError, ValueError):
    """A parameter value is out of range or of the wrong kind."""


class ParameterTypeError(ParameterError, TypeError):
    """A parameter has the wrong kind of value (``maxiters=2.5``); also a TypeError."""


class DataTypeError(InputError, TypeError):
    """An image extension holds the wrong kind of numbers (integer SCI, float DQ)."""


class InconsistentInputError(InputError, ValueError):
    """Inputs that the reference accepts but that are suspicious together.

    Raised only with ``strict=True`` (by default these are warnings): duplicated or empty
    background lists, the target listed as its own background, NINTS disagreeing with the
    cube, backgrounds from another instrument, detector or filter.
    """


class MissingKeywordError(InputError, AttributeError):
    """Window keywords and INSTRUME are both missing (the reference: AttributeError)."""


class MissingTiltError(InputError, TypeError):
    """A NIRSpec exposure lacks GWA_XTIL/GWA_YTIL (the reference: TypeError)."""


class OutputError(DaskbkgError, OSError):
    """An output cannot be written (bad directory, output equal to an input, ...)."""


class DiskFullError(OutputError):
    """The disk (or quota) filled up while writing; no partial output was kept."""


def exit_code_for(exc: BaseException) -> int:
    """CLI exit code of an error: 2 for bad input (files, parameters), 1 otherwise."""
    if isinstance(exc, OutputError):
        return 1
    if isinstance(exc, (InputError, FileNotFoundError, ValueError, IndexError, TypeError,
                        KeyError, AttributeError)):
        return 2
    return 1
