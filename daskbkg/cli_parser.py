"""The ``daskbkg`` argument parser: grouped help, short errors, suggestions for typos.

Every option accepts both spellings, ``--kebab-case`` and the reference's
``--snake_case``; the help lists the first. A bad value is reported in at most two
lines naming the option and the value (no usage dump), and a mistyped option name gets
a "did you mean" suggestion.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import sys
import textwrap
from pathlib import Path
from typing import NoReturn

from ._version import __version__
from .options import COMPAT_CHOICES

__all__ = ["build_parser", "COMPAT_FLAGS", "COMPAT_SWITCHES", "expand_backgrounds"]

#: Compatibility options offered as ``--flag CHOICE`` (the boolean ones are switches).
COMPAT_FLAGS = {name: choices for name, choices in COMPAT_CHOICES.items()
                if name not in ("compat", "wfss_method") and not isinstance(choices[0], bool)}
COMPAT_SWITCHES = ("propagate_err", "record_scale_factor", "save_wfss_mask")

_EXAMPLES = """\
examples:
  daskbkg run x_rate.fits --bkg b1_rate.fits b2_rate.fits -o out
        one target, two backgrounds -> out/x_bkgsub.fits
  daskbkg run x_rate.fits --bkg 'bkg/*_rate.fits' --save-combined-background -o out
        backgrounds from a glob (quoted: daskbkg expands it, sorted)
  daskbkg run jw01234-o001_image2_asn.json -o out --report out/report.json
        every product of an association (members resolve against the ASN's folder)
  daskbkg run @campaign.txt -o out --scheduler scheduler.json --log-file run.log
        a campaign on a dask cluster; campaign.txt holds one input per line, relative
        entries resolve against campaign.txt's own folder; '#' starts a comment
  daskbkg run t_rateints.fits --bkg b_rateints.fits --format zarr --chunks 256 -o out

exit codes: 0 success, 1 runtime or internal failure, 2 bad input, 130 interrupted
(complete products are kept; run the same command again to finish the rest)."""


def _flag(name: str) -> list[str]:
    """Both spellings of an option: ``--kebab-case`` first, then ``--snake_case``."""
    kebab = "--" + name.replace("_", "-")
    snake = "--" + name
    return [kebab] if kebab == snake else [kebab, snake]


def _output_location(text: str):
    from .io.source import is_url

    return text if is_url(text) else Path(text)


def _maxiters(text: str):
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r} (expected an integer, or None)") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected a number)") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected an integer)") from None


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Lists each option once (its first spelling), with its metavar."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        shorts = [s for s in action.option_strings if not s.startswith("--")]
        first = shorts + [next(s for s in action.option_strings if s.startswith("--"))]
        text = ", ".join(first)
        if action.nargs != 0:
            text += " " + self._format_args(action, self._get_default_metavar_for_optional(action))
        return text


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` and of its sub-commands."""
    found = []
    for action in parser._actions:
        found += action.option_strings
        for sub in getattr(action, "choices", None) or {}:
            if isinstance(action.choices, dict):
                found += _option_strings(action.choices[sub])
    return found


class _Parser(argparse.ArgumentParser):
    """Errors in at most two lines, naming the option and the value; typo suggestions."""

    def error(self, message: str) -> NoReturn:
        text = message
        if text.startswith("argument "):
            text = text[len("argument "):]
            option, _, rest = text.partition(": ")
            text = f"{option.split('/')[0]}: {rest}"
        hint = ""
        if message.startswith("unrecognized arguments:"):
            unknown = [w for w in message.split(":", 1)[1].split() if w.startswith("-")]
            known = _option_strings(self)
            for word in unknown:
                close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.6)
                if close:
                    hint = f"did you mean {close[0]}? (see '{self.prog} --help')"
                    break
        if not hint:
            hint = f"see '{self.prog} --help'"
        self.exit(2, f"daskbkg: error: {text}\n{hint}\n")


