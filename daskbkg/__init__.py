"""daskbkg: the JWST background step as a chunked, out-of-core, parallel dask computation.

Public API
----------
subtract_background
    Lazy background subtraction of one target (paths, URLs, HDULists or datamodels): a
    dask collection with ``.compute()``, ``.persist()``, ``.to_fits()``, ``.to_zarr()``
    and ``.to_xarray()``.
combine_backgrounds
    Lazy sigma-clipped combination of background exposures.
subtract_wfss_background
    WFSS: scaled background reference image over source-free pixels.
Campaign, RunSettings
    Many products in one run: every product in flight, shared backgrounds, resume,
    per-product outcomes; the validated settings of a run.
read_exposure
    Open a FITS exposure lazily.
ClipParams, ReferenceCompat, make_compat
    Parameter and compatibility objects.
"""

from ._version import __version__
from .api import combine_backgrounds, subtract_background, subtract_wfss_background
from .campaign import Campaign, CampaignInterrupted, CampaignReport, Outcome
from .combine import CombinedBackground
from .io.exposure import Exposure, read_exposure
from .options import ClipParams, ReferenceCompat, make_compat
from .result import BackgroundResult, ComputedResult
from .settings import RunSettings, WfssSettings

__all__ = [
    "__version__",
    "BackgroundResult",
    "ClipParams",
    "CombinedBackground",
    "ComputedResult",
    "Exposure",
    "ReferenceCompat",
    "combine_backgrounds",
    "make_compat",
    "read_exposure",
    "subtract_background",
    "subtract_wfss_background",
    "Campaign",
    "CampaignInterrupted",
    "CampaignReport",
    "Outcome",
    "RunSettings",
    "WfssSettings",
]
