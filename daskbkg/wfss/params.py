"""Parameters of the WFSS background path (the reference step's ``wfss_*`` parameters).

The choice of estimator is a compatibility switch (``ReferenceCompat.wfss_method``, set to
``"weighted"`` by ``compat="jwst-3.0"``); :attr:`WfssParams.method` overrides it when not
None. See :func:`WfssParams.resolve_method`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from .errors import WfssParameterTypeError, WfssParameterValueError

__all__ = ["WfssParams", "METHODS", "DEFAULT_MMAG_CUT"]

#: Estimators: the reference's robust mean (W.2, W.6) and the later weighted fit (W.9).
METHODS = ("robust-mean", "weighted")

#: Magnitude cut used when ``mmag_extract`` is None (W.3).
DEFAULT_MMAG_CUT = 999.0


def _check_mmag(value):
    """Validate ``wfss_mmag_extract``: None, or an int or float (TypeError otherwise)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise WfssParameterTypeError(
            f"wfss_mmag_extract must be an int, a float or None, not {type(value).__name__} "
            f"({value!r})"
        )
    return float(value) if isinstance(value, (float, np.floating)) else int(value)


@dataclass(frozen=True)
class WfssParams:
    """Parameters of the WFSS scaled-reference subtraction.

    Parameters
    ----------
    method : {"robust-mean", "weighted"} or None
        Estimator. None (default) takes ``compat.wfss_method``.
    mmag_extract : int, float or None
        Faintest catalog magnitude given a source box (strict ``<``); None means 999.0.
        Anything else raises :class:`~daskbkg.wfss.errors.WfssParameterTypeError`
        (a ``TypeError``), like the reference.
    maxiter : int
        Rejection passes of the weighted estimator (default 5; 0 = plain weighted mean).
    rms_stop : float
        Percent RMS-improvement stop of the weighted estimator; 0 (default) switches it off.
    outlier_percent : float
        Percentile clipped at each end per pass of the weighted estimator (default 1).

    Raises
    ------
    WfssParameterTypeError
        ``mmag_extract`` or ``maxiter`` has the wrong type.
    WfssParameterValueError
        A value is out of range (negative ``maxiter`` or ``rms_stop``, ``outlier_percent``
        outside [0, 50], non-finite numbers, unknown method).
    """

    method: str | None = None
    mmag_extract: float | int | None = None
    maxiter: int = 5
    rms_stop: float = 0.0
    outlier_percent: float = 1.0

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise WfssParameterValueError(
                f"invalid WFSS method {self.method!r}; choose 'robust-mean' or 'weighted'"
            )
        object.__setattr__(self, "mmag_extract", _check_mmag(self.mmag_extract))
        maxiter = self.maxiter
        if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral):
            raise WfssParameterTypeError(f"wfss_maxiter must be an integer, not {maxiter!r}")
        if maxiter < 0:
            raise WfssParameterValueError(f"wfss_maxiter must be >= 0, not {maxiter}")
        object.__setattr__(self, "maxiter", int(maxiter))
        for name, low, high in (("rms_stop", 0.0, math.inf), ("outlier_percent", 0.0, 50.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise WfssParameterTypeError(f"wfss_{name} must be a number, not {value!r}")
            value = float(value)
            if not (math.isfinite(value) and low <= value <= high):
                raise WfssParameterValueError(
                    f"wfss_{name} must be a finite number in [{low:g}, {high:g}], not {value!r}"
                )
            object.__setattr__(self, name, value)

    @property
    def mmag_cut(self) -> float:
        """The magnitude cut actually applied (``mmag_extract`` or 999.0)."""
        return DEFAULT_MMAG_CUT if self.mmag_extract is None else float(self.mmag_extract)

    def resolve_method(self, compat) -> str:
        """Return the estimator to use: :attr:`method`, or ``compat.wfss_method`` when None."""
        return self.method if self.method is not None else compat.wfss_method

    def as_dict(self) -> dict:
        """Plain, JSON-friendly dictionary of the parameters."""
        return asdict(self)
