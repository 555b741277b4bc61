"""Input and output: lazy FITS readers, associations and product writers."""

from .exposure import Exposure, ExposureMeta, as_exposure, read_exposure
from .fitsarray import FitsArray
from .layout import FitsLayout, HduInfo, scan_fits

__all__ = [
    "Exposure",
    "ExposureMeta",
    "FitsArray",
    "FitsLayout",
    "HduInfo",
    "as_exposure",
    "read_exposure",
    "scan_fits",
]
