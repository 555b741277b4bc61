"""WFSS background subtraction: a scaled background reference image (the algorithm page).

Main entry point: :func:`build_wfss_product`, which returns a
:class:`daskbkg.subtract.Product` (eager statistics, lazy subtraction) that
:class:`daskbkg.result.BackgroundResult` computes or writes.

Modules
-------
params
    :class:`WfssParams` (the ``wfss_*`` step parameters).
catalog, wavelengthrange
    Source catalog and WAVELENGTHRANGE reference file.
boxes, grismwcs, boxtable
    Source boxes through the grism gwcs; box-table files.
mask
    Rasterised and user-supplied background masks.
sources
    Mask precedence (user mask > box table > catalog).
estimators
    Robust mean, weighted fit, pixel test, per-block subtraction kernels.
reference
    Lazy background reference image with DQ_DEF translation.
product
    :func:`build_wfss_product`.
errors
    Exception classes.
"""

from .boxes import Box, compute_boxes
from .boxtable import read_box_table, write_box_table
from .errors import WfssError
from .estimators import robust_mean, robust_scale, weighted_scale
from .mask import rasterize_boxes, read_mask_file
from .params import WfssParams
from .product import build_wfss_product, is_wfss_target, save_wfss_boxes
from .sources import BackgroundMask, background_mask

__all__ = [
    "BackgroundMask", "Box", "WfssError", "WfssParams", "background_mask",
    "build_wfss_product", "compute_boxes", "is_wfss_target", "rasterize_boxes",
    "read_box_table", "read_mask_file", "robust_mean", "robust_scale", "save_wfss_boxes",
    "weighted_scale", "write_box_table",
]
