"""Output file names: product roots and suffixes as the JWST pipeline forms them."""

from __future__ import annotations

import os

__all__ = ["KNOWN_SUFFIXES", "split_root", "output_name"]

_SUFFIX_TEXT = """
align_refs alignrefsstep ami ami3pipeline ami_analyze ami_average ami_normalize amianalyzestep
amiaveragestep amiavg aminorm aminormalizestep assign_mtwcs assign_wcs assignmtwcsstep
assignwcsstep background backgroundstep barshadowstep blot bsub bsubints c1d cal calints cat
chargemigrationstep combine1dstep combine_1d coron3pipeline crf crfints cube_build
cubebuildstep cubeskymatchstep dark dark_current darkcurrentstep darkpipeline
detector1pipeline dq_init dqinitstep emicorr emicorrstep engdblog extract1dstep extract2dstep
extract_1d extract_2d firstframe firstframestep flat_field flatfieldstep fringe fringestep
gain_scale gainscalestep group_scale groupscalestep guider_cds guidercdsstep guiderpipeline
hlsp hlspstep i2d image2pipeline image3pipeline imprint imprintstep ipc ipcstep jump jumpstep
klip klipstep lastframe lastframestep linearity linearitystep master_background
masterbackgroundmosstep masterbackgroundstep median mrs_imatch mrsimatchstep msaflagopenstep
nsclean nscleanstep outlier_detection outlier_detection_scaled outlier_detection_stack
outlierdetectionscaledstep outlierdetectionstackstep outlierdetectionstep pathloss
pathlossstep persistence persistencestep phot photom photomstep pixelreplacestep psf-amiavg
psfalign psfstack psfsub ramp ramp_fit rampfitstep rate rateints refpix refpixstep resample
resample_spec resamplespecstep resamplestep reset resetstep residual_fringe residualfringestep
rscd rscdstep s2d s3d saturation saturationstep skymatch skymatchstep snr source_catalog
sourcecatalogstep sourcetypestep spec2nrslamp spec2pipeline spec3pipeline spectral_leak
spectralleakstep srctype stackrefs stackrefsstep straylight straylightstep superbias
superbiasstep tso3pipeline tsophotometrystep tweakreg tweakregstep uncal wavecorrstep wfscmb
wfscombine wfscombinestep wfsscontamstep white_light whitelightstep whtlt x1d x1dints
"""
#: The reference pipeline's list of step/product suffixes.
KNOWN_SUFFIXES = frozenset(_SUFFIX_TEXT.split())


def split_root(path: str | os.PathLike) -> tuple[str, str]:
    """Return ``(root, separator)`` of a target file name.

    The basename loses ``.fits``; if it then ends in ``_<sfx>`` or ``-<sfx>`` with a known
    suffix, that one suffix is removed and its separator kept. Otherwise the whole stem is
    the root and the separator is ``_``.

    Examples
    --------
    >>> split_root("x_rate.fits")
    ('x', '_')
    >>> split_root("a_rate_cal.fits")
    ('a_rate', '_')
    >>> split_root("test.fits")
    ('test', '_')
    """
    name = os.path.basename(os.fspath(path))
    stem = name[:-5] if name.lower().endswith(".fits") else name
    # Separators from the left: the first match is the longest known suffix.
    for cut in (i for i, ch in enumerate(stem) if ch in "_-"):
        suffix = stem[cut + 1 :]
        if suffix in KNOWN_SUFFIXES and cut > 0:
            return stem[:cut], stem[cut]
    return stem, "_"


def output_name(root: str, sep: str, suffix: str, ext: str = ".fits") -> str:
    """File name ``<root><sep><suffix><ext>``."""
    return f"{root}{sep}{suffix}{ext}"
