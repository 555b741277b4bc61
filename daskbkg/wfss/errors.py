"""Exceptions of the WFSS path.

Each class derives from :class:`daskbkg.errors.InputError` (so a caller can catch every
refused input at once) **and** from the built-in exception the reference pipeline raises
for the same condition (algorithm page W.8), so ``isinstance(err, ValueError)`` and friends
hold exactly as they would for jwst 1.13.2.

=============================================  ==============================  ==================
condition                                      class                           built-in
=============================================  ==============================  ==================
no catalog (``SCATFILE`` missing), empty name  ``WfssNoCatalogError``          ``ValueError``
catalog (or other WFSS input) file missing     ``WfssFileNotFoundError``       ``FileNotFoundError``
catalog unreadable                             ``WfssCatalogError``            ``ValueError``
catalog column missing                         ``WfssCatalogColumnError``      ``KeyError``
instrument not NIRCam/NIRISS                   ``WfssInstrumentError``         ``ValueError``
wavelengthrange not for WFSS                   ``WfssWavelengthRangeError``    ``ValueError``
filter/order missing from wavelengthrange      ``WfssOrderError``              ``IndexError``
``wfss_mmag_extract`` not int/float            ``WfssParameterTypeError``      ``TypeError``
other bad WFSS parameter values or conflicts   ``WfssParameterValueError``     ``ValueError``
target has no (readable) grism gwcs            ``WfssNoWcsError``              ``AttributeError``
stdatamodels/gwcs not installed                ``WfssDependencyError``         ``ImportError``
``SUBSIZE1/2`` (or ``SUBSTRT1/2``) missing     ``WfssKeywordError``            ``TypeError``
reference/target shapes differ, 3-D target     ``WfssShapeError``              ``IndexError``
empty robust mean                              ``WfssEmptyMeanError``          ``IndexError``
unusable user mask or box table                ``WfssMaskError``               ``ValueError``
=============================================  ==============================  ==================
"""

from __future__ import annotations

from ..errors import InputError

__all__ = [
    "WfssError",
    "WfssNoCatalogError",
    "WfssFileNotFoundError",
    "WfssCatalogError",
    "WfssCatalogColumnError",
    "WfssInstrumentError",
    "WfssWavelengthRangeError",
    "WfssOrderError",
    "WfssParameterTypeError",
    "WfssParameterValueError",
    "WfssNoWcsError",
    "WfssDependencyError",
    "WfssKeywordError",
    "WfssShapeError",
    "WfssEmptyMeanError",
    "WfssMaskError",
    "NO_WCS_ALTERNATIVES",
]

#: Text appended to every "no grism WCS" message: what the user can do instead.
NO_WCS_ALTERNATIVES = (
    "give the output of the assign_wcs step (it stores the grism gwcs in its ASDF "
    "extension), or skip the catalog projection with a background mask (--source-mask) "
    "or a box table (--source-boxes)"
)


class WfssError(InputError):
    """Base class of the WFSS input errors."""


class WfssNoCatalogError(WfssError, ValueError):
    """No source catalog is named (``SCATFILE`` missing) or the name is empty."""


class WfssFileNotFoundError(WfssError, FileNotFoundError):
    """A WFSS input file (catalog, wavelengthrange, mask, box table) does not exist."""


class WfssCatalogError(WfssError, ValueError):
    """The source catalog cannot be read as ECSV."""


class WfssCatalogColumnError(WfssError, KeyError):
    """A required catalog column is missing."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WfssInstrumentError(WfssError, ValueError):
    """The instrument has no WFSS filter key (not NIRCam or NIRISS)."""


class WfssWavelengthRangeError(WfssError, ValueError):
    """The wavelengthrange reference file is not a WFSS file or cannot be read."""


class WfssOrderError(WfssError, IndexError):
    """The filter or an order is missing from the wavelengthrange reference file."""


class WfssParameterTypeError(WfssError, TypeError):
    """A WFSS parameter has the wrong type (e.g. a string magnitude cut)."""


class WfssParameterValueError(WfssError, ValueError):
    """A WFSS parameter has an invalid value or inputs conflict."""


class WfssNoWcsError(WfssError, AttributeError):
    """The target has no grism gwcs (e.g. a plain rate file)."""


class WfssDependencyError(WfssError, ImportError):
    """The optional WFSS dependencies (stdatamodels, gwcs) are not installed."""


class WfssKeywordError(WfssError, TypeError):
    """A header keyword the WFSS path needs (SUBSIZE1/2, SUBSTRT1/2) is missing."""


class WfssShapeError(WfssError, IndexError):
    """Array shapes cannot be combined (3-D target, reference/target/mask mismatch)."""


class WfssEmptyMeanError(WfssError, IndexError):
    """A robust mean was asked of an array with no non-NaN value."""


class WfssMaskError(WfssError, ValueError):
    """A user mask or box table is malformed."""
