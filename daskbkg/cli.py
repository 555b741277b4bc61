"""Command-line interface: ``daskbkg run`` and ``daskbkg demo``.

Exit codes: 0 success, 1 runtime failure, 2 bad input (file, parameter, association).
Errors are printed as one line (file and reason); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from ._version import __version__
from .options import COMPAT_CHOICES

__all__ = ["main", "build_parser"]

log = logging.getLogger("daskbkg")

# Compatibility options offered as --flag CHOICE (the boolean ones are plain switches).
_COMPAT_FLAGS = {name: choices for name, choices in COMPAT_CHOICES.items()
                 if name not in ("compat", "wfss_method") and not isinstance(choices[0], bool)}
_COMPAT_SWITCHES = ("propagate_err", "record_scale_factor", "save_wfss_mask")


def _flag(name: str) -> list[str]:
    """Both spellings of an option: ``--kebab-case`` and ``--snake_case``."""
    kebab = "--" + name.replace("_", "-")
    snake = "--" + name
    return [kebab] if kebab == snake else [kebab, snake]


def _output_location(text: str):
    from .io.source import is_url

    return text if is_url(text) else Path(text)


def _maxiters(text: str):
    if text.lower() == "none":
        return None
    return int(text)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(*_flag("output_dir"), "-o", default=".", type=_output_location,
                   help="folder for the outputs (created if missing; default: current folder); "
                        "an fsspec URL such as s3://bucket/prefix with --format zarr")
    p.add_argument("--sigma", type=float, default=3.0,
                   help="sigma-clip threshold for combining backgrounds (default 3.0)")
    p.add_argument("--maxiters", type=_maxiters, default=None,
                   help="maximum clip passes; 'None' or 0 = until converged (default)")
    p.add_argument(*_flag("save_combined_background"), action="store_true",
                   help="also write <root>_combinedbackground.fits (SCI, DQ, ERR, NBKG)")
    p.add_argument("--format", choices=("fits", "zarr"), default="fits",
                   help="output format (default fits); zarr writes <root>_bkgsub.zarr groups")
    p.add_argument("--shards", action="store_true",
                   help="zarr only: store each dask chunk as one shard")
    p.add_argument("--suffix", default="bkgsub", help="suffix of the main output (default bkgsub)")
    p.add_argument("--chunks", default=None,
                   help="tile shape ROWS or ROWS,COLS (default: row strips sized by --memory-limit)")
    p.add_argument(*_flag("memory_limit"), default=None,
                   help="working-set budget for tiles in flight, e.g. 512MB (default 128MiB)")
    p.add_argument("--scheduler", default=None,
                   help="threads (default), processes, synchronous, a tcp://host:port scheduler "
                        "address or a scheduler file")
    p.add_argument("--compat", choices=("jwst-1.13", "jwst-3.0"), default="jwst-1.13",
                   help="behaviour preset: jwst-1.13 (reference parity, default) or jwst-3.0")
    for name, choices in _COMPAT_FLAGS.items():
        p.add_argument(*_flag(name), choices=choices, default=None,
                       help=f"compatibility switch (default {choices[0]}); see README")
    p.add_argument(*_flag("propagate_err"), action="store_true", default=None,
                   help="write sqrt(ERR^2 + ERR_bk^2) as output ERR (not reference behaviour)")
    p.add_argument(*_flag("record_scale_factor"), action="store_true", default=None,
                   help="WFSS: write the scale factor as BKGD_SCL in the output header")
    p.add_argument(*_flag("save_wfss_mask"), action="store_true", default=None,
                   help="WFSS: append the background mask as a MASK extension")
    w = p.add_argument_group("WFSS (NRC_WFSS / NIS_WFSS targets)")
    w.add_argument(*_flag("wfss_bkg_ref"), type=Path, default=None, metavar="REF.fits",
                   help="background reference image (WFSSBKG: SCI, DQ, DQ_DEF)")
    w.add_argument("--wavelengthrange", type=Path, default=None, metavar="WR.asdf",
                   help="WAVELENGTHRANGE reference file (default: R_WAVRAN next to the target)")
    w.add_argument(*_flag("source_catalog"), type=Path, default=None, metavar="CAT.ecsv",
                   help="source catalog (default: SCATFILE; an ASN sourcecat member wins)")
    w.add_argument(*_flag("source_mask"), type=Path, default=None, metavar="MASK.fits",
                   help="user background mask (MASK extension, nonzero = background) "
                        "instead of catalog boxes")
    w.add_argument(*_flag("source_boxes"), type=Path, default=None, metavar="BOXES.ecsv",
                   help="user box table (label, order, xmin, xmax, ymin, ymax; ECSV or JSON)")
    w.add_argument(*_flag("wfss_method"), choices=("robust-mean", "weighted"), default=None,
                   help="scaling estimator (default robust-mean, the reference's)")
    w.add_argument(*_flag("wfss_mmag_extract"), type=float, default=None,
                   help="faintest catalog magnitude used for source boxes (strict <)")
    w.add_argument(*_flag("wfss_maxiter"), type=int, default=5,
                   help="weighted method: outlier-rejection passes (default 5)")
    w.add_argument(*_flag("wfss_rms_stop"), type=float, default=0.0,
                   help="weighted method: percent RMS-improvement stop, 0 = off (default)")
    w.add_argument(*_flag("wfss_outlier_percent"), type=float, default=1.0,
                   help="weighted method: percentile clipped at each end per pass (default 1)")
    w.add_argument(*_flag("save_wfss_boxes"), action="store_true",
                   help="also write <root>_wfssboxes.ecsv with the source boxes used")
    p.add_argument(*_flag("no_resume"), action="store_true",
                   help="redo products whose outputs are already complete (default: skip them)")
    p.add_argument("--report", default=None,
                   help="write a JSON report of every product's outcome to this file")
    p.add_argument("--strict", action="store_true",
                   help="refuse inputs the reference accepts but that look wrong (duplicated "
                        "backgrounds, no overlap, NINTS mismatch, ...; see README)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors (no progress)")
    p.add_argument("--verbose", "-v", action="store_true", help="print debug log messages")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``daskbkg`` command."""
    parser = argparse.ArgumentParser(
        prog="daskbkg",
        description="JWST background subtraction (the pipeline's background step) as a "
                    "chunked, parallel dask computation, bit-identical to jwst 1.13.2.",
        epilog="daskbkg run TARGET --bkg B1 [B2 ...] --output-dir OUT [--sigma 3.0] "
               "[--maxiters N] [--save-combined-background] [--format fits|zarr] "
               "[--chunks ROWS[,COLS]] [--memory-limit SIZE] [--scheduler ADDRESS] "
               "[--compat jwst-1.13|jwst-3.0] [--quiet] [--debug]; "
               "daskbkg run ASN.json --output-dir OUT processes every product of an "
               "association. 'daskbkg run --help' explains every option.",
    )
    parser.add_argument("--version", action="version", version=f"daskbkg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run", help="background-subtract a target (or every product of an association)",
        description="Background-subtract TARGET using the --bkg exposures, or process every "
                    "product of a level-2 association given as ASN.json. Writes "
                    "OUT/<root>_bkgsub.fits (root = file name without .fits and a trailing "
                    "step suffix such as _rate, _rateints, _cal, _calints; for associations, "
                    "the product name).",
    )
    run.add_argument("inputs", nargs="+", metavar="TARGET",
                     help="target exposure (FITS), association (.json), glob pattern or "
                          "@listfile (one input per line); several inputs make one campaign")
    run.add_argument(*_flag("bkg"), *_flag("bkg_list"), dest="bkg", nargs="+", default=None,
                     metavar="BKG", help="background exposures, in summation order")
    _add_common(run)
    demo = sub.add_parser("demo", help="generate a small synthetic dataset and process it",
                          description="Generate a small synthetic NIRCam dataset (targets, "
                                      "backgrounds, association) and run the background step.")
    demo.add_argument(*_flag("output_dir"), "-o", default=Path("daskbkg-demo"), type=Path,
                      help="folder for the dataset and outputs (default ./daskbkg-demo)")
    demo.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    demo.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    demo.add_argument("--verbose", "-v", action="store_true", help="print debug log messages")
    return parser


