"""Run settings: everything about a run except its inputs, validated when built.

:class:`RunSettings` is the one settings object of the command line, the stpipe step and
campaigns. It is frozen, picklable (it travels to dask workers with every product) and
checked in ``__post_init__``, so a wrong value fails at once with a one-line
:class:`~daskbkg.errors.ParameterError` instead of late inside a worker.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .options import ClipParams, ReferenceCompat

__all__ = ["RunSettings", "WfssSettings", "FORMATS"]

#: Output formats.
FORMATS = ("fits", "zarr")


@dataclass(frozen=True)
class WfssSettings:
    """Inputs and parameters of the WFSS path (see :func:`daskbkg.wfss.build_wfss_product`).

    Relative paths are used as given; an association's ``sourcecat`` member overrides
    ``source_catalog`` for its product.
    """

    bkg_ref: Path | None = None
    wavelengthrange: Path | None = None
    source_catalog: Path | None = None
    source_mask: Path | None = None
    source_boxes: Path | None = None
    params: dict | None = None  # keyword arguments of daskbkg.wfss.WfssParams
    save_boxes: bool = False


def _location(value: Any) -> Path | str:
    """A local folder as a Path, an fsspec URL prefix as a string."""
    from .io.source import is_url

    if not isinstance(value, (str, os.PathLike)):
        raise ParameterError(f"output_dir must be a path or URL, not {value!r}")
    return os.fspath(value) if is_url(value) else Path(value)


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run except its inputs.

    Parameters
    ----------
    output_dir : path or str
        Output folder (created if missing), or an fsspec URL prefix (zarr only).
    params : ClipParams
        Clip parameters; ``sigma=`` and ``maxiters=`` may be given instead.
    compat : ReferenceCompat
        Reference-compatibility switches.
    save_combined : bool
        Also write ``<root>_combinedbackground``.
    fmt : {"fits", "zarr"}
        Output format.
    suffix : str
        Suffix of the main product (default ``bkgsub``).
    chunks : (int, int), int or str, optional
        Tile shape ``ROWS`` or ``ROWS,COLS`` (parsed and checked here).
    memory_limit : int or str, optional
        Working-set budget of one product's tiles in flight, e.g. ``"512MiB"``.
    shards : bool
        zarr: store each dask chunk as one shard.
    wfss : WfssSettings
        WFSS inputs and parameters.
    strict : bool
        Refuse inputs the reference accepts but that look wrong.
    retries : int
        Times a product is retried after its worker died (distributed only).
    sigma, maxiters : optional
        Shortcuts for ``params=ClipParams(sigma, maxiters)``.

    Raises
    ------
    ParameterError
        An unknown format, an unparsable tile shape or memory limit, an empty suffix,
        a negative retry count.
    """

    output_dir: Path | str = Path(".")
    params: ClipParams = ClipParams()
    compat: ReferenceCompat = ReferenceCompat()
    save_combined: bool = False
    fmt: str = "fits"
    suffix: str = "bkgsub"
    chunks: tuple[int, int] | None = None
    memory_limit: int | None = None
    shards: bool = False
    wfss: WfssSettings = field(default_factory=WfssSettings)
    strict: bool = False
    retries: int = 2
    sigma: InitVar[float | None] = None
    maxiters: InitVar[int | None] = None

    def __post_init__(self, sigma: float | None, maxiters: int | None) -> None:
        from .plan import parse_chunks, parse_memory

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("output_dir", _location(self.output_dir))
        if sigma is not None or maxiters is not None:
            put("params", ClipParams(sigma=self.params.sigma if sigma is None else sigma,
                                     maxiters=maxiters if maxiters is not None
                                     else self.params.maxiters))
        if not isinstance(self.params, ClipParams):
            raise ParameterError(f"params must be a ClipParams, not {self.params!r}")
        if not isinstance(self.compat, ReferenceCompat):
            raise ParameterError(f"compat must be a ReferenceCompat, not {self.compat!r}")
        if self.fmt not in FORMATS:
            raise ParameterError(f"unknown output format {self.fmt!r}; use fits or zarr")
        if not isinstance(self.suffix, str) or not self.suffix.strip():
            raise ParameterError(f"suffix must be a non-empty string, not {self.suffix!r}")
        if isinstance(self.chunks, (bool, float)):
            raise ParameterError(f"invalid chunk shape {self.chunks!r}; use ROWS or ROWS,COLS")
        put("chunks", parse_chunks(self.chunks))
        if isinstance(self.memory_limit, bool):
            raise ParameterError(f"invalid memory limit {self.memory_limit!r}; use e.g. 512MB")
        put("memory_limit", parse_memory(self.memory_limit))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ParameterError(f"retries must be a non-negative integer, not {self.retries!r}")
        if not isinstance(self.wfss, WfssSettings):
            raise ParameterError(f"wfss must be a WfssSettings, not {self.wfss!r}")

    def replace(self, **changes: Any) -> "RunSettings":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
