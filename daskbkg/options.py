"""Immutable parameter objects: clipping parameters and reference-compatibility switches.

Every public entry point takes these objects instead of long keyword lists. The CLI maps
its flags onto them once (:func:`daskbkg.options.make_compat`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ParameterError, ParameterTypeError

__all__ = ["ClipParams", "ReferenceCompat", "make_compat", "normalize_maxiters", "UNLIMITED",
           "COMPAT_CHOICES"]

#: Sentinel pass limit meaning "iterate until converged".
UNLIMITED = -1


def normalize_maxiters(maxiters: int | None) -> int:
    """Turn a user ``maxiters`` into the kernel's pass limit.

    Parameters
    ----------
    maxiters : int or None
        ``None``, ``0`` and ``-1`` mean "until converged"; a positive value bounds the
        number of bound computations; any other negative value means exactly one pass
        (an artefact of the reference's clipping library, reproduced on purpose).

    Returns
    -------
    int
        ``UNLIMITED`` (-1) or a positive pass limit.

    Raises
    ------
    ParameterTypeError (a TypeError and ValueError)
        ``maxiters`` is not an integer (``2.5``, ``"3"``, ``True``, NaN, inf).
    """
    if maxiters is None:
        return UNLIMITED
    if (isinstance(maxiters, bool) or not isinstance(maxiters, numbers.Real)
            or not float(maxiters).is_integer()):
        raise ParameterTypeError(f"maxiters must be an integer or None, not {maxiters!r}")
    maxiters = int(maxiters)
    if maxiters in (0, -1):
        return UNLIMITED
    return maxiters if maxiters > 0 else 1


@dataclass(frozen=True)
class ClipParams:
    """Parameters of the iterative sigma clip.

    Parameters
    ----------
    sigma : float
        Clip threshold in standard deviations, used on both sides (default 3.0). Must be
        positive and finite (:class:`~daskbkg.errors.ParameterError` otherwise); the
        kernels themselves also accept 0.
    maxiters : int or None
        Maximum number of clipping passes; ``None`` (default) iterates until converged.
        See :func:`normalize_maxiters` for the exact rules.
    """

    sigma: float = 3.0
    maxiters: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, numbers.Real):
            raise ParameterTypeError(f"sigma must be a number, not {self.sigma!r}")
        sigma = float(self.sigma)
        if not math.isfinite(sigma) or sigma <= 0:
            raise ParameterError(f"sigma must be a positive finite number, not {self.sigma!r}")
        object.__setattr__(self, "sigma", sigma)
        normalize_maxiters(self.maxiters)  # validates the type

    @property
    def pass_limit(self) -> int:
        """Pass limit for the kernels (``UNLIMITED`` or a positive integer)."""
        return normalize_maxiters(self.maxiters)


# Options that ``compat="jwst-3.0"`` switches to their jwst 3.0.0 values.
_JWST30_VALUES: dict[str, Any] = {
    "rateints_geometry": "jwst-3.0",
    "clip_all_rejected": "reject",
    "empty_bkg_list": "skip",
    "wfss_method": "weighted",
    "wfss_pixel_test": "jwst-3.0",
    "wfss_nan_mag": "include",
    "wfss_subarray": "cut",
    "record_scale_factor": True,
    "save_wfss_mask": True,
}

#: Allowed values of every compatibility option (the first is the jwst 1.13.2 default).
COMPAT_CHOICES: dict[str, tuple[Any, ...]] = {
    "compat": ("jwst-1.13", "jwst-3.0"),
    "subarray_placement": ("reference", "aligned"),
    "rateints_geometry": ("jwst-1.13", "jwst-3.0"),
    "rateints_empty_lane": ("zero", "nan"),
    "clip_all_rejected": ("keep", "reject"),
    "clip_scale": ("std", "mad_std"),
    "no_valid_background": ("zero", "nan"),
    "empty_bkg_list": ("nan", "skip"),
    "propagate_err": (False, True),
    "wfss_method": ("robust-mean", "weighted"),
    "wfss_pixel_test": ("jwst-1.13", "jwst-1.12", "fixed", "jwst-3.0"),
    "wfss_nan_mag": ("exclude", "include"),
    "wfss_subarray": ("error", "cut"),
    "wfss_sci_nan": ("keep", "exclude"),
    "record_scale_factor": (False, True),
    "save_wfss_mask": (False, True),
}


@dataclass(frozen=True)
class ReferenceCompat:
    """Switches between the reference's (jwst 1.13.2) behaviour and corrections.

    All defaults reproduce jwst 1.13.2 bit for bit, quirks included. Build one with
    :func:`make_compat` to apply the ``compat="jwst-3.0"`` preset.

    Parameters
    ----------
    compat : {"jwst-1.13", "jwst-3.0"}
        Name of the preset the object was built from (informational).
    subarray_placement : {"reference", "aligned"}
        ``"reference"`` copies every background cutout to the target's origin (the
        reference's placement bug); ``"aligned"`` puts it where it belongs.
    rateints_geometry : {"jwst-1.13", "jwst-3.0"}
        3-D cutout placement: the reference's column broadcast and NINTS rules, or the
        jwst 3.0 per-background cubes.
    rateints_empty_lane : {"zero", "nan"}
        Value of a per-exposure integration mean with no valid integration.
    clip_all_rejected : {"keep", "reject"}
        Outcome of a clip whose pass rejects every remaining value (astropy 6 keeps all,
        astropy 8 rejects all).
    clip_scale : {"std", "mad_std"}
        Scale of every clip: the reference's standard deviation about the mean (which
        cannot reject a single outlier among fewer than 8 values at sigma 3), or
        astropy's ``mad_std`` (1.4826 × median absolute deviation), which can.
    no_valid_background : {"zero", "nan"}
        Combined background where no background value survives.
    empty_bkg_list : {"nan", "skip"}
        Empty background list: all-NaN output marked COMPLETE, or a SKIPPED copy.
    propagate_err : bool
        Write ``sqrt(ERR**2 + ERR_bk**2)`` as output ERR (non-parity extension).
    wfss_method, wfss_pixel_test, wfss_nan_mag, wfss_subarray, wfss_sci_nan,
    record_scale_factor, save_wfss_mask
        WFSS switches, see the WFSS documentation.
    """

    compat: Literal["jwst-1.13", "jwst-3.0"] = "jwst-1.13"
    subarray_placement: Literal["reference", "aligned"] = "reference"
    rateints_geometry: Literal["jwst-1.13", "jwst-3.0"] = "jwst-1.13"
    rateints_empty_lane: Literal["zero", "nan"] = "zero"
    clip_all_rejected: Literal["keep", "reject"] = "keep"
    clip_scale: Literal["std", "mad_std"] = "std"
    no_valid_background: Literal["zero", "nan"] = "zero"
    empty_bkg_list: Literal["nan", "skip"] = "nan"
    propagate_err: bool = False
    wfss_method: Literal["robust-mean", "weighted"] = "robust-mean"
    wfss_pixel_test: Literal["jwst-1.13", "jwst-1.12", "fixed", "jwst-3.0"] = "jwst-1.13"
    wfss_nan_mag: Literal["exclude", "include"] = "exclude"
    wfss_subarray: Literal["error", "cut"] = "error"
    wfss_sci_nan: Literal["keep", "exclude"] = "keep"
    record_scale_factor: bool = False
    save_wfss_mask: bool = False

    def __post_init__(self) -> None:
        for name, choices in COMPAT_CHOICES.items():
            value = getattr(self, name)
            if value not in choices or (isinstance(choices[0], bool) != isinstance(value, bool)):
                raise ValueError(
                    f"invalid value {value!r} for option {name!r}; choose one of "
                    + ", ".join(repr(c) for c in choices)
                )

    def non_defaults(self) -> dict[str, Any]:
        """Options whose value differs from the jwst 1.13.2 default, by name."""
        base = ReferenceCompat()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(base, f.name)
        }


def make_compat(compat: str = "jwst-1.13", **overrides: Any) -> ReferenceCompat:
    """Build a :class:`ReferenceCompat` from a preset plus explicit overrides.

    Parameters
    ----------
    compat : {"jwst-1.13", "jwst-3.0"}
        Preset. ``"jwst-3.0"`` sets every option that jwst 3.0.0 changed.
    **overrides
        Individual options; ``None`` values are ignored so CLI defaults can pass through.

    Returns
    -------
    ReferenceCompat
    """
    if compat not in COMPAT_CHOICES["compat"]:
        raise ValueError(f"invalid value {compat!r} for option 'compat'; choose 'jwst-1.13' or 'jwst-3.0'")
    values: dict[str, Any] = {"compat": compat}
    if compat == "jwst-3.0":
        values.update(_JWST30_VALUES)
    unknown = set(overrides) - set(COMPAT_CHOICES)
    if unknown:
        raise TypeError(f"unknown compatibility option(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ReferenceCompat(**values)