def settings_from_args(args: argparse.Namespace):
    """Map parsed CLI flags onto :class:`daskbkg.runner.RunSettings` (validated)."""
    from .options import ClipParams, make_compat
    from .plan import parse_chunks, parse_memory
    from .runner import RunSettings, WfssSettings
    from .validate import enforce, validate_params

    enforce(validate_params(args.sigma, args.maxiters, chunks=args.chunks,
                            memory_limit=args.memory_limit, fmt=args.format), args.strict)

    compat = make_compat(args.compat, **{k: getattr(args, k) for k in _COMPAT_FLAGS},
                         **{k: getattr(args, k) for k in _COMPAT_SWITCHES})
    wfss = WfssSettings(
        bkg_ref=args.wfss_bkg_ref, wavelengthrange=args.wavelengthrange,
        source_catalog=args.source_catalog, source_mask=args.source_mask,
        source_boxes=args.source_boxes, save_boxes=args.save_wfss_boxes,
        params=dict(method=args.wfss_method, mmag_extract=args.wfss_mmag_extract,
                    maxiter=args.wfss_maxiter, rms_stop=args.wfss_rms_stop,
                    outlier_percent=args.wfss_outlier_percent),
    )
    return RunSettings(wfss=wfss, strict=args.strict,
        output_dir=args.output_dir, params=ClipParams(sigma=args.sigma, maxiters=args.maxiters),
        compat=compat, save_combined=args.save_combined_background, fmt=args.format,
        suffix=args.suffix, chunks=parse_chunks(args.chunks),
        memory_limit=parse_memory(args.memory_limit), shards=args.shards,
    )


