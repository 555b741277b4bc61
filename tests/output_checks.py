"""Checks that a FITS file written by daskbkg is valid FITS and a valid JWST data model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

#: Types of the three arrays as the reference writes them.
OUTPUT_DTYPES = {"SCI": np.float32, "ERR": np.float32, "DQ": np.uint32}
#: Cards that a plain IMAGE HDU must not carry (tables, tile compression).
FOREIGN = ("TFIELDS", "TTYPE1", "TFORM1", "ZIMAGE", "ZCMPTYPE", "ZBITPIX", "ZNAXIS", "ZTILE1")


def check_fits(path: Path) -> None:
    """Checksums correct or absent, ``verify("exception")`` passes, plain image HDUs clean.

    Also: SCI/ERR/DQ are stored with the reference's types, and every header is ASCII.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a failed checksum is only a warning in astropy
        with fits.open(path, checksum=True) as hdul:
            hdul.verify("exception")
            for hdu in hdul:
                assert not isinstance(hdu, fits.CompImageHDU), (path, hdu.name)
                if isinstance(hdu, fits.ImageHDU):
                    assert not [k for k in FOREIGN if k in hdu.header], (path, hdu.name)
                if hdu.name in OUTPUT_DTYPES and hdu.data is not None:
                    native = hdu.data.dtype.newbyteorder("=")
                    assert native == OUTPUT_DTYPES[hdu.name], (path, hdu.name, native)
    complaints = [str(w.message) for w in caught
                  if "checksum" in str(w.message).lower() or "datasum" in str(w.message).lower()
                  or issubclass(w.category, fits.verify.VerifyWarning)]
    assert not complaints, (path, complaints)
    raw = Path(path).read_bytes()
    with fits.open(path) as hdul:
        for index in range(len(hdul)):
            info = hdul.fileinfo(index)
            raw[info["hdrLoc"]:info["datLoc"]].decode("ascii")  # headers are pure ASCII


def check_model(path: Path) -> None:
    """Check that stdatamodels opens the file as the right model with the right step status."""
    from stdatamodels.jwst import datamodels

    with fits.open(path) as hdul:
        status = hdul[0].header.get("S_BKDSUB")
        ndim = hdul["SCI"].data.ndim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with datamodels.open(str(path)) as model:
            if status is not None:
                assert model.meta.cal_step.bkg_subtract == status, path
                expected = "CubeModel" if ndim == 3 else ("ImageModel", "IFUImageModel")
                assert type(model).__name__ in np.atleast_1d(expected), (path, type(model))
            assert model.data.shape[-2:] == model.dq.shape[-2:]


def check_output(path: Path) -> None:
    """Both checks."""
    check_fits(path)
    check_model(path)