def _add_run_options(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("inputs")
    g.add_argument("inputs", nargs="+", metavar="TARGET",
                   help="target exposure (FITS), association (.json), glob pattern or "
                        "@listfile (one input per line, relative to the list file's folder); "
                        "several inputs make one campaign; duplicates are processed once")
    g.add_argument(*_flag("bkg"), *_flag("bkg_list"), dest="bkg", nargs="+", action="extend",
                   default=None, metavar="BKG",
                   help="background exposures in summation order; may be repeated (the lists "
                        "add up) and may be glob patterns (expanded, sorted)")
    g = run.add_argument_group("clipping")
    g.add_argument("--sigma", type=_number, default=3.0,
                   help="clip threshold, both sides (default 3.0)")
    g.add_argument("--maxiters", type=_maxiters, default=None,
                   help="clip passes; None or 0 = until converged (default None)")
    g = run.add_argument_group("output")
    g.add_argument(*_flag("output_dir"), "-o", default=".", type=_output_location, metavar="OUT",
                   help="output folder, created if missing (default: current folder); an fsspec "
                        "URL such as s3://bucket/prefix with --format zarr")
    g.add_argument(*_flag("save_combined_background"), action="store_true",
                   help="also write <root>_combinedbackground.fits (SCI, DQ, ERR, NBKG)")
    g.add_argument("--format", choices=("fits", "zarr"), default="fits",
                   help="output format: fits (default) or zarr (<root>_bkgsub.zarr groups)")
    g.add_argument("--shards", action="store_true", help="zarr: store each tile as one shard")
    g.add_argument("--suffix", default="bkgsub", help="suffix of the main product (default bkgsub)")
    g.add_argument(*_flag("no_resume"), action="store_true",
                   help="redo products whose outputs are already complete (default: skip them)")
    g.add_argument("--report", default=None, metavar="FILE",
                   help="JSON report of every product's state, kept up to date as products finish")
    g = run.add_argument_group("execution")
    g.add_argument("--scheduler", default=None, metavar="S",
                   help="threads (default), processes, synchronous, a tcp://host:port scheduler "
                        "address or a scheduler file")
    g.add_argument("--chunks", default=None, metavar="ROWS[,COLS]",
                   help="tile shape (default: full-width row strips sized by --memory-limit)")
    g.add_argument(*_flag("memory_limit"), default=None, metavar="SIZE",
                   help="tile working set, e.g. 512MiB (default: 64 MiB per thread, at most a "
                        "quarter of the free memory)")
    g.add_argument(*_flag("log_file"), default=None, metavar="FILE",
                   help="also log to FILE, one line per finished product (name, state, seconds)")
    g.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    g.add_argument("--verbose", "-v", action="store_true", help="print debug messages")
    g.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    g = run.add_argument_group("compatibility (defaults reproduce jwst 1.13.2)")
    g.add_argument("--compat", choices=("jwst-1.13", "jwst-3.0"), default="jwst-1.13",
                   help="behaviour preset (default jwst-1.13)")
    for name, choices in COMPAT_FLAGS.items():
        if not name.startswith("wfss_"):
            g.add_argument(*_flag(name), choices=choices, default=None,
                           help=f"default {choices[0]} (or the --compat preset's)")
    g.add_argument(*_flag("propagate_err"), action="store_true", default=None,
                   help="output ERR = sqrt(ERR^2 + ERR_bk^2) (not the reference's)")
    g.add_argument("--strict", action="store_true",
                   help="refuse inputs the reference accepts but that look wrong (duplicated "
                        "backgrounds, no overlap, NINTS mismatch, ...)")
    _add_wfss_options(run.add_argument_group("WFSS (NRC_WFSS / NIS_WFSS targets)"))


def _add_wfss_options(w) -> None:
    w.add_argument(*_flag("wfss_bkg_ref"), type=Path, default=None, metavar="REF.fits",
                   help="background reference image (WFSSBKG: SCI, DQ, DQ_DEF)")
    w.add_argument("--wavelengthrange", type=Path, default=None, metavar="WR.asdf",
                   help="WAVELENGTHRANGE reference file (default: R_WAVRAN next to the target)")
    w.add_argument(*_flag("source_catalog"), type=Path, default=None, metavar="CAT.ecsv",
                   help="source catalog (default: SCATFILE; an ASN sourcecat member wins)")
    w.add_argument(*_flag("source_mask"), type=Path, default=None, metavar="MASK.fits",
                   help="user background mask (nonzero = background) instead of catalog boxes")
    w.add_argument(*_flag("source_boxes"), type=Path, default=None, metavar="BOXES.ecsv",
                   help="user box table (label, order, xmin, xmax, ymin, ymax)")
    w.add_argument(*_flag("wfss_method"), choices=("robust-mean", "weighted"), default=None,
                   help="scaling estimator (default robust-mean, the reference's)")
    w.add_argument(*_flag("wfss_mmag_extract"), type=_number, default=None, metavar="MAG",
                   help="faintest catalog magnitude used for source boxes (strict <)")
    w.add_argument(*_flag("wfss_maxiter"), type=_integer, default=5, metavar="N",
                   help="weighted method: outlier-rejection passes (default 5)")
    w.add_argument(*_flag("wfss_rms_stop"), type=_number, default=0.0, metavar="PERCENT",
                   help="weighted method: RMS-improvement stop in percent, 0 = off (default)")
    w.add_argument(*_flag("wfss_outlier_percent"), type=_number, default=1.0, metavar="PERCENT",
                   help="weighted method: percentile clipped at each end per pass (default 1)")
    for name, choices in COMPAT_FLAGS.items():
        if name.startswith("wfss_"):
            w.add_argument(*_flag(name), choices=choices, default=None,
                           help=f"default {choices[0]} (or the --compat preset's)")
    w.add_argument(*_flag("record_scale_factor"), action="store_true", default=None,
                   help="write the scale factor as BKGD_SCL in the output header")
    w.add_argument(*_flag("save_wfss_mask"), action="store_true", default=None,
                   help="append the background mask as a MASK extension")
    w.add_argument(*_flag("save_wfss_boxes"), action="store_true",
                   help="also write <root>_wfssboxes.ecsv with the source boxes used")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``daskbkg`` command."""
    parser = _Parser(
        prog="daskbkg", formatter_class=_Formatter,
        description="JWST background subtraction (the pipeline's background step) as a "
                    "chunked, parallel dask computation, bit-identical to jwst 1.13.2.",
        epilog="daskbkg run TARGET --bkg B1 [B2 ...] --output-dir OUT [--sigma 3.0] "
               "[--maxiters N] [--save-combined-background] [--format fits|zarr] "
               "[--chunks ROWS[,COLS]] [--memory-limit SIZE] [--scheduler ADDRESS]\n"
               "daskbkg run ASN.json --output-dir OUT  (every product of an association)\n"
               "'daskbkg run --help' explains every option, with examples.")
    parser.add_argument("--version", action="version", version=f"daskbkg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    run = sub.add_parser(
        "run", help="background-subtract targets, associations or a whole campaign",
        formatter_class=_Formatter, epilog=_EXAMPLES,
        usage="daskbkg run TARGET [TARGET ...] [--bkg BKG [BKG ...]] [-o OUT] [options]",
        description=textwrap.fill(
            "Background-subtract each TARGET with the --bkg exposures, or every product of "
            "a level-2 association. Writes OUT/<root>_bkgsub.fits, where <root> is the file "
            "name without .fits and one trailing step suffix (_rate, _rateints, _cal, "
            "_calints, ...) or the association's product name. Every option also accepts "
            "the reference's snake_case spelling (--save_combined_background, --output_dir, "
            "...).", 88))
    _add_run_options(run)
    demo = sub.add_parser("demo", help="generate a small synthetic dataset and process it",
                          formatter_class=_Formatter,
                          description="Generate a small synthetic NIRCam dataset (targets, "
                                      "backgrounds, association) and run the background step.")
    demo.add_argument(*_flag("output_dir"), "-o", default=Path("daskbkg-demo"), type=Path,
                      metavar="DIR", help="folder for the dataset and outputs "
                                          "(default ./daskbkg-demo)")
    demo.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    demo.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    demo.add_argument("--verbose", "-v", action="store_true", help="print debug messages")
    return parser


def expand_backgrounds(entries: list[str] | None) -> list[str]:
    """``--bkg`` entries with glob patterns expanded (sorted); a pattern must match.

    Raises
    ------
    daskbkg.errors.InputFileNotFoundError
        A pattern that matches no file.
    """
    from .errors import InputFileNotFoundError
    from .io.source import is_url

    out: list[str] = []
    for entry in entries or []:
        if is_url(entry) or os.path.exists(entry) or not any(c in entry for c in "*?["):
            out.append(entry)
            continue
        matches = sorted(glob.glob(entry))
        if not matches:
            raise InputFileNotFoundError(f"--bkg {entry}: no file matches this pattern")
        out += matches
    return out


if __name__ == "__main__":  # pragma: no cover
    build_parser().print_help(sys.stdout)