def _report(outcomes, quiet: bool) -> int:
    code = 0
    for outcome in outcomes:
        if outcome.state == "failed":
            print(f"daskbkg: error: {outcome.reason}", file=sys.stderr)
            code = max(code, outcome.code or 1)
        elif not quiet:
            note = "" if outcome.state == "done" else f" ({outcome.state}: {outcome.reason})"
            for path in outcome.outputs:
                print(f"{outcome.name}: wrote {path}{note}" if outcome.state == "done"
                      else f"{outcome.name}: {path}{note}")
    return code


def _cmd_run(args: argparse.Namespace) -> int:
    from .campaign import Campaign
    from .scheduling import use_scheduler

    settings = settings_from_args(args)
    if args.bkg and all(i.lower().endswith(".json") for i in args.inputs):
        log.warning("--bkg is ignored for associations: backgrounds come from the ASN")
    if (not args.bkg and args.wfss_bkg_ref is None
            and not any(i.lower().endswith(".json") or i.startswith("@") for i in args.inputs)):
        hint = ("" if settings.compat.empty_bkg_list == "skip"
                else " (use --empty-bkg-list skip to skip instead)")
        log.warning("no background given: as in the reference, the output SCI is all NaN%s", hint)
    campaign = Campaign.from_inputs(args.inputs, settings, backgrounds=args.bkg or (),
                                    resume=not args.no_resume, progress=not args.quiet,
                                    raise_errors=args.debug)
    report_path = Path(args.report) if args.report else None
    with use_scheduler(args.scheduler) as compute_kwargs:
        link = getattr(compute_kwargs["scheduler"], "dashboard_link", None)
        if not args.quiet and link:
            print(f"dask dashboard: {link}", file=sys.stderr)
        from .runner import _prepare_dir

        _prepare_dir(settings)
        report = campaign.run(compute_kwargs, report_path=report_path)
    code = _report(report.outcomes, args.quiet)
    if len(report.outcomes) > 1 and not args.quiet:
        print(report.table())
    return code


def _cmd_demo(args: argparse.Namespace) -> int:
    from .datasets import make_dataset
    from .runner import RunSettings, run_association

    out = Path(args.output_dir)
    data = make_dataset(out / "inputs", n_targets=2, n_backgrounds=4, seed=1, overwrite=True)
    settings = RunSettings(output_dir=out / "outputs", save_combined=True)
    outcomes = run_association(data.asn, settings)
    code = _report(outcomes, args.quiet)
    if not args.quiet:
        print(f"demo inputs in {out / 'inputs'}; outputs in {out / 'outputs'}")
    return code


def threading_main() -> bool:
    """True in the main thread (signal handlers can only be set there)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C: clean up, exit 130
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``daskbkg`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="daskbkg: %(levelname)s: %(message)s")
    import signal

    if threading_main():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if args.command == "demo":
            return _cmd_demo(args)
        return _cmd_run(args)
    except KeyboardInterrupt:
        print("daskbkg: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    except Exception as exc:  # one line per error unless --debug
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"daskbkg: error: {message}", file=sys.stderr)
        from .errors import exit_code_for

        return exit_code_for(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
